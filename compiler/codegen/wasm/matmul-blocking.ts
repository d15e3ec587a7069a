// Codegen stage (wasm): the matmul blocking constants and the scratch size they imply. Kept free of Binaryen so
// the planner (which sizes each function's scratch buffer) and the thread metadata can share one formula.

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

const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

/**
 * Scratch layout of one gemm call (bytes from the scratch pointer): [edge tile MR*NR][packed B kc*nc][packed A
 * mc*kc](+ [partial sums mc*nc]), with kc = min(K, KC), nc = roundUp(min(N, NC), NR), mc = roundUp(min(M, MC), MR). The matmul renderer
 * computes the same offsets at run time; this is the size the caller must reserve.
 */
export function gemmScratchBytes(shape: MicroShape, M: number, K: number, N: number, partial = false): number {
  if ((K === 0 && !partial) || M === 0 || N === 0) return 0;
  const kc = Math.min(K, KC);
  const nc = roundUp(Math.min(N, NC), shape.nr);
  const mc = roundUp(Math.min(M, MC), shape.mr);
  // `partial`: an epilogue storing 16-bit values keeps the f32 sums of an mc x nc block here ([... A][C mc*nc]).
  return 4 * (shape.mr * shape.nr + kc * (nc + mc) + (partial ? mc * nc : 0));
}

/**
 * Bytes of scratch enough for both builds; a dim that is unknown at compile time (undefined) is taken at its
 * block size, which bounds what the kernel uses for any value of it.
 */
export function matmulScratchBytes(M: number | undefined, K: number | undefined, N: number | undefined, partial = false): number {
  const dims = [M ?? MC, K ?? KC, N ?? NC] as const;
  return Math.max(...Object.values(MICRO).map((s) => gemmScratchBytes(s, ...dims, partial)));
}

/** Scratch for any M, K, N and any epilogue: what one extra thread needs for its own packing. */
export const MATMUL_SCRATCH_MAX = matmulScratchBytes(undefined, undefined, undefined, true);
