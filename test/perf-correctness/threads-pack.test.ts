// A shared packed B packed on all threads (issue 19 item 4): the packer honours the column globals, so the pool
// packs B in column chunks before the row chunks (threads-split.ts packChunks). The packed bytes must equal one
// call's, and every matmul result one thread's bit for bit (and the float64 reference interpreter within 1e-4),
// also when the packing dispatch starves and the gemm runs on the calling thread.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm, type WasmBuild } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, WASM_STATE, type KilnModule } from "../../runtime/wasm/module.js";
import { loadKernels } from "../../runtime/wasm/threads-load.js";
import { ALL_COLUMNS, COL_RANGE_GLOBALS, readParallelInfo } from "../../runtime/wasm/threads-meta.js";
import { MIN_PACK_SPLIT, packChunks } from "../../runtime/wasm/threads-split.js";
import { prepackedBytes } from "../../runtime/wasm/prepack.js";
import type { ThreadPool } from "../../runtime/wasm/threads.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, irOf } from "../helpers/backend.js";

const SRC = `
fn mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }
fn mm_nt(a: f32[M, K], b: f32[N, K]) -> f32[M, N] { return a @ transpose(b) }
fn dense(x: f32[M, K], w: f32[K, N], bias: f32[N]) -> f32[M, N] { return relu(x @ w + bias) }
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
  const [ua, ub] = [bits(a), bits(b)];
  expect(ub.findIndex((x, i) => x !== ua[i]), `${fn} on ${threads} threads: first differing element`).toBe(-1);
  const g = ir.functions.find((f) => f.name === fn)!;
  const ref = evaluateGraph(g, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: "f32", shape: v.shape, data: Array.from(v.data) }])));
  expectClose(b, ref[0]!, fn, 1e-4, 1e-4);
}

// [M, K, N], each with K * N >= MIN_PACK_SPLIT and enough rows (64 a thread) for a shared-B row split: K past one
// KC = 256 block; N past one NC = 1024 block (a chunk boundary inside the second block); N not a multiple of the
// panel width 8 (a ragged last panel); K under one block.
const SHAPES = [[200, 512, 512], [200, 130, 1100], [260, 1024, 129], [196, 200, 700]] as const;

beforeAll(async () => {
  ir = irOf(SRC);
  build = await buildWasm(ir, "threads_pack");
  one = await loadKilnModule(build.manifest, build.wasm);
  for (const t of [2, 3]) multi.set(t, await loadKilnModule(build.manifest, build.wasm, { threads: t }));
});
afterAll(() => {
  for (const m of multi.values()) m.dispose();
});

describe("a shared B packed on all threads", () => {
  it("the section marks the packers of shared B as honouring column ranges", async () => {
    const info = readParallelInfo(await WebAssembly.compile(build.wasm as Uint8Array<ArrayBuffer>));
    const shared = Object.values(info.kernels).flatMap((s) => (s.kind === "rows" && s.sharedB ? [s.sharedB] : []));
    expect(shared.length).toBeGreaterThan(0);
    for (const s of shared) expect(s.cols).toBe(true);
  });

  it("packChunks: column cuts on panel edges covering N, only for B of at least MIN_PACK_SPLIT elements", () => {
    expect(packChunks(256, 256, 2, 64, 8)).toBeNull(); // 65536 elements
    expect(packChunks(1, MIN_PACK_SPLIT - 1, 2, 64, 8)).toBeNull();
    expect(packChunks(512, 512, 2, 64, 8)).toEqual([[0, 128], [128, 256], [256, 384], [384, 512]]);
    for (const [K, N, t] of [[130, 1100, 2], [1024, 129, 3], [200, 700, 3]]) {
      const c = packChunks(K!, N!, t!, 64, 8)!;
      expect(c.length).toBe(2 * t!);
      expect(c[0]![0]).toBe(0);
      expect(c.at(-1)![1]).toBe(N);
      c.forEach(([a, b], i) => {
        expect(a % 8).toBe(0);
        expect(b).toBeGreaterThan(a);
        if (i > 0) expect(a).toBe(c[i - 1]![1]);
      });
    }
  });

  it("packing column ranges one after another writes the same bytes as packing all of B at once", async () => {
    const k = await loadKernels(build.wasm, {});
    const ex = k.instance.exports as Record<string, WebAssembly.Global>;
    const [g0, g1] = COL_RANGE_GLOBALS.map((g) => ex[g]!);
    for (const packer of ["__kiln_prepack_b_n", "__kiln_prepack_b_t"]) {
      const pack = k.kernels.get(packer)!;
      for (const [K, N] of [[512, 512], [130, 1100], [1024, 129], [37, 4000]] as const) {
        const bytes = prepackedBytes(K, N);
        const b = k.memory.allocPersistent(4 * K * N, "b");
        k.memory.write(b, rand(K * N, K + N));
        const [whole, parts] = [k.memory.allocPersistent(bytes, "whole"), k.memory.allocPersistent(bytes, "parts")];
        pack(b, whole, K, N);
        // One range alone writes only its own columns' panels: 16 columns, K values each.
        k.memory.view("f32", parts, bytes / 4).fill(NaN);
        g0.value = 8;
        g1.value = 24;
        pack(b, parts, K, N);
        expect(k.memory.view("f32", parts, bytes / 4).filter((x) => !Number.isNaN(x)).length, `${packer} ${K}x${N}: columns [8, 24) alone`).toBe(16 * K);
        // Uneven ranges, one past an NC block edge, one empty, in reverse order; NaN fill shows unwritten bytes.
        k.memory.view("f32", parts, bytes / 4).fill(NaN);
        const cuts = [0, 8, 24, 1016, 1032, 1032, N].filter((c) => c <= N).sort((x, y) => x - y);
        for (let i = cuts.length - 2; i >= 0; i--) {
          g0.value = cuts[i]!;
          g1.value = cuts[i + 1]!;
          pack(b, parts, K, N);
        }
        g0.value = 0;
        g1.value = ALL_COLUMNS;
        const [w, p] = [k.memory.view("i32", whole, bytes / 4), k.memory.view("i32", parts, bytes / 4)];
        expect(p.findIndex((x, i) => x !== w[i]), `${packer} ${K}x${N}: first differing word`).toBe(-1);
      }
    }
  });

  it("equals one thread on 2 and 3 threads, with B packed in column chunks", () => {
    for (const t of [2, 3]) {
      const pool = poolOf(multi.get(t)!);
      // No fallback here: on a loaded machine a starved call would (rightly) run on one thread.
      pool.fallback = false;
      const [packs, shared] = [pool.stats.packs, pool.stats.sharedB];
      for (const [M, K, N] of SHAPES) {
        same(t, "mm", { a: { shape: [M, K], data: rand(M * K, M) }, b: { shape: [K, N], data: rand(K * N, N) } });
        same(t, "mm_nt", { a: { shape: [M, K], data: rand(M * K, 3) }, b: { shape: [N, K], data: rand(K * N, 5) } });
        same(t, "dense", { x: { shape: [M, K], data: rand(M * K, 11) }, w: { shape: [K, N], data: rand(K * N, 13) }, bias: { shape: [N], data: rand(N, 17) } });
      }
      pool.fallback = true;
      expect(pool.stats.packs - packs, `${t} threads: packing dispatches`).toBe(3 * SHAPES.length);
      expect(pool.stats.sharedB - shared, `${t} threads: shared-B row dispatches`).toBe(3 * SHAPES.length);
    }
  });

  it("a packing dispatch that starves leaves the gemm to the calling thread, with the same result", () => {
    const m = multi.get(2)!;
    const pool = poolOf(m);
    pool.resetBackoff();
    pool.backoffScale = 0;
    try {
      // The worker claims the first packing chunk and sleeps 150 ms: the caller packs the rest, waits, and the
      // dispatch starves; the row chunks then never dispatch, the whole gemm runs here on the packed B.
      pool.testWorkerDelay = 150;
      const s0 = { ...pool.stats };
      const [M, K, N] = SHAPES[0];
      same(2, "mm", { a: { shape: [M, K], data: rand(M * K, 21) }, b: { shape: [K, N], data: rand(K * N, 23) } });
      expect(pool.stats.packs - s0.packs).toBe(1);
      expect(pool.stats.starved - s0.starved).toBe(1);
      expect(pool.stats.sharedB - s0.sharedB).toBe(0);
      expect(pool.stats.solo - s0.solo).toBe(1);
    } finally {
      pool.testWorkerDelay = 0;
      pool.backoffScale = 1;
      pool.resetBackoff();
    }
  });
});
