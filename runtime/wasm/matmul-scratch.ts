// The wasm matmul's blocking constants and the packing scratch they imply, in runtime/ so the executor can size
// each matmul step's scratch for the call's dims (the compiler re-exports them from codegen/wasm/matmul-blocking.ts).
import { evalDimPoly, type MatmulScratchSpec } from "../manifest.js";

export type { MatmulScratchSpec } from "../manifest.js";

/** One microkernel shape: MR rows x NR columns of C held in v128 locals (NR a multiple of 4). */
export interface MicroShape {
  readonly mr: number;
  readonly nr: number;
}

/** The two builds of every module: plain SIMD128 (mul + add) and relaxed SIMD (f32x4.relaxed_madd). */
export type SimdVariant = "plain" | "relaxed";

/**
 * Register budget: V8 allocates xmm0-xmm14 (xmm15 is its scratch). Plain SIMD needs a temporary for each
 * product, so 4x8 (8 accumulators + 2 B + 1 A + 1 product); fused madd needs none, so 6x8 (12 + 2 + 1).
 * Measured on Zen 4 / Node 20: plain 5x8 spills (30 GFLOP/s against 41 for 4x8); relaxed 6x8 reaches ~50.
 */
export const MICRO: Readonly<Record<SimdVariant, MicroShape>> = {
  plain: { mr: 4, nr: 8 },
  relaxed: { mr: 6, nr: 8 },
};

/**
 * Cache blocking (in elements): a KC x NR panel of packed B stays in L1 while the MC x KC block of packed A
 * streams from L2; B is packed KC x NC at a time. MC is a multiple of every MR so row blocks end on panel edges.
 */
export const KC = 256;
export const MC = 96;
export const NC = 1024;

/**
 * Where an epilogue storing 16-bit values keeps its f32 sums: "block", an mc x nc block (K spans several KC
 * blocks, so sums of earlier blocks must wait); "band", one MR x nc band (a single K block: each band is
 * finished and stored before the next). false: the sums go straight to the (f32) output.
 */
export type PartialSums = false | "block" | "band";

const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

/**
 * Scratch layout of one gemm call (bytes from the scratch pointer): [edge tile MR*NR][packed B kc*nc][packed A
 * mc*kc](+ [partial sums mc*nc or MR*nc]), with kc = min(K, KC), nc = roundUp(min(N, NC), NR), mc =
 * roundUp(min(M, MC), MR). The matmul renderer computes the same offsets at run time; this is what the caller
 * must reserve. (`true` is the old spelling of "block".)
 */
export function gemmScratchBytes(shape: MicroShape, M: number, K: number, N: number, partial: PartialSums | true = false): number {
  if ((K === 0 && !partial) || M === 0 || N === 0) return 0;
  const kc = Math.min(K, KC);
  const nc = roundUp(Math.min(N, NC), shape.nr);
  const mc = roundUp(Math.min(M, MC), shape.mr);
  const sums = partial === "band" ? shape.mr * nc : partial ? mc * nc : 0;
  return 4 * (shape.mr * shape.nr + kc * (nc + mc) + sums);
}

/**
 * Bytes of scratch enough for both builds; a dim that is unknown at compile time (undefined) is taken at its
 * block size, which bounds what the kernel uses for any value of it.
 */
export function matmulScratchBytes(M: number | undefined, K: number | undefined, N: number | undefined, partial: PartialSums | true = false): number {
  const dims = [M ?? MC, K ?? KC, N ?? NC] as const;
  return Math.max(...Object.values(MICRO).map((s) => gemmScratchBytes(s, ...dims, partial)));
}

/** Scratch for any M, K, N and any epilogue: what one extra thread needs for its own packing. */
export const MATMUL_SCRATCH_MAX = matmulScratchBytes(undefined, undefined, undefined, "block");

/**
 * A matmul step's packing scratch as the manifest describes it (ValueSource "temp", field `matmul`): the gemm's
 * M (all merged rows), K and N, its partial sums, and a floor (the int8 variant's scratch, qmatmul-layout.ts).
 */

/** Bytes the step's scratch needs at these dims (the value's compile-time shape is an upper bound of this). */
export function matmulScratchBytesAt(s: MatmulScratchSpec, dims: Record<string, number>): number {
  const [M, K, N] = [s.M, s.K, s.N].map((p) => evalDimPoly(p, dims)) as [number, number, number];
  const partial = s.partial === "auto" ? (K <= KC ? "band" : "block") : s.partial ?? false;
  return Math.max(matmulScratchBytes(M, K, N, partial), s.minBytes ?? 0);
}
