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

const ABORT = 0, COUNT = 1, GEN = 2;
const HEADER_BYTES = 16;
/** Milliseconds per Atomics.wait slice: how soon a waiter notices an abort raised without a notify. */
const SLICE_MS = 20;

/** Bytes of a collective buffer for `replicas` replicas and rounds of up to `capacity` f32 elements. */
export function collectiveBytes(replicas: number, capacity: number): number {
  return HEADER_BYTES + 4 * 2 * replicas * capacity;
}

/** Capacity (elements per round) of a buffer of `bytes` for `replicas`. */
function capacityOf(bytes: number, replicas: number): number {
  return Math.floor((bytes - HEADER_BYTES) / (4 * 2 * replicas));
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
      ? `replica ${rank} stopped in an all_reduce (sync_batch_norm): replica ${by} saw no progress for its timeout and gave up (a replica died or hangs)`
      : `replica ${rank} stopped in an all_reduce (sync_batch_norm): replica ${by} failed`, { code: "replica_failed", replica: by });
    this.by = by;
  }
}

/** A wait that saw no progress: some replica died without a word or hangs (not this one's fault). */
export class CollectiveTimeout extends KilnError {}

export class SharedCollective implements Collective {
  readonly #h: Int32Array;
  readonly #buffer: SharedArrayBuffer;
  readonly #replicas: number;
  readonly #rank: number;
  readonly #capacity: number;
  readonly #timeoutMs: number;
  readonly #block: boolean;

  constructor(buffer: SharedArrayBuffer, replicas: number, rank: number, timeoutMs: number) {
    this.#buffer = buffer;
    this.#h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#replicas = replicas;
    this.#rank = rank;
    this.#capacity = capacityOf(buffer.byteLength, replicas);
    if (this.#capacity < 1) throw new KilnError(`the collective buffer of ${buffer.byteLength} bytes is too small for ${replicas} replicas`, { code: "bad_option" });
    this.#timeoutMs = timeoutMs;
    this.#block = canBlock(this.#h);
  }

  /** Clears a failed call's state; only while no replica is inside a call (the coordinator, between steps). */
  reset(): void {
    Atomics.store(this.#h, ABORT, 0);
    Atomics.store(this.#h, COUNT, 0);
  }

  /** This replica failed during a call: stop the others' waits (the first failure is the one reported). */
  fail(): void {
    Atomics.compareExchange(this.#h, ABORT, 0, this.#rank + 1);
    Atomics.notify(this.#h, GEN);
  }

  #slot(parity: number, r: number, n: number): Float32Array {
    return new Float32Array(this.#buffer, HEADER_BYTES + 4 * (parity * this.#replicas + r) * this.#capacity, n);
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
      if (Date.now() > deadline) {
        Atomics.compareExchange(h, ABORT, 0, -(this.#rank + 1));
        Atomics.notify(h, GEN);
        throw new CollectiveTimeout(`replica ${this.#rank} waited ${this.#timeoutMs} ms in an all_reduce (sync_batch_norm) without the other replicas arriving: a replica died or hangs`, { code: "replica_failed", replica: this.#rank });
      }
      if (this.#block) Atomics.wait(h, GEN, gen, SLICE_MS);
    }
  }

  #checkAbort(): void {
    const a = Atomics.load(this.#h, ABORT);
    if (a > 0) throw new CollectiveAborted(this.#rank, a - 1, false);
    if (a < 0) throw new CollectiveAborted(this.#rank, -a - 1, true);
  }
}
