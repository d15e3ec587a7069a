// Data-parallel replicas, collectives inside a function call (sync_batch_norm's all_reduce host steps): every replica
// copies its tensor into its slot of one shared buffer, meets the others at a barrier, then sums the slots itself in
// replica order 0, 1, 2, ... (the same f32 additions everywhere: the same bits on every replica, run to run). The
// slots are double-buffered by the barrier's generation, so one barrier per round suffices: a replica can write
// round k + 2's slots only after everyone arrived at round k + 1, i.e. finished reading round k.
// Faults never hang: a replica that fails during a call raises the shared abort flag (fail()) and wakes the
// waiters, which throw a KilnError naming it; a wait that sees no progress for `timeoutMs` (a replica that died
// without raising the flag: a killed worker) raises the flag itself and throws. Waits use Atomics.wait in slices
// where the thread may block (Node's main thread, workers) and spin on Atomics.load where it may not (a browser's
// main thread).

import { KilnError } from "../errors.js";
import type { Collective } from "../wasm/executor.js";
import type { DataParallelLayout } from "../manifest.js";
import { reduceRange, type Exchange } from "./allreduce.js";

// Header (i32): the abort flag, the barrier's count and generation, a scratch word, then for the gradient buckets
// (bucketReady and finish, below) the number of reduced chunks and, per bucket, how many replicas posted it.
const ABORT = 0, COUNT = 1, GEN = 2, DONE = 4, POSTED = 5;
const headerBytes = (buckets: number) => Math.ceil((4 * (POSTED + buckets)) / 16) * 16;
/** Milliseconds per Atomics.wait slice: how soon a waiter notices an abort raised without a notify. */
const SLICE_MS = 20;

/** Bytes of a collective buffer for `replicas` replicas, rounds of up to `capacity` f32 elements, `buckets` buckets. */
export function collectiveBytes(replicas: number, capacity: number, buckets = 0): number {
  return headerBytes(buckets) + 4 * 2 * replicas * capacity;
}

