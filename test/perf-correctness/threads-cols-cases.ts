// Column splits of small-M matmuls (issue 19 item 4), shared by the plain and relaxed-SIMD test files: every call
// below is cut by columns of C on 2 and 3 threads (the pool's stats say so), and must equal one thread's result
// bit for bit (a column chunk runs each tile's K loop exactly as one thread does) and the float64 reference.
import { expect } from "vitest";
import { buildWasm, type WasmBuild } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, WASM_STATE, type KilnModule, type LoadOptions } from "../../runtime/wasm/module.js";
import { loadKernels } from "../../runtime/wasm/threads-load.js";
import { ALL_COLUMNS, COL_RANGE_GLOBALS } from "../../runtime/wasm/threads-meta.js";
import { MATMUL_SCRATCH_MAX } from "../../runtime/wasm/matmul-scratch.js";
import { evalDimPoly } from "../../runtime/manifest.js";
import type { ThreadPool } from "../../runtime/wasm/threads.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, irOf } from "../helpers/backend.js";

export const SRC = `
fn mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }
fn mm_nt(a: f32[M, K], b: f32[N, K]) -> f32[M, N] { return a @ transpose(b) }
fn mm_tn(a: f32[K, M], b: f32[K, N]) -> f32[M, N] { return transpose(a) @ b }
fn dense(x: f32[M, K], w: f32[K, N], bias: f32[N]) -> f32[M, N] { return tanh(x @ w + bias) }
fn bmm(a: f32[B, M, K], b: f32[B, K, N]) -> f32[B, M, N] { return a @ b }
fn checked(a: f32[M, K], b: f32[K, N]) -> bool { return all_finite(relu(a @ b)) }
model Wide {
  param w: f32[1024, 520] = xavier()
  fn forward(x: f32[B, 1024]) -> f32[B, 520] { return x @ w }
}
`;

export type Inputs = Record<string, { shape: number[]; data: Float32Array }>;

export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

export interface Setup {
  ir: IRModule;
  build: WasmBuild;
  one: KilnModule;
  multi: Map<number, KilnModule>;
  /** The one-thread load options (the build's relaxed wasm, or none). */
  opts: LoadOptions;
}

export async function setUp(opts: (b: WasmBuild) => LoadOptions): Promise<Setup> {
  const ir = irOf(SRC);
  const build = await buildWasm(ir, "threads_cols");
  const one = await loadKilnModule(build.manifest, build.wasm, opts(build));
  const multi = new Map<number, KilnModule>();
  for (const t of [2, 3]) multi.set(t, await loadKilnModule(build.manifest, build.wasm, { ...opts(build), threads: t }));
  return { ir, build, one, multi, opts: opts(build) };
}

export const poolOf = (m: KilnModule): ThreadPool => m[WASM_STATE]("test").pool!;
const tensors = (inputs: Inputs) => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
const bits = (t: Tensor) => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
const results = (r: unknown): Tensor[] => (Array.isArray(r) ? (r as Tensor[]) : [r as Tensor]);

/**
 * fn on `threads` threads (no fallback: a starved call would rightly run on one thread) is split by columns in
 * every call, equals one thread bit for bit, and the float64 reference within 1e-4. Returns its results.
 */
export function sameByColumns(s: Setup, threads: number, fn: string, inputs: Inputs): Tensor[] {
  const m = s.multi.get(threads)!;
  const pool = poolOf(m);
  pool.fallback = false;
  pool.resetBackoff();
  const before = pool.stats.cols;
  let got: Tensor[];
  try {
    got = results(m.call(fn, tensors(inputs)));
  } finally {
    pool.fallback = true;
  }
  expect(pool.stats.cols - before, `${fn} on ${threads} threads: column splits`).toBeGreaterThanOrEqual(1);
  const want = results(s.one.call(fn, tensors(inputs)));
  want.forEach((w, o) => {
    expect(got[o]!.shape).toEqual(w.shape);
    const [uw, ug] = [bits(w), bits(got[o]!)];
    expect(ug.findIndex((x, i) => x !== uw[i]), `${fn} on ${threads} threads, result ${o}: first differing element`).toBe(-1);
  });
  const g = s.ir.functions.find((f) => f.name === fn)!;
  const params = Object.fromEntries(s.build.manifest.params.map((p) => [p.name, m.getParam(p.name).data as Float32Array]));
  const ref = evaluateGraph(g, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { dtype: "f32", shape: v.shape, data: Array.from(v.data) }])), params);
  got.forEach((t, o) => {
    if (t.dtype === "f32") expectClose(t, ref[o]!, fn, 1e-4, 1e-4);
  });
  return got;
}

/** [M, K, N]: few rows; N not a multiple of NR = 8, N past NC = 1024 (a chunk starting inside the second block), and N = 33. */
export const SHAPES: readonly (readonly [number, number, number])[] = [[4, 2048, 1024], [16, 784, 203], [8, 300, 2100], [8, 4096, 33], [30, 512, 512]];

