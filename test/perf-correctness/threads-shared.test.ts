// Threads that always help (issue 19 item 4): a split matmul packs B once and shares it across its row chunks,
// a dispatch where the caller waits on a late worker sends the rest of the call to one thread (then backs off),
// and small kernels never leave the calling thread. Results must equal one thread's bit for bit on every path,
// and match the float64 reference interpreter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm, type WasmBuild } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, WASM_STATE, type KilnModule } from "../../runtime/wasm/module.js";
import { readParallelInfo, SHARED_B_GLOBAL } from "../../runtime/wasm/threads-meta.js";
import type { ThreadPool } from "../../runtime/wasm/threads.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, irOf } from "../helpers/backend.js";

const SRC = `
fn mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }
fn mm_nt(a: f32[M, K], b: f32[N, K]) -> f32[M, N] { return a @ transpose(b) }
fn mm_tn(a: f32[K, M], b: f32[K, N]) -> f32[M, N] { return transpose(a) @ b }
fn dense(x: f32[M, K], w: f32[K, N], bias: f32[N]) -> f32[M, N] { return relu(x @ w + bias) }
fn chain(a: f32[M, K], b: f32[K, N], c: f32[N, P]) -> f32[M, P] { return (a @ b) @ c }
fn bmm(a: f32[B, M, K], b: f32[B, K, N]) -> f32[B, M, N] { return a @ b }
`;

let ir: IRModule;
let build: WasmBuild;
let one: KilnModule;
const multi = new Map<number, KilnModule>();

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

const poolOf = (m: KilnModule): ThreadPool => m[WASM_STATE]("test").pool!;
type Inputs = Record<string, { shape: number[]; data: Float32Array }>;
const tensors = (inputs: Inputs) => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
const bits = (t: Tensor) => Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));

/** fn on `threads` threads equals one thread bit for bit, and the float64 reference within tolerance. */
function same(threads: number, fn: string, inputs: Inputs): void {
  const a = one.call(fn, tensors(inputs)) as Tensor;
  const b = multi.get(threads)!.call(fn, tensors(inputs)) as Tensor;
  expect(b.shape).toEqual(a.shape);
  const [ua, ub] = [bits(a), bits(b)];
  expect(ub.findIndex((x, i) => x !== ua[i]), `${fn} on ${threads} threads: first differing element`).toBe(-1);
  const g = ir.functions.find((f) => f.name === fn)!;
  const ref = evaluateGraph(g, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: "f32", shape: v.shape, data: Array.from(v.data) }])));
  expectClose(b, ref[0]!, fn, 1e-4, 1e-4);
}

beforeAll(async () => {
  ir = irOf(SRC);
  build = await buildWasm(ir, "threads_shared");
  one = await loadKilnModule(build.manifest, build.wasm);
  for (const t of [2, 3]) multi.set(t, await loadKilnModule(build.manifest, build.wasm, { threads: t }));
});
afterAll(() => {
  for (const m of multi.values()) m.dispose();
});

describe("a split matmul shares one packed B", () => {
  it("the parallel section marks 2-D f32 matmuls (not batched ones) and the module exports the packers and the global", async () => {
    const mod = await WebAssembly.compile(build.wasm as Uint8Array<ArrayBuffer>);
    const info = readParallelInfo(mod);
    const kernelOf = (fn: string) => build.manifest.functions.find((f) => f.name === fn)!.steps.find((s) => info.kernels[s.kernel!]?.kind === "rows")!.kernel!;
    for (const fn of ["mm", "mm_nt", "mm_tn", "dense"]) {
      const s = info.kernels[kernelOf(fn)]!;
      expect(s.kind === "rows" && s.sharedB, fn).toBeTruthy();
    }
    const b = info.kernels[kernelOf("bmm")]!;
    expect(b.kind === "rows" && b.sharedB, "bmm").toBeFalsy();
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    expect(exports).toContain(SHARED_B_GLOBAL);
    expect(exports).toEqual(expect.arrayContaining(["__kiln_prepack_b_n", "__kiln_prepack_b_t"]));
  });

  it("equals one thread on 2 and 3 threads: plain, transposed, epilogue, K and N past a block, few rows", () => {
    for (const t of [2, 3]) {
      const pool = poolOf(multi.get(t)!);
      // No fallback here: on a loaded machine a starved call would (rightly) run on one thread, unshared.
      pool.fallback = false;
      const [before, colsBefore] = [pool.stats.sharedB, pool.stats.cols];
      // [M, K, N]: K > KC = 256 takes several packed K blocks, N > NC = 1024 several column blocks, odd edges.
      for (const [M, K, N] of [[64, 784, 128], [257, 300, 1100], [97, 513, 33], [300, 64, 257]] as const) {
        same(t, "mm", { a: { shape: [M, K], data: rand(M * K, M) }, b: { shape: [K, N], data: rand(K * N, N) } });
        same(t, "mm_nt", { a: { shape: [M, K], data: rand(M * K, 3) }, b: { shape: [N, K], data: rand(K * N, 5) } });
        same(t, "mm_tn", { a: { shape: [K, M], data: rand(M * K, K) }, b: { shape: [K, N], data: rand(K * N, 7) } });
        same(t, "dense", { x: { shape: [M, K], data: rand(M * K, 11) }, w: { shape: [K, N], data: rand(K * N, 13) }, bias: { shape: [N], data: rand(N, 17) } });
      }
      pool.fallback = true;
      // Every one of those 16 calls was split: with a shared B, or (M = 64, too few rows for row chunks) by
      // columns of C (threads-cols.test.ts).
      expect(pool.stats.cols - colsBefore, `${t} threads, column splits`).toBe(4);
      expect(pool.stats.sharedB - before + pool.stats.cols - colsBefore, `${t} threads`).toBe(16);
    }
  });

  it("batched matmuls keep packing B per chunk, with the same results", () => {
    const pool = poolOf(multi.get(2)!);
    pool.resetBackoff();
    const [d, s] = [pool.stats.dispatches, pool.stats.sharedB];
    same(2, "bmm", { a: { shape: [2, 255, 63], data: rand(2 * 255 * 63, 3) }, b: { shape: [2, 63, 257], data: rand(2 * 63 * 257, 4) } });
    expect(pool.stats.dispatches).toBeGreaterThan(d);
    expect(pool.stats.sharedB).toBe(s);
  });
});

