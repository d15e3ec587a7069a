// Threaded execution: `load({ threads: 2 })` splits matmuls (row blocks) and large elementwise kernels across
// worker threads on a shared memory. Results must equal the single-threaded ones bit for bit and match the
// float64 reference; workers never keep Node alive; without SharedArrayBuffer the load falls back to one thread.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm, type WasmBuild } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { loadKernels } from "../../runtime/wasm/threads-load.js";
import { instantiateKernels } from "../../runtime/wasm/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, irOf } from "../helpers/backend.js";
import { childWithRuntime } from "./child.js";

const SRC = `
fn mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }
fn mm_tn(a: f32[K, M], b: f32[K, N]) -> f32[M, N] { return transpose(a) @ b }
fn mm_nt(a: f32[M, K], b: f32[N, K]) -> f32[M, N] { return a @ transpose(b) }
fn bmm(a: f32[B, M, K], b: f32[B, K, N]) -> f32[B, M, N] { return a @ b }
fn ew(x: f32[R, C], y: f32[C]) -> f32[R, C] { return exp(x * 0.1) * y + 1.0 }
fn ew1(x: f32[N], y: f32[N]) -> f32[N] { return tanh(x) - y }
fn rows(x: f32[R, C], m: f32[R, 1]) -> f32[R, C] { return x * m - 0.5 }
fn mid(x: f32[A, B, C], y: f32[A, 1, C]) -> f32[A, B, C] { return x + y }
fn sm(x: f32[R, C]) -> f32[R, C] { return softmax(x, axis: -1) }
fn ln(x: f32[R, C], g: f32[C], b: f32[C]) -> f32[R, C] { return layer_norm(x, g, b, eps: 1e-5) }
`;

let ir: IRModule;
let build: WasmBuild;
let one: KilnModule;
let two: KilnModule;

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

beforeAll(async () => {
  ir = irOf(SRC);
  build = await buildWasm(ir, "threads");
  one = await loadKilnModule(build.manifest, build.wasm);
  two = await loadKilnModule(build.manifest, build.wasm, { threads: 2 });
});
afterAll(() => two?.dispose());

/** Runs fn on 1 and 2 threads; both results must be identical, and close to the float64 reference. */
function same(fn: string, inputs: Record<string, { shape: number[]; data: Float32Array }>, rtol = 1e-5, atol = 1e-5): void {
  const given = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
  const a = one.call(fn, given) as Tensor;
  const b = two.call(fn, given) as Tensor;
  expect(b.shape).toEqual(a.shape);
  const [ua, ub] = [new Uint32Array(a.data.buffer, a.data.byteOffset, a.data.length), new Uint32Array(b.data.buffer, b.data.byteOffset, b.data.length)];
  const diff = ua.findIndex((x, i) => x !== ub[i]);
  expect(diff, `${fn}: first differing element`).toBe(-1);
  const g = ir.functions.find((f) => f.name === fn)!;
  const ref = evaluateGraph(g, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: "f32", shape: v.shape, data: Array.from(v.data) }])));
  expectClose(b, ref[0]!, fn, rtol, atol);
}

