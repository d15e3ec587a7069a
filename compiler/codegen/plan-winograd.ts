// Codegen stage, planner: when a gathered NCHW convolution (plan-conv-gather.ts `nchw`) runs as Winograd F(2x2, 3x3)
// in wasm (wasm/winograd.ts) instead of the implicit GEMM, and the scratch that needs. 3x3, stride 1, dilation 1 and
// enough channels only: each output 2x2 tile costs 16 C-long dot products instead of 36, but the transforms are
// O(C) and O(O) work per tile, which small layers do not pay back. WGSL ignores the choice (same call, same args).
import type { ConvGather, WinogradPlan } from "./kernel.js";
import { MATMUL_SCRATCH_MAX, type MicroShape } from "./wasm/matmul-blocking.js";

/**
 * The microkernel of the 16 products, 4x8 in both builds: with K = C = 64 the relaxed build's 6x8 madd kernel ran
 * them slower than a 4x8 madd one (conv 64x56x56, bench/winograd-ab.js, CPU ms per call, load 7-9: 6x8 5.1-5.5,
 * 4x8 3.6), unlike the big gemm's.
 */
export const WINOGRAD_MICRO: MicroShape = { mr: 4, nr: 8 };

/** Fewest input and output channels for Winograd (measured, docs/performance.md "Winograd F(2x2,3x3)"). */
export const WINOGRAD_MIN_CHANNELS = 16;
/** Tiles per block (V and M of one block stay in L2 beside the transformed weights): about this many. */
// Measured on conv 64x56x56 (CPU ms per call, load 7-9, plain / relaxed): 32 tiles 4.9 / 4.1, 64 4.6 / 3.6, 128 4.3 / 3.7.
const BLOCK_TILES = 64;

const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

/** Tile-grid facts shared by the planner and the renderer. */
export function winogradGrid(cv: ConvGather, rowsPerBlock: number): { TH: number; TWp: number; blockTiles: number } {
  const TH = Math.ceil(cv.OH / 2);
  // Tile rows padded to a multiple of 4: the transforms take 4 tiles of one row per vector.
  const TWp = roundUp(Math.ceil(cv.OW / 2), 4);
  return { TH, TWp, blockTiles: roundUp(rowsPerBlock * TWp, 8) };
}

/** Scratch bytes of the Winograd kernel (both builds): U [16][O'][C] (unless prepacked), V [16][C][Tb], M [16][O'][Tb]. */
export function winogradScratchBytes(cv: ConvGather, w: WinogradPlan): number {
  const { blockTiles: Tb } = winogradGrid(cv, w.rowsPerBlock);
  const Op = roundUp(w.O, WINOGRAD_MICRO.mr);
  return 4 * 16 * ((w.prepacked ? 0 : Op * cv.C) + cv.C * Tb + Op * Tb);
}

/** `KILN_WINOGRAD=0` turns it off (A/B measurements); a number sets the channel threshold. */
function minChannels(): number | null {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_WINOGRAD;
  if (env === undefined || env === "") return WINOGRAD_MIN_CHANNELS;
  const n = Number(env);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/**
 * The Winograd plan for this gathered convolution with O output channels, or undefined (implicit GEMM). `prepacked`:
 * the weight is a param the runtime transforms once (its transform then takes no scratch).
 */
export function winogradFor(cv: ConvGather, O: number, prepacked = false): WinogradPlan | undefined {
  const min = minChannels();
  if (min === null || cv.KH !== 3 || cv.KW !== 3 || cv.stride.some((s) => s !== 1) || cv.dilation.some((d) => d !== 1)) return undefined;
  if (cv.C < min || O < min || cv.OH < 2 || cv.OW < 2) return undefined;
  const { TWp, TH } = winogradGrid(cv, 1);
  const most = Math.max(1, Math.min(TH, Math.floor(BLOCK_TILES / TWp)));
  // Tiny images waste most of a block's tiles (a 2x2 output is 1 tile of 8 computed): at least half must be real.
  if (2 * most * Math.ceil(cv.OW / 2) < winogradGrid(cv, most).blockTiles) return undefined;
  // As many tile rows per block as make about BLOCK_TILES tiles, fewer where the scratch would outgrow what each
  // extra thread gets (MATMUL_SCRATCH_MAX): wide layers' transformed weights take most of it.
  for (let rows = most; rows >= 1; rows--) {
    const plan: WinogradPlan = { O, rowsPerBlock: rows, ...(prepacked ? { prepacked: true as const } : {}) };
    if (winogradScratchBytes(cv, plan) <= MATMUL_SCRATCH_MAX) return plan;
  }
  return undefined;
}
