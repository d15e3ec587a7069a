// How one kernel call is cut into chunks for the thread pool, from the compiler's "kiln.parallel" description:
// matmuls by row ranges of C (small chunks when B is packed once for all of them) or, when the rows are too few,
// by column ranges, elementwise kernels along their outer axis. Chunk boundaries depend only on the
// call, never on which thread runs a chunk, and never change which elements a vector loop covers, so results
// are bit-identical to one thread's.

import type { KernelSplit, OuterSplit, RowSplit } from "./threads-meta.js";

/** Below this many multiply-adds a matmul stays on one thread (waking a worker costs ~10-50 us). */
export const MIN_MATMUL_WORK = 1 << 20;
/** Below this many elements an elementwise kernel stays on one thread. */
export const MIN_ELEMENTWISE_WORK = 1 << 17;
/** A matmul chunk of fewer rows spends too much on packing B again (when each chunk packs all of B). */
const MIN_CHUNK_ROWS = 128;
/**
 * With B packed once for all chunks (RowSplit.sharedB) a chunk only packs its own rows of A, so chunks can be
 * small: one of SHARED_CHUNK_ROWS rows or more reuses each B panel over most of an MC row block.
 */
const SHARED_CHUNK_ROWS = 64;
/**
 * Chunks per thread when the work allows: a thread the OS schedules late then leaves its other chunks to the
 * others, and the caller waits at most one small chunk for a worker. Each chunk repacking B allows 2; with a
 * shared B, up to 4. Chunk counts are multiples of the thread count.
 */
const MATMUL_CHUNKS_PER_THREAD = 2;
const SHARED_CHUNKS_PER_THREAD = 4;
const ELEMENTWISE_CHUNKS_PER_THREAD = 4;
/**
 * Column chunks (RowSplit.cols) each pack all of A's rows again, as their own B columns: a chunk of fewer
 * columns than this packs A for too little work. Up to COL_CHUNKS_PER_THREAD chunks per thread.
 */
const MIN_CHUNK_COLS = 16;
const COL_CHUNKS_PER_THREAD = 2;
/**
 * Packing one element of A or B costs about this many multiply-adds of the microkernel (one thread, Node 20,
 * plain SIMD: B of [784,128] packed in 0.016 ms against 0.31 ms for the 6.4M multiply-adds of [64,784]x[784,128],
 * about 3.3; a strided B of [784,1024] about 12). Only the choice between row and column chunks uses it.
 */
const PACK_COST = 4;

