// Codegen stage (wasm): the "kiln.parallel" custom section — for each kernel the thread pool may split, how
// (runtime/wasm/threads-meta.ts is the contract). Matmuls split by rows of C (or, with few rows, by columns: the
// runtime chooses per call), elementwise kernels along their outermost axis, softmax rows by rows, pooling and its gradient by planes; everything else runs on one thread.
import type { KernelSplit, ParallelInfo } from "../../../runtime/wasm/threads-meta.js";
import { PARALLEL_SECTION } from "../../../runtime/wasm/threads-meta.js";
import { prepackName } from "../../../runtime/wasm/prepack.js";
import { dtypeBytes } from "../../ir/types.js";
import { softmaxRowsBuffers, type KernelSpec, type MatmulKernel, type NamedKernel } from "../kernel.js";
import { MATMUL_SCRATCH_MAX, MICRO, type SimdVariant } from "./matmul-blocking.js";

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/**
 * Whether the thread pool may pack this matmul's B once for all its row chunks (RowSplit.sharedB): one plain f32
 * B per call (no batch axes, not prepacked, not a convolution's gathered patches), packed as prepackB packs it.
 */
export function sharesPackedB(k: MatmulKernel): boolean {
  return k.dtype === "f32" && k.batchRank === 0 && !k.prepackedB && !k.aConv && !k.convOut && (k.bDtype ?? "f32") === "f32" && !k.bRound;
}

/**
 * Whether gemms honour a column range (matmul.ts columnGlobals) and matmuls offer column splits: on unless
 * KILN_THREADS_NSPLIT=0 (an A/B switch, part of the compile cache key as it changes the kernels).
 */
export function columnSplits(): boolean {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_THREADS_NSPLIT !== "0";
}

function splitOf(spec: KernelSpec, simd: SimdVariant): KernelSplit | null {
  if (spec.kind === "matmul") {
    const br = spec.batchRank;
    // Epilogue inputs sit between scratch and out, a flag after out (kernel.ts): both shift the integer args.
    const np = 4 + (spec.epilogue?.inputs.length ?? 0) + (spec.flag ? 1 : 0);
    // Cuts on microkernel panel edges, so no thread gets an extra partial tile.
    // With column ranges the packer honours them too (matmul.ts prepackB): the pool may pack B on all threads.
    const sharedB = sharesPackedB(spec) ? { b: 1, K: np + 1, N: np + 2, packer: prepackName(spec.transB === true), ...(columnSplits() ? { cols: true as const } : {}) } : undefined;
    // Winograd kernels have no gemm over N (their ints are images, O, 9 C, pixels, m0, m1): rows only.
    const cols = columnSplits() && !spec.winograd ? { N: np + br + 2, K: np + br + 1, align: MICRO[simd].nr } : undefined;
    return { kind: "rows", range: np + br + 3, align: MICRO[simd].mr, scratch: 2, scratchBytes: MATMUL_SCRATCH_MAX, work: range(np, br + 3), ...(sharedB ? { sharedB } : {}), ...(cols ? { cols } : {}) };
  }
  if (spec.kind === "elementwise" && spec.rank >= 1) {
    const n = spec.inputs.length;
    // Extra outputs (multi-output kernels) follow out, before the extents; they move like out.
    const outs = [spec.out, ...(spec.extraOutputs ?? []).map((o) => o.dtype)];
    // A flag (one bool every chunk may clear) follows them and does not move.
    const e0 = n + outs.length + (spec.flag ? 1 : 0);
    const inner = range(e0 + 1, spec.rank - 1);
    const steps = [
      ...spec.inputs.map((i) => ({ bytes: i.bcast[0] ? 0 : dtypeBytes(i.dtype), exts: inner.filter((_, k) => !i.bcast[k + 1]) })),
      ...outs.map((d) => ({ bytes: dtypeBytes(d), exts: inner })),
      ...(spec.flag ? [{ bytes: 0, exts: [] }] : []),
    ];
    return { kind: "outer", ext: e0, inner, steps, align: 4, work: range(e0, spec.rank) };
  }
  // Rows are independent: a thread takes a range of them (each row is computed the same on any thread).
  if (spec.kind === "softmax_rows" && spec.saves) {
    // (in, [out,] [exps,] [maxes,] sums, rows, cols): the maxes and sums move by one f32 per row.
    const bufs = ["in", ...softmaxRowsBuffers(spec)];
    const e0 = bufs.length;
    const row = { bytes: 4, exts: [e0 + 1] };
    return { kind: "outer", ext: e0, inner: [e0 + 1], steps: bufs.map((b) => (b === "maxes" || b === "sums" ? { bytes: 4, exts: [] } : row)), align: 1, work: [e0, e0 + 1] };
  }
  // (in_0, ..., in_{n-1}, out, outer, rows, cols), split over outer: row inputs move by rows f32 per outer index,
  // full ones and out by rows rows; tiles (the same for every outer index) and single values stay.
  if (spec.kind === "softmax_grad_rows") {
    const n = spec.inputs.length;
    const step = (l: "full" | "row" | "one" | "tile") => (l === "full" ? { bytes: 4, exts: [n + 2, n + 3] } : l === "row" ? { bytes: 4, exts: [n + 2] } : { bytes: 0, exts: [] });
    return { kind: "outer", ext: n + 1, inner: [n + 2, n + 3], steps: [...spec.inputs.map((i) => step(i.layout)), step("full")], align: 1, work: [n + 1, n + 2, n + 3] };
  }
  if (spec.kind === "softmax_rows") return { kind: "outer", ext: 2, inner: [3], steps: [{ bytes: 4, exts: [3] }, { bytes: 4, exts: [3] }], align: 1, work: [2, 3] };
  // Planes are independent: a thread takes whole images (align C), so a per-channel input stays put and plane
  // p % C of the kernel is still the channel. An input per image but broadcast over channels has no per-plane step.
  if (spec.kind === "pool2d") {
    const ins = spec.prologue?.inputs ?? [{ bcast: [false, false, false, false] }];
    if (ins.some((i) => !i.bcast[0] && i.bcast[1])) return null;
    const step = (b: readonly boolean[]) => ({ bytes: b[0] ? 0 : 4 * (b[2] ? 1 : spec.H) * (b[3] ? 1 : spec.W), exts: [] });
    const n = ins.length;
    return { kind: "outer", ext: n + 1, inner: [], steps: [...ins.map((i) => step(i.bcast)), { bytes: 4 * spec.OH * spec.OW, exts: [] }], align: spec.C, work: [n + 1, n + 2] };
  }
  if (spec.kind === "maxpool_grad") {
    const [hw, ohw] = [4 * spec.OH * spec.KH * spec.OW * spec.KW, 4 * spec.OH * spec.OW];
    return { kind: "outer", ext: 3, inner: [], steps: [{ bytes: hw, exts: [] }, { bytes: ohw, exts: [] }, { bytes: hw, exts: [] }], align: 1, work: [3, 4] };
  }
  return null;
}

export function parallelSection(kernels: readonly NamedKernel[], simd: SimdVariant): { name: string; contents: Uint8Array } | null {
  const info: ParallelInfo = { version: 1, kernels: {} };
  for (const k of kernels) {
    const s = splitOf(k.spec, simd);
    if (s) info.kernels[k.name] = s;
  }
  if (Object.keys(info.kernels).length === 0) return null;
  return { name: PARALLEL_SECTION, contents: new TextEncoder().encode(JSON.stringify(info)) };
}