/** Capacity (elements per round) of a buffer of `bytes` for `replicas`. */
function capacityOf(bytes: number, replicas: number, buckets: number): number {
  return Math.floor((bytes - headerBytes(buckets)) / (4 * 2 * replicas));
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function canBlock(h: Int32Array): boolean {
  try {
    Atomics.wait(h, 3, 1, 0); // h[3] is 0: returns "not-equal" at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

/** The error a replica throws when another one stopped the call: `by` failed (or, negative, gave up waiting). */
export class CollectiveAborted extends KilnError {
  readonly by: number;
  constructor(rank: number, by: number, timedOut: boolean) {
    super(timedOut
      ? `replica ${rank} stopped waiting for the others (an all_reduce or the gradient exchange): replica ${by} saw no progress for its timeout and gave up (a replica died or hangs)`
      : `replica ${rank} stopped waiting for the others (an all_reduce or the gradient exchange): replica ${by} failed`, { code: "replica_failed", replica: by });
    this.by = by;
  }
}

/** A wait that saw no progress: some replica died without a word or hangs (not this one's fault). */
export class CollectiveTimeout extends KilnError {}

/**
 * Gradient buckets reduced while backward runs: grad's `@bucket` host steps hand each final bucket to bucketReady,
 * which copies it into this replica's slot of the gradient exchange (allreduce.ts), counts it posted, and reduces
 * this replica's chunk of every bucket all replicas have posted so far; finish() (after grad) reduces the rest,
 * waiting as needed, then waits until every replica reduced all its chunks (the all-gather). The sums are
 * reduceRange's, the same as the separate reduce round's: the same bits.
 */
export interface BucketExchange {
  readonly ex: Exchange;
  readonly layout: Pick<DataParallelLayout, "buckets">;
}

export class SharedCollective implements Collective {
  readonly #h: Int32Array;
  readonly #buckets?: BucketExchange;
  /** Which buckets this replica has reduced its chunk of, this step. */
  #reduced: boolean[] = [];
  readonly #buffer: SharedArrayBuffer;
  readonly #replicas: number;
  readonly #rank: number;
  readonly #capacity: number;
  readonly #timeoutMs: number;
  readonly #block: boolean;
  readonly #header: number;

  constructor(buffer: SharedArrayBuffer, replicas: number, rank: number, timeoutMs: number, buckets?: BucketExchange) {
    const nb = buckets?.layout.buckets.length ?? 0;
    this.#buffer = buffer;
    this.#header = headerBytes(nb);
    this.#h = new Int32Array(buffer, 0, this.#header / 4);
    this.#replicas = replicas;
    this.#rank = rank;
    if (buckets) this.#buckets = buckets;
    this.#capacity = capacityOf(buffer.byteLength, replicas, nb);
    if (this.#capacity < 1) throw new KilnError(`the collective buffer of ${buffer.byteLength} bytes is too small for ${replicas} replicas`, { code: "bad_option" });
    this.#timeoutMs = timeoutMs;
    this.#block = canBlock(this.#h);
  }

  /** Clears a failed call's state; only while no replica is inside a call (the coordinator, between steps). */
  reset(): void {
    Atomics.store(this.#h, ABORT, 0);
    Atomics.store(this.#h, COUNT, 0);
    for (let i = DONE; i < this.#h.length; i++) Atomics.store(this.#h, i, 0);
  }

  /** Before this replica's grad: no bucket reduced yet. */
  begin(): void {
    this.#reduced = (this.#buckets?.layout.buckets ?? []).map(() => false);
  }

  bucketReady(b: number, data: Float32Array): void {
    const bx = this.#buckets;
    if (!bx) return;
    bx.ex.slots[this.#rank]!.set(data, bx.layout.buckets[b]!.offset);
    Atomics.add(this.#h, POSTED + b, 1);
    Atomics.notify(this.#h, POSTED + b);
    // Reduce what is ready (this bucket if this replica posted last, earlier ones the others finished since).
    for (let k = 0; k < this.#reduced.length; k++) if (!this.#reduced[k] && Atomics.load(this.#h, POSTED + k) === this.#replicas) this.#reduceChunk(k);
  }

  /** After grad: reduces this replica's remaining chunks (waiting for their buckets), then waits for everyone's. */
  finish(): void {
    const bx = this.#buckets;
    if (!bx) return;
    for (let k = 0; k < this.#reduced.length; k++) {
      if (this.#reduced[k]) continue;
      this.#waitFor(POSTED + k, this.#replicas, `bucket ${k} of the gradients`);
      this.#reduceChunk(k);
    }
    this.#waitFor(DONE, this.#replicas * this.#reduced.length, "the other replicas' sums of the gradients");
  }

  /** Chunk `rank` of bucket k: the same split as ownedRanges (allreduce.ts), summed in replica order. */
  #reduceChunk(k: number): void {
    const bx = this.#buckets!;
    const b = bx.layout.buckets[k]!;
    const per = Math.ceil(b.numel / this.#replicas / 4) * 4;
    const start = Math.min(b.numel, this.#rank * per), end = Math.min(b.numel, (this.#rank + 1) * per);
    if (end > start) reduceRange(bx.ex, b.offset + start, b.offset + end);
    this.#reduced[k] = true;
    Atomics.add(this.#h, DONE, 1);
    Atomics.notify(this.#h, DONE);
  }

  /** Waits until counter `i` reaches `target`, failing on an abort or after the no-progress timeout. */
  #waitFor(i: number, target: number, what: string): void {
    const h = this.#h;
    let deadline = Date.now() + this.#timeoutMs;
    let seen = Atomics.load(h, i);
    while (seen < target) {
      this.#checkAbort();
      if (Date.now() > deadline) this.#timedOut(what);
      if (this.#block) Atomics.wait(h, i, seen, SLICE_MS);
      const now = Atomics.load(h, i);
      // Progress restarts the clock: the timeout is for a replica that stopped, not a slow one.
      if (now !== seen) deadline = Date.now() + this.#timeoutMs;
      seen = now;
    }
  }

  #timedOut(what: string): never {
    Atomics.compareExchange(this.#h, ABORT, 0, -(this.#rank + 1));
    Atomics.notify(this.#h, GEN);
    for (let i = DONE; i < this.#h.length; i++) Atomics.notify(this.#h, i);
    throw new CollectiveTimeout(`replica ${this.#rank} waited ${this.#timeoutMs} ms for ${what} without progress: a replica died or hangs`, { code: "replica_failed", replica: this.#rank });
  }

  /** This replica failed during a call: stop the others' waits (the first failure is the one reported). */
  fail(): void {
    Atomics.compareExchange(this.#h, ABORT, 0, this.#rank + 1);
    Atomics.notify(this.#h, GEN);
    for (let i = DONE; i < this.#h.length; i++) Atomics.notify(this.#h, i);
  }

  #slot(parity: number, r: number, n: number): Float32Array {
    return new Float32Array(this.#buffer, this.#header + 4 * (parity * this.#replicas + r) * this.#capacity, n);
  }

  allReduce(data: Float32Array): void {
    for (let at = 0; at < data.length; at += this.#capacity) {
      const part = data.subarray(at, Math.min(data.length, at + this.#capacity));
      // The generation cannot move before this replica arrives: every replica reads the same one this round.
      const gen = Atomics.load(this.#h, GEN);
      const parity = gen & 1;
      this.#slot(parity, this.#rank, part.length).set(part);
      this.#barrier(gen);
      part.set(this.#slot(parity, 0, part.length));
      for (let r = 1; r < this.#replicas; r++) {
        const s = this.#slot(parity, r, part.length);
        for (let i = 0; i < part.length; i++) part[i] = part[i]! + s[i]!;
      }
    }
  }

  #barrier(gen: number): void {
    const h = this.#h;
    this.#checkAbort();
    if (Atomics.add(h, COUNT, 1) === this.#replicas - 1) {
      Atomics.store(h, COUNT, 0);
      Atomics.add(h, GEN, 1);
      Atomics.notify(h, GEN);
      return;
    }
    const deadline = Date.now() + this.#timeoutMs;
    while (Atomics.load(h, GEN) === gen) {
      this.#checkAbort();
      if (Date.now() > deadline) this.#timedOut("the other replicas in an all_reduce (sync_batch_norm)");
      if (this.#block) Atomics.wait(h, GEN, gen, SLICE_MS);
    }
  }

  #checkAbort(): void {
    const a = Atomics.load(this.#h, ABORT);
    if (a > 0) throw new CollectiveAborted(this.#rank, a - 1, false);
    if (a < 0) throw new CollectiveAborted(this.#rank, -a - 1, true);
  }
}