export interface Chunks {
  /** One argument list per chunk. */
  chunks: number[][];
  /** The argument each worker replaces with its own scratch (-1: none). */
  scratchArg: number;
  /** Cut for a B packed once and shared by all chunks (the caller must pack it: RowSplit.sharedB). */
  sharedB?: boolean;
  /** The call's work (multiply-adds or elements): the pool checks CPU time only on large dispatches. */
  work: number;
  /**
   * Column chunks (RowSplit.cols): each chunk is the call's own arguments followed by n0 and n1, which the
   * thread puts in its COL_RANGE_GLOBALS (the kernel ignores extra arguments) before running the chunk.
   */
  cols?: boolean;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function work(args: readonly number[], idx: readonly number[]): number {
  return idx.reduce((p, i) => p * args[i]!, 1);
}

/** Boundaries of `parts` pieces of n items, cut at multiples of `unit` (empty pieces dropped). */
function cuts(n: number, parts: number, unit: number): [number, number][] {
  const at = (i: number) => (i === parts ? n : Math.min(n, Math.round((n * i) / parts / unit) * unit));
  const out: [number, number][] = [];
  for (let t = 0; t < parts; t++) if (at(t) < at(t + 1)) out.push([at(t), at(t + 1)]);
  return out;
}

/** The thread with the most of these chunk costs (longest first, each to the least loaded thread). */
function busiest(costs: readonly number[], threads: number): number {
  const load = new Array<number>(threads).fill(0);
  for (const c of [...costs].sort((a, b) => b - a)) load[load.indexOf(Math.min(...load))] += c;
  return Math.max(...load);
}

/**
 * Column chunks (each the call's arguments then n0, n1) when a matmul's rows are too few for row chunks of
 * minRows a thread, and columns finish sooner by the cost model (PACK_COST): a row split with a shared B packs
 * all of B before any chunk starts (with few rows, a large share of the call: B packing of [16,784]x[784,1024]
 * took 0.46 of 1.07 ms), while column chunks each pack their own columns of B but all rows of A again. Of the
 * plans with 1 or COL_CHUNKS_PER_THREAD chunks a thread, the one that finishes first (fewer chunks on a tie).
 * null: rows.
 */
function columnChunks(s: RowSplit, cols: NonNullable<RowSplit["cols"]>, args: readonly number[], threads: number, maxChunks: number, rowChunks: readonly (readonly number[])[] | null, sharedB: boolean, minRows: number): number[][] | null {
  const rows = args[s.range + 1]! - args[s.range]!;
  const [K, N] = [args[cols.K]!, args[cols.N]!];
  if (rows >= minRows * threads || N < MIN_CHUNK_COLS * threads) return null;
  // Critical paths in multiply-adds of one batch matrix (every chunk takes all of them alike).
  const rowCost = (r: number) => r * K * N + PACK_COST * r * K + (sharedB ? 0 : PACK_COST * K * N);
  const rowPath = rowChunks ? (sharedB ? PACK_COST * K * N : 0) + busiest(rowChunks.map((c) => rowCost(c[s.range + 1]! - c[s.range]!)), threads) : Infinity;
  let best: { path: number; chunks: number[][] } | null = null;
  for (let perThread = 1; perThread <= COL_CHUNKS_PER_THREAD && N >= perThread * threads * MIN_CHUNK_COLS; perThread++) {
    const chunks = cuts(N, Math.min(maxChunks, threads * perThread), cols.align).map(([a, b]) => [...args, a, b]);
    const path = busiest(chunks.map((c) => (c.at(-1)! - c.at(-2)!) * (rows * K + PACK_COST * K) + PACK_COST * rows * K), threads);
    if (chunks.length > 1 && path < (best?.path ?? rowPath)) best = { path, chunks };
  }
  return best?.chunks ?? null;
}

function splitRows(s: RowSplit, args: readonly number[], threads: number, maxChunks: number, sharedB: boolean): Chunks | null {
  const [m0, m1] = [args[s.range]!, args[s.range + 1]!];
  const rows = m1 - m0;
  if (work(args, s.work) < MIN_MATMUL_WORK) return null;
  const [most, minRows] = sharedB ? [SHARED_CHUNKS_PER_THREAD, SHARED_CHUNK_ROWS] : [MATMUL_CHUNKS_PER_THREAD, MIN_CHUNK_ROWS];
  const perThread = Math.max(1, Math.min(most, Math.floor(rows / (minRows * threads))));
  const parts = Math.min(maxChunks, threads * perThread);
  const chunks = rows < 2 * s.align ? null : cuts(rows, parts, s.align).map(([a, b]) => {
    const call = [...args];
    call[s.range] = m0 + a;
    call[s.range + 1] = m0 + b;
    return call;
  });
  const byCols = s.cols ? columnChunks(s, s.cols, args, threads, maxChunks, chunks && chunks.length > 1 ? chunks : null, sharedB, minRows) : null;
  if (byCols) return { chunks: byCols, scratchArg: s.scratch, work: work(args, s.work), cols: true };
  return chunks ? { chunks, scratchArg: s.scratch, sharedB, work: work(args, s.work) } : null;
}

function splitOuter(s: OuterSplit, args: readonly number[], threads: number, maxChunks: number): Chunks | null {
  const ext = args[s.ext]!;
  const inner = work(args, s.inner);
  if (work(args, s.work) < MIN_ELEMENTWISE_WORK || ext < 2 || inner === 0) return null;
  const unit = s.align / gcd(s.align, inner);
  const chunks = cuts(ext, Math.min(maxChunks, threads * ELEMENTWISE_CHUNKS_PER_THREAD), unit).map(([a, b]) => {
    const call = [...args];
    call[s.ext] = b - a;
    s.steps.forEach((st, i) => (call[i] = args[i]! + a * st.bytes * work(args, st.exts)));
    return call;
  });
  return { chunks, scratchArg: -1, work: work(args, s.work) };
}

/**
 * B of at least this many elements is packed on all threads (packChunks) when it is shared: packing takes about
 * 0.36 ns an element on one thread (0.094 ms for 512 x 512), against roughly 20 us for a dispatch.
 */
export const MIN_PACK_SPLIT = 1 << 17;
/** Column chunks per thread for packing a shared B (a late worker leaves the caller at most one small one). */
const PACK_CHUNKS_PER_THREAD = 2;

/**
 * Column chunks [n0, n1) (multiples of `align`, the packed panels' width) for packing a shared B of K x N on all
 * threads (RowSplit.sharedB.cols), or null to pack it on the calling thread. Every chunk writes only its own
 * panels, each exactly as one thread packs it, so the packed B is the same bytes.
 */
export function packChunks(K: number, N: number, threads: number, maxChunks: number, align: number): [number, number][] | null {
  if (K * N < MIN_PACK_SPLIT || N < 2 * align) return null;
  const chunks = cuts(N, Math.min(maxChunks, threads * PACK_CHUNKS_PER_THREAD), align);
  return chunks.length > 1 ? chunks : null;
}

/**
 * Whether a call has enough work to be split at all (the first test of splitCall, without building anything):
 * the thread pool's wrapper asks this before each kernel call, so the many small kernels of a training step,
 * and every kernel while the pool keeps a call on one thread, cost no chunk lists (building them for a step's
 * 17 kernels took about 15 us of a 0.7 ms MLP step: 2-3% slower than one thread).
 */
export function bigEnough(s: KernelSplit, args: readonly number[]): boolean {
  return work(args, s.work) >= (s.kind === "rows" ? MIN_MATMUL_WORK : MIN_ELEMENTWISE_WORK);
}

/**
 * The chunks of one kernel call, or null to run it whole on the calling thread. `sharedB`: the caller can pack
 * B once for all chunks (the kernel's RowSplit.sharedB and the module's packer are there). `cols`: the caller
 * can run column chunks (RowSplit.cols and the module's column globals are there).
 */
export function splitCall(s: KernelSplit, args: readonly number[], threads: number, maxChunks: number, sharedB = false, cols = false): Chunks | null {
  const r = s.kind === "rows" ? splitRows(cols || !s.cols ? s : { ...s, cols: undefined }, args, threads, maxChunks, sharedB && s.sharedB !== undefined) : splitOuter(s, args, threads, maxChunks);
  return r && r.chunks.length > 1 ? r : null;
}
