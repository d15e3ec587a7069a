// How one kernel call is cut into chunks for the thread pool, from the compiler's "kiln.parallel" description:
// matmuls by row ranges of C (small chunks when B is packed once for all of them), elementwise kernels along
// their outer axis. Chunk boundaries depend only on the
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

export interface Chunks {
  /** One argument list per chunk. */
  chunks: number[][];
  /** The argument each worker replaces with its own scratch (-1: none). */
  scratchArg: number;
  /** Cut for a B packed once and shared by all chunks (the caller must pack it: RowSplit.sharedB). */
  sharedB?: boolean;
  /** The call's work (multiply-adds or elements): the pool checks CPU time only on large dispatches. */
  work: number;
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

function splitRows(s: RowSplit, args: readonly number[], threads: number, maxChunks: number, sharedB: boolean): Chunks | null {
  const [m0, m1] = [args[s.range]!, args[s.range + 1]!];
  const rows = m1 - m0;
  if (work(args, s.work) < MIN_MATMUL_WORK || rows < 2 * s.align) return null;
  const [most, minRows] = sharedB ? [SHARED_CHUNKS_PER_THREAD, SHARED_CHUNK_ROWS] : [MATMUL_CHUNKS_PER_THREAD, MIN_CHUNK_ROWS];
  const perThread = Math.max(1, Math.min(most, Math.floor(rows / (minRows * threads))));
  const parts = Math.min(maxChunks, threads * perThread);
  const chunks = cuts(rows, parts, s.align).map(([a, b]) => {
    const call = [...args];
    call[s.range] = m0 + a;
    call[s.range + 1] = m0 + b;
    return call;
  });
  return { chunks, scratchArg: s.scratch, sharedB, work: work(args, s.work) };
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
 * The chunks of one kernel call, or null to run it whole on the calling thread. `sharedB`: the caller can pack
 * B once for all chunks (the kernel's RowSplit.sharedB and the module's packer are there).
 */
export function splitCall(s: KernelSplit, args: readonly number[], threads: number, maxChunks: number, sharedB = false): Chunks | null {
  const r = s.kind === "rows" ? splitRows(s, args, threads, maxChunks, sharedB && s.sharedB !== undefined) : splitOuter(s, args, threads, maxChunks);
  return r && r.chunks.length > 1 ? r : null;
}