describe("threads", () => {
  it("starts a pool of 2 threads and reserves worker scratch", async () => {
    const k = await loadKernels(build.wasm, { threads: 2 });
    try {
      expect(k.threads).toBe(2);
      expect(k.pool).not.toBeNull();
      expect(k.memory.persistentBytes).toBeGreaterThan(0);
      // Wrapped kernels keep their arity (the executor checks it against each step).
      const plain = await instantiateKernels(build.wasm);
      for (const [name, f] of plain.kernels) expect(k.kernels.get(name)!.length, name).toBe(f.length);
    } finally {
      k.pool?.close();
    }
    expect(two.memoryStats().persistentBytes).toBeGreaterThan(one.memoryStats().persistentBytes);
  });

  it("matmul split by rows equals one thread: plain, transposed, odd sizes", () => {
    for (const [M, K, N] of [[128, 128, 64], [257, 255, 17], [255, 257, 33], [1025, 64, 16], [64, 784, 128]] as const) {
      same("mm", { a: { shape: [M, K], data: rand(M * K, M) }, b: { shape: [K, N], data: rand(K * N, N) } }, 1e-4, 1e-4);
      same("mm_tn", { a: { shape: [K, M], data: rand(M * K, K) }, b: { shape: [K, N], data: rand(K * N, M) } }, 1e-4, 1e-4);
      same("mm_nt", { a: { shape: [M, K], data: rand(M * K, 3) }, b: { shape: [N, K], data: rand(K * N, 5) } }, 1e-4, 1e-4);
    }
  });

  it("batched matmul (each batch's rows split)", () => {
    same("bmm", { a: { shape: [3, 67, 129], data: rand(3 * 67 * 129, 1) }, b: { shape: [3, 129, 65], data: rand(3 * 129 * 65, 2) } }, 1e-4, 1e-4);
    same("bmm", { a: { shape: [2, 255, 63], data: rand(2 * 255 * 63, 3) }, b: { shape: [2, 63, 257], data: rand(2 * 63 * 257, 4) } }, 1e-4, 1e-4);
  });

  it("large elementwise kernels split along the outer axis (odd widths keep the vector/tail split)", () => {
    for (const [R, C] of [[1031, 129], [3, 70001], [70001, 3], [257, 1023]] as const) {
      same("ew", { x: { shape: [R, C], data: rand(R * C, R) }, y: { shape: [C], data: rand(C, C) } });
    }
    for (const N of [1 << 18, (1 << 18) + 3, 300007]) same("ew1", { x: { shape: [N], data: rand(N, N) }, y: { shape: [N], data: rand(N, 7) } });
  });

  it("elementwise inputs broadcast along inner axes move by their own row size", () => {
    same("rows", { x: { shape: [1031, 131], data: rand(1031 * 131, 1) }, m: { shape: [1031, 1], data: rand(1031, 2) } });
    same("mid", { x: { shape: [67, 33, 61], data: rand(67 * 33 * 61, 3) }, y: { shape: [67, 1, 61], data: rand(67 * 61, 4) } });
  });

  it("softmax and layer_norm (fused and reduce kernels) on 2 threads", () => {
    const x = { shape: [256, 1031], data: rand(256 * 1031, 5) };
    same("sm", { x });
    same("ln", { x, g: { shape: [1031], data: rand(1031, 6) }, b: { shape: [1031], data: rand(1031, 7) } }, 1e-4, 1e-4);
  });

  it("a kernel that traps on a worker is reported, and the pool keeps working", async () => {
    const k = await loadKernels(build.wasm, { threads: 2 });
    try {
      const name = build.manifest.functions.find((f) => f.name === "mm")!.steps[0]!.kernel;
      const f = k.kernels.get(name)!;
      const n = 512;
      const [a, b, s, c] = [4 * n * n, 4 * n * n, 2_000_000, 4 * n * n].map((bytes) => k.memory.allocPersistent(bytes, "t"));
      k.memory.view("f32", a!, n * n).fill(1);
      k.memory.view("f32", b!, n * n).fill(2);
      // Rows past the memory's end trap in whichever thread claims them.
      expect(() => f(a!, b!, s!, c!, n, n, n, 0, 40 * n)).toThrow();
      f(a!, b!, s!, c!, n, n, n, 0, n);
      expect(Array.from(new Set(k.memory.view("f32", c!, n * n)))).toEqual([2 * n]);
    } finally {
      k.pool?.close();
    }
  });

  it("rejects bad thread counts", async () => {
    for (const t of [0, 1.5, -1, 1000]) {
      await expect(loadKilnModule(build.manifest, build.wasm, { threads: t })).rejects.toThrow(/threads must be an integer/);
    }
  });

  it("a precompiled WebAssembly.Module runs on one thread with the same results", async () => {
    const m = await loadKilnModule(build.manifest, await WebAssembly.compile(build.wasm as Uint8Array<ArrayBuffer>), { threads: 2 });
    expect(m.memoryStats().persistentBytes).toBe(one.memoryStats().persistentBytes);
    const a = rand(128 * 128, 9);
    expect(Array.from((m.call("mm", { a, b: a }, { dims: { M: 128, K: 128, N: 128 } }) as Tensor).data))
      .toEqual(Array.from((one.call("mm", { a, b: a }, { dims: { M: 128, K: 128, N: 128 } }) as Tensor).data));
  });
});

describe("threads in a separate Node process", () => {
  it("workers do not keep the process alive, with or without dispose()", async () => {
    for (const dispose of [true, false]) {
      const r = await childWithRuntime(build, `
        const m = await loadKilnModule(manifest, wasm, { threads: 2 });
        const a = new Float32Array(256 * 256).fill(1);
        const y = m.call("mm", { a, b: a }, { dims: { M: 256, K: 256, N: 256 } });
        console.log(JSON.stringify({ y: y.data[0], persistent: m.memoryStats().persistentBytes }));
        ${dispose ? "m.dispose();" : ""}
      `, [], 20_000);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { y: number; persistent: number };
      expect(out.y).toBe(256);
      expect(out.persistent).toBeGreaterThan(0);
    }
  }, 60_000);

  it("without SharedArrayBuffer, threads: 2 falls back to one thread with the same results", async () => {
    const script = `
      const m = await loadKilnModule(manifest, wasm, { threads: 2 });
      const single = await loadKilnModule(manifest, wasm, { threads: 1 });
      const a = Float32Array.from({ length: 300 * 200 }, (_, i) => Math.sin(i));
      const y = m.call("mm", { a, b: a }, { dims: { M: 300, K: 200, N: 300 } });
      const extra = m.memoryStats().persistentBytes - single.memoryStats().persistentBytes;
      console.log(JSON.stringify({ sum: Array.from(y.data).reduce((s, x) => s + x, 0), extra }));
    `;
    const plain = await childWithRuntime(build, script, [], 20_000);
    const noSab = await childWithRuntime(build, `delete globalThis.SharedArrayBuffer;\n${script}`, [], 20_000);
    expect(plain.status, plain.stderr).toBe(0);
    expect(noSab.status, noSab.stderr).toBe(0);
    // Worker scratch (persistent) is reserved only when a pool started.
    const [p, n] = [JSON.parse(plain.stdout), JSON.parse(noSab.stdout)] as { sum: number; extra: number }[];
    expect(n!.sum).toBe(p!.sum);
    expect(n!.extra).toBe(0);
    expect(p!.extra).toBeGreaterThan(0);
  }, 60_000);

  it("the relaxed-SIMD build runs threaded with results equal to its single-threaded run", async () => {
    const r = await childWithRuntime(build, `
      const out = {};
      for (const threads of [1, 2]) {
        const m = await loadKilnModule(manifest, wasm, { threads, relaxedWasm });
        const a = Float32Array.from({ length: 301 * 257 }, (_, i) => Math.cos(i));
        const y = m.call("mm_nt", { a, b: a }, { dims: { M: 301, K: 257, N: 301 } });
        out[threads] = Array.from(y.data);
        m.dispose();
      }
      console.log(JSON.stringify({ same: out[1].every((x, i) => Object.is(x, out[2][i])), relaxed: relaxedSimdSupported() }));
    `, ["--experimental-wasm-relaxed-simd"], 20_000);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ same: true, relaxed: true });
  }, 60_000);
});
