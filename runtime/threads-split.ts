// How one kernel call is cut into per-thread calls, from the compiler's "kiln.parallel" description: matmuls by
// row ranges of C (each thread with its own packing scratch), elementwise kernels along their outer axis. Cuts
// never change which elements a thread's vector loop covers, so results equal the single-threaded ones.

import type { KernelSplit, OuterSplit, RowSplit } from "./threads-meta.js";
import type { ThreadCalls } from "./threads.js";

/** Below this many multiply-adds a matmul stays on one thread (waking a worker costs ~10-50 us). */
export const MIN_MATMUL_WORK = 1 << 20;
/** Below this many elements an elementwise kernel stays on one thread. */
export const MIN_ELEMENTWISE_WORK = 1 << 17;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** [start, end) of part t of n items split `parts` ways, cut at multiples of `unit`. */
function part(n: number, parts: number, t: number, unit: number): [number, number] {
  const cut = (i: number) => Math.min(n, Math.round((n * i) / parts / unit) * unit);
  return [cut(t), t === parts - 1 ? n : cut(t + 1)];
}

function work(args: readonly number[], idx: readonly number[]): number {
  return idx.reduce((p, i) => p * args[i]!, 1);
}

function splitRows(s: RowSplit, args: readonly number[], threads: number, scratch: readonly number[]): ThreadCalls | null {
  const [m0, m1] = [args[s.range]!, args[s.range + 1]!];
  if (work(args, s.work) < MIN_MATMUL_WORK || m1 - m0 < 2 * s.align) return null;
  return Array.from({ length: threads }, (_, t) => {
    const [a, b] = part(m1 - m0, threads, t, s.align);
    if (a >= b) return null;
    const call = [...args];
    call[s.range] = m0 + a;
    call[s.range + 1] = m0 + b;
    if (t > 0) call[s.scratch] = scratch[t - 1]!;
    return call;
  });
}

function splitOuter(s: OuterSplit, args: readonly number[], threads: number): ThreadCalls | null {
  const ext = args[s.ext]!;
  const inner = work(args, s.inner);
  if (work(args, s.work) < MIN_ELEMENTWISE_WORK || ext < 2 || inner === 0) return null;
  const unit = s.align / gcd(s.align, inner);
  return Array.from({ length: threads }, (_, t) => {
    const [a, b] = part(ext, threads, t, unit);
    if (a >= b) return null;
    const call = [...args];
    call[s.ext] = b - a;
    s.steps.forEach((st, i) => (call[i] = args[i]! + a * st.bytes * work(args, st.exts)));
    return call;
  });
}

/** Per-thread calls for one kernel call, or null to run it whole on the calling thread. */
export function splitCall(s: KernelSplit, args: readonly number[], threads: number, scratch: readonly number[]): ThreadCalls | null {
  return s.kind === "rows" ? splitRows(s, args, threads, scratch) : splitOuter(s, args, threads);
}