export function checkAllShapes(s: Setup): void {
  for (const t of [2, 3]) {
    for (const [M, K, N] of SHAPES) {
      if (t === 3 && N < 48) continue; // fewer than 16 columns a thread: not cut by columns
      sameByColumns(s, t, "mm", { a: { shape: [M, K], data: rand(M * K, M + K) }, b: { shape: [K, N], data: rand(K * N, N) } });
      sameByColumns(s, t, "mm_nt", { a: { shape: [M, K], data: rand(M * K, 3) }, b: { shape: [N, K], data: rand(K * N, 5) } });
      sameByColumns(s, t, "mm_tn", { a: { shape: [K, M], data: rand(M * K, 7) }, b: { shape: [K, N], data: rand(K * N, 9) } });
      sameByColumns(s, t, "dense", { x: { shape: [M, K], data: rand(M * K, 11) }, w: { shape: [K, N], data: rand(K * N, 13) }, bias: { shape: [N], data: rand(N, 17) } });
    }
  }
}

/**
 * The matmul kernel of single-step function `fn`, run alone on one thread with its column globals at [n0, n1):
 * it must write exactly those columns of every output matrix, each bit-equal to the whole call's (so a column
 * chunk neither skips nor redoes another's columns: the results tests above cannot see work done twice).
 */
export async function expectColumnChunkAlone(s: Setup, fn: string, inputs: Inputs, dims: Record<string, number>, n0: number, n1: number): Promise<void> {
  const k = await loadKernels(s.build.wasm, s.opts);
  const f = s.build.manifest.functions.find((x) => x.name === fn)!;
  expect(f.steps.length, `${fn} is one matmul step`).toBe(1);
  const step = f.steps[0]!;
  const numel = (shape: readonly (string | number)[]) => shape.reduce<number>((p, d) => p * (typeof d === "number" ? d : dims[d]!), 1);
  const out = f.values[step.buffers.at(-1)!]!;
  const outN = numel(out.shape);
  const SENTINEL = 0x7fc0dead; // a NaN no kernel computes
  const ptrs = step.buffers.map((v) => {
    const val = f.values[v]!;
    const src = val.source;
    if (src.kind === "input") {
      const data = inputs[f.inputs[src.index]!.name]!.data;
      const p = k.memory.allocPersistent(4 * data.length, "input");
      k.memory.write(p, data);
      return p;
    }
    return k.memory.allocPersistent(src.kind === "temp" && "matmul" in src && src.matmul ? MATMUL_SCRATCH_MAX : 4 * outN, "buffer");
  });
  const outPtr = ptrs.at(-1)!;
  const args = [...ptrs, ...step.ints.map((p) => evalDimPoly(p, dims))];
  const kernel = k.kernels.get(step.kernel!)!;
  const run = (): Int32Array => {
    k.memory.view("i32", outPtr, outN).fill(SENTINEL);
    kernel(...args);
    return k.memory.view("i32", outPtr, outN).slice();
  };
  const full = run();
  const [g0, g1] = COL_RANGE_GLOBALS.map((g) => k.instance.exports[g] as WebAssembly.Global);
  g0!.value = n0;
  g1!.value = n1;
  let part: Int32Array;
  try {
    part = run();
  } finally {
    g0!.value = 0;
    g1!.value = ALL_COLUMNS;
  }
  const N = typeof out.shape.at(-1) === "number" ? (out.shape.at(-1) as number) : dims[out.shape.at(-1) as string]!;
  let bad = -1;
  for (let i = 0; i < outN && bad < 0; i++) {
    const j = i % N;
    if (part[i] !== (j >= n0 && j < n1 ? full[i] : SENTINEL)) bad = i;
  }
  expect(full.includes(SENTINEL), `${fn}: the whole call writes every element`).toBe(false);
  expect(bad, `${fn} columns [${n0}, ${n1}): first element written wrongly (row ${Math.floor(bad / N)}, column ${bad % N})`).toBe(-1);
  k.pool?.close();
}

/** Column ranges alone: inside one NC = 1024 block, across its edge, the last (ragged) one, and empty. */
export async function checkChunksAlone(s: Setup): Promise<void> {
  const [M, K, N] = [5, 300, 2100];
  const mm: Inputs = { a: { shape: [M, K], data: rand(M * K, 1) }, b: { shape: [K, N], data: rand(K * N, 2) } };
  const dense: Inputs = { x: mm.a!, w: mm.b!, bias: { shape: [N], data: rand(N, 3) } };
  const bmm: Inputs = { a: { shape: [2, M, K], data: rand(2 * M * K, 4) }, b: { shape: [2, K, N], data: rand(2 * K * N, 5) } };
  for (const [n0, n1] of [[8, 24], [1016, 1048], [1024, 2048], [2096, 2100], [0, 2100], [40, 40]] as const) {
    await expectColumnChunkAlone(s, "mm", mm, { M, K, N }, n0, n1);
    await expectColumnChunkAlone(s, "dense", dense, { M, K, N }, n0, n1);
    await expectColumnChunkAlone(s, "bmm", bmm, { B: 2, M, K, N }, n0, n1);
  }
}
