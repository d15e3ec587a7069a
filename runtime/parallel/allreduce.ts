// Data-parallel replicas, the gradient exchange: each replica's flat gradient vector in its own slot of one shared
// buffer, and the all-reduce as reduce-scatter + all-gather over it. Every bucket is cut into one chunk per
// replica; replica r sums chunk r of every bucket over the slots in replica order (0, 1, 2, ...), each sum
// rounded to f32, and all replicas then read the reduced vector. The result depends only on the slots'
// bits and the weights, never on which thread reduced what or when: runs are bit-identical.

import { KilnError } from "../errors.js";
import type { DataParallelLayout } from "../manifest.js";

export interface Exchange {
  /** Slot r: replica r's gradient vector. */
  readonly slots: Float32Array[];
  /** The reduced vector every replica's apply reads. */
  readonly reduced: Float32Array;
}

/** Bytes of the exchange buffer for `replicas` replicas of vectors of `total` elements. */
export function exchangeBytes(replicas: number, total: number): number {
  return 4 * (replicas + 1) * total;
}

export function exchangeViews(buffer: ArrayBufferLike, replicas: number, total: number): Exchange {
  const slots = Array.from({ length: replicas }, (_, r) => new Float32Array(buffer, 4 * r * total, total));
  return { slots, reduced: new Float32Array(buffer, 4 * replicas * total, total) };
}

/**
 * The element ranges replica `rank` reduces: chunk `rank` of every bucket, chunks split on multiples of 4
 * elements (16 bytes) so each is a whole number of SIMD vectors except at a bucket's end.
 */
export function ownedRanges(layout: Pick<DataParallelLayout, "buckets">, replicas: number, rank: number): [number, number][] {
  const out: [number, number][] = [];
  for (const b of layout.buckets) {
    const per = Math.ceil(b.numel / replicas / 4) * 4;
    const start = Math.min(b.numel, rank * per), end = Math.min(b.numel, (rank + 1) * per);
    if (end > start) out.push([b.offset + start, b.offset + end]);
  }
  return out;
}

/**
 * reduced[i] = slot0[i] + slot1[i] + ... in that order, rounded to f32 after every addition (JS adds two f32 values
 * exactly in f64, so rounding the result once is IEEE f32 addition). Each slot already holds its replica's share of
 * the global batch's gradient (grad weights its loss by the share), so the sum is the global gradient.
 */
export function reduceRange(ex: Exchange, from: number, to: number): void {
  const { slots, reduced } = ex;
  reduced.set(slots[0]!.subarray(from, to), from);
  for (let r = 1; r < slots.length; r++) {
    const s = slots[r]!;
    for (let i = from; i < to; i++) reduced[i] = reduced[i]! + s[i]!;
  }
}

/** The all-reduce's share of replica `rank` of `replicas`: its chunks of every bucket. */
export function reduceOwned(ex: Exchange, layout: Pick<DataParallelLayout, "buckets">, replicas: number, rank: number): void {
  for (const [from, to] of ownedRanges(layout, replicas, rank)) reduceRange(ex, from, to);
}

/**
 * Each replica's share of a global batch of `batch` samples: contiguous, in replica order, the first
 * `batch % replicas` replicas one sample more (numpy's array_split rule). [start, size] per replica.
 */
export function splitBatch(batch: number, replicas: number): [number, number][] {
  const q = Math.floor(batch / replicas), rem = batch % replicas;
  const out: [number, number][] = [];
  let start = 0;
  for (let r = 0; r < replicas; r++) {
    const size = q + (r < rem ? 1 : 0);
    out.push([start, size]);
    start += size;
  }
  return out;
}

/** Checks the `replicas` option: an integer >= 1. */
export function checkReplicas(n: unknown, what = "replicas"): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new KilnError(`${what} must be an integer >= 1, got ${typeof n === "number" ? n : JSON.stringify(n) ?? String(n)}`, { code: "bad_option" });
  }
  return n;
}