describe("fallback to one thread", () => {
  const chainInputs = (n: number): Inputs => ({
    a: { shape: [n, n], data: rand(n * n, 1) },
    b: { shape: [n, n], data: rand(n * n, 2) },
    c: { shape: [n, n], data: rand(n * n, 3) },
  });

  it("a dispatch that waits on a late worker sends the rest of the call to one thread, backs off, then probes again", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    const want = bits(one.call("chain", tensors(inputs)) as Tensor);
    const snap = () => ({ ...pool.stats });
    pool.resetBackoff();
    pool.backoffScale = 0; // count calls only: the timed back-off depends on how fast this machine runs them
    try {
      // The worker claims the first chunk of the first matmul and sleeps 150 ms: the caller, done with the rest
      // long before, is starved; the second matmul of the call then runs on the calling thread alone.
      pool.testWorkerDelay = 150;
      let s0 = snap();
      expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
      let s1 = snap();
      expect(s1.dispatches - s0.dispatches).toBe(1);
      expect(s1.starved - s0.starved).toBe(1);
      expect(s1.solo - s0.solo).toBe(1);
      expect(s1.workerChunks - s0.workerChunks).toBe(1);

      // The next call (the worker is on time again) runs on one thread without probing: one strike backs off 1 call.
      pool.testWorkerDelay = 0;
      s0 = snap();
      expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
      s1 = snap();
      expect(s1.dispatches - s0.dispatches).toBe(0);
      // The whole call is kept on one thread: it runs the unwrapped kernels (soloKernels), so no kernel call of it
      // asks the pool (stats.solo).
      expect(s1.soloCalls - s0.soloCalls).toBe(1);
      expect(s1.solo - s0.solo).toBe(0);

      // Then it probes two threads again (both matmuls split, unless this machine's load starves the first).
      s0 = snap();
      expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
      s1 = snap();
      expect(s1.dispatches - s0.dispatches).toBe(2 - (s1.starved - s0.starved > 0 && s1.solo > s0.solo ? 1 : 0));
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
    }
  });

  it("calls that keep starving back off exponentially (1, 3, 7 calls on one thread between probes)", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    const want = bits(one.call("chain", tensors(inputs)) as Tensor);
    pool.resetBackoff();
    pool.backoffScale = 0;
    const probes: boolean[] = [];
    try {
      pool.testWorkerDelay = 80;
      for (let i = 0; i < 14; i++) {
        const d = pool.stats.dispatches;
        expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
        probes.push(pool.stats.dispatches > d);
      }
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
    }
    // A probe starves (strike n), then 2^n - 1 calls stay on one thread.
    expect(probes).toEqual([true, false, true, false, false, false, true, false, false, false, false, false, false, false]);
  });

  it("a probe that closes no CPU-check window keeps the strikes (only a verified call clears them)", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    pool.resetBackoff();
    pool.backoffScale = 0;
    pool.cpuCheckMs = Infinity; // no window ever closes: no call is shown to have had two cores
    const probes: boolean[] = [];
    const starved: boolean[] = [];
    const call = (delay: number) => {
      pool.testWorkerDelay = delay;
      const [d, s] = [pool.stats.dispatches, pool.stats.starved];
      m.call("chain", tensors(inputs));
      probes.push(pool.stats.dispatches > d);
      starved.push(pool.stats.starved > s);
    };
    try {
      call(150); // starves: strike 1
      call(0); // backs off 1 call
      call(0); // probes, on time, but unverified: still strike 1 (it used to clear them)
      call(150); // starves: strike 2
      for (let i = 0; i < 4; i++) call(0); // backs off 3 calls (1 if the strikes had been cleared), then probes
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
      pool.cpuCheckMs = 2;
      pool.resetBackoff();
    }
    // The back-off with strikes never cleared, given which probes starved (the delayed ones always do; this
    // machine's load may starve others): on an unloaded machine [probe, 1 back-off, probe, probe, 3 back-offs, probe].
    let [strikes, skip] = [0, 0];
    const want = starved.map((_, i) => {
      if (i > 0 && starved[i - 1]) skip = 2 ** Math.min(++strikes, 5) - 1;
      return skip > 0 ? (skip--, false) : true;
    });
    expect(starved[0]).toBe(true);
    if (probes[3]) expect(starved[3]).toBe(true);
    expect(probes).toEqual(want);
    if (!starved[2]) expect(probes).toEqual([true, false, true, true, false, false, false, true]);
  });

  it("an unverified probe still clears the strikes a second after the last starved call", async () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    pool.resetBackoff();
    pool.backoffScale = 0;
    pool.cpuCheckMs = Infinity;
    const probes: boolean[] = [];
    const starved: boolean[] = [];
    const call = (delay: number) => {
      pool.testWorkerDelay = delay;
      const [d, s] = [pool.stats.dispatches, pool.stats.starved];
      m.call("chain", tensors(inputs));
      probes.push(pool.stats.dispatches > d);
      starved.push(pool.stats.starved > s);
    };
    try {
      call(150); // starves: strike 1
      call(0); // backs off 1 call
      await new Promise((r) => setTimeout(r, 1100)); // threads.ts VERIFY_AFTER_MS
      call(0); // probes, unverified but a second on: clears the strike
      call(150); // starves: strike 1 again (2 had it been kept)
      call(0); // backs off 1 call
      call(0); // probes
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
      pool.cpuCheckMs = 2;
      pool.resetBackoff();
    }
    // (Should this machine's load starve the on-time probe, it has a strike more and nothing is shown.)
    if (!starved[2]) expect(probes).toEqual([true, false, true, true, false, true]);
  });

  it("the back-off also lasts a time, so fast calls do not probe often", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    pool.resetBackoff();
    pool.backoffScale = 1000; // one strike: 4 s on one thread, far longer than these calls take
    try {
      pool.testWorkerDelay = 150;
      const s0 = { ...pool.stats };
      m.call("chain", tensors(inputs));
      expect(pool.stats.starved - s0.starved).toBe(1);
      pool.testWorkerDelay = 0;
      const d = pool.stats.dispatches;
      for (let i = 0; i < 4; i++) m.call("chain", tensors(inputs));
      // The count alone would have probed again on the second of these calls.
      expect(pool.stats.dispatches).toBe(d);
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
      pool.resetBackoff();
    }
  });

  it("a worker that wakes late is not waited for: the caller runs every chunk, and the late worker claims nothing", async () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    const inputs = chainInputs(256);
    const want = bits(one.call("chain", tensors(inputs)) as Tensor);
    pool.resetBackoff();
    pool.fallback = false;
    const s0 = { ...pool.stats };
    const late0 = pool.testLateWakes;
    try {
      // The worker sleeps 1.5 s after waking for the first dispatch; both matmuls of the call (2 dispatches, the
      // second while the worker still sleeps in the first) finish without it.
      pool.testWorkerWakeDelay = 1500;
      expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
      // The call returned while the worker was still asleep (the old pool waited for every worker to check in).
      expect(pool.testLateWakes - late0).toBe(0);
      expect(pool.stats.dispatches - s0.dispatches).toBe(2);
      expect(pool.stats.workerChunks - s0.workerChunks).toBe(0);
    } finally {
      pool.testWorkerWakeDelay = 0; // wakes it: its claim on the finished dispatches fails
    }
    for (let i = 0; i < 200 && pool.testLateWakes === late0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.testLateWakes - late0).toBe(1);
    expect(pool.stats.workerChunks - s0.workerChunks).toBe(0);
    // The pool goes on as before, the worker taking chunks again (within 50 calls even on a loaded machine).
    const d = pool.stats.workerChunks;
    for (let i = 0; i < 50 && pool.stats.workerChunks === d; i++) expect(bits(m.call("chain", tensors(inputs)) as Tensor)).toEqual(want);
    pool.fallback = true;
    expect(pool.stats.workerChunks, "worker chunks after the late wake (0: the worker never came back)").toBeGreaterThan(d);
  });

  it("kernels too small to split stay on the calling thread", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    // Clear any back-off so a split would show as a dispatch.
    pool.resetBackoff();
    const [d, solo] = [pool.stats.dispatches, pool.stats.solo];
    // 48 x 64 x 64 = 196608 multiply-adds, under MIN_MATMUL_WORK (2^20).
    same(2, "mm", { a: { shape: [48, 64], data: rand(48 * 64, 1) }, b: { shape: [64, 64], data: rand(64 * 64, 2) } });
    same(2, "dense", { x: { shape: [8, 784], data: rand(8 * 784, 3) }, w: { shape: [784, 128], data: rand(784 * 128, 4) }, bias: { shape: [128], data: rand(128, 5) } });
    expect(pool.stats.dispatches).toBe(d);
    expect(pool.stats.solo).toBe(solo);
  });
});
