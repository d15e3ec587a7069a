// DataLoader: batches a dataset in a sampler's order, with seeded per-epoch shuffling, drop-last, per-batch
// transforms and label checks. Batches live in a fixed pool of slots (2 for the sync iterator, 3 for the async one,
// which prepares batch i+1 while the caller works on batch i), so an epoch allocates no batch buffers.

import { KilnError } from "../errors.js";
import type { DType } from "../dtype.js";
import type { Rng } from "../rng.js";
import type { Dataset, Sample } from "./dataset.js";
import { checkSamplerIndices, RandomSampler, SequentialSampler, type Sampler } from "./sampler.js";
import { checkLabels, Collator, inferSpec, type Batch, type Slot } from "./collate.js";
import { checkSeed, epochRng, STREAM_AUGMENT } from "./random.js";
import { BufferPool, type Transform } from "./transforms.js";

export interface DataLoaderOptions {
  /** Samples per batch: a positive integer. */
  batchSize: number;
  /** A fresh random order every epoch (a RandomSampler seeded with `seed`); default false. */
  shuffle?: boolean;
  /** Visiting order (instead of `shuffle`). */
  sampler?: Sampler;
  /** Seed of the shuffle and of the transforms' random parameters (default 0). */
  seed?: number;
  /** Skip a last batch smaller than batchSize (default false: it is yielded with its own first dim). */
  dropLast?: boolean;
  /** Per-field transforms applied to each batch (batched: every sample draws its own parameters). */
  transforms?: Record<string, Transform>;
  /** Check that every label is an integer in [0, numClasses). */
  numClasses?: number;
  /** The field `numClasses` checks (default "label"). */
  labelKey?: string;
  /** Yield copies that stay valid forever (allocates per batch) instead of pooled buffers. */
  copy?: boolean;
  /** Async iteration prepares the next batch while the caller's step runs (default true). */
  prefetch?: boolean;
  /** dtype of number fields (default: i32 when sample 0's value is an integer, else f32). */
  dtypes?: Record<string, DType>;
  /** Custom collation (allocates as it likes; the pooled-buffer guarantee then covers only transform outputs). */
  collate?: (samples: Sample[], indices: number[]) => Batch;
}

/** One epoch's plan: the visiting order, the batch count and the transforms' random stream. */
interface Plan {
  order: ArrayLike<number>;
  batches: number;
  rng: Rng;
}

/** The buffers one iteration uses; the loader keeps one lease and reuses it epoch after epoch. */
interface Lease {
  slots: Slot[];
  /** This iteration's copy of the epoch order (samplers refill theirs in place on the next call). */
  order: Int32Array;
  busy: boolean;
}

const SYNC_SLOTS = 2;
const ASYNC_SLOTS = 3;

export class DataLoader implements Iterable<Batch>, AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly sampler: Sampler;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly #opts: DataLoaderOptions;
  readonly #collator: Collator;
  #lease: Lease | undefined;
  #nextEpoch = 0;

  constructor(dataset: Dataset, opts: DataLoaderOptions) {
    const bs = opts.batchSize;
    if (typeof bs !== "number" || !Number.isInteger(bs) || bs <= 0) {
      throw new KilnError(`DataLoader: batchSize must be a positive integer, got ${bs}`, { code: "bad_option", tensor: "batchSize", actual: String(bs) });
    }
    if (opts.sampler && opts.shuffle) throw new KilnError("DataLoader: give either sampler or shuffle, not both", { code: "bad_option" });
    this.seed = opts.seed ?? 0;
    checkSeed(this.seed, "DataLoader: seed");
    if (opts.numClasses !== undefined && !(Number.isInteger(opts.numClasses) && opts.numClasses > 0)) {
      throw new KilnError(`DataLoader: numClasses must be a positive integer, got ${opts.numClasses}`, { code: "bad_option" });
    }
    this.dataset = dataset;
    this.batchSize = bs;
    this.dropLast = opts.dropLast ?? false;
    this.sampler = opts.sampler ?? (opts.shuffle ? new RandomSampler(dataset.length, { seed: this.seed }) : new SequentialSampler(dataset.length));
    this.#opts = opts;
    this.#collator = new Collator(dataset, inferSpec(dataset, opts.dtypes), bs);
    this.#checkFields();
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the next plain `for (… of loader)` will run (each such loop advances it). */
  get nextEpoch(): number {
    return this.#nextEpoch;
  }

  set nextEpoch(e: number) {
    if (!Number.isSafeInteger(e) || e < 0) throw new KilnError(`DataLoader: epoch ${e} is not a non-negative integer`, { code: "bad_option" });
    this.#nextEpoch = e;
  }

  /** The batches of one given epoch (replayable: the same epoch always gives the same batches). */
  epoch(e: number): Iterable<Batch> & AsyncIterable<Batch> {
    if (!Number.isSafeInteger(e) || e < 0) throw new KilnError(`DataLoader: epoch ${e} is not a non-negative integer`, { code: "bad_option" });
    return {
      [Symbol.iterator]: () => this.#syncEpoch(e),
      [Symbol.asyncIterator]: () => (this.#opts.prefetch ?? true ? this.#asyncEpoch(e) : this.#asyncNoPrefetch(e)),
    };
  }

  [Symbol.iterator](): Iterator<Batch> {
    return this.epoch(this.#nextEpoch++)[Symbol.iterator]();
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epoch(this.#nextEpoch++)[Symbol.asyncIterator]();
  }

  *#syncEpoch(e: number): Generator<Batch, void, undefined> {
    const lease = this.#acquire(SYNC_SLOTS);
    try {
      const plan = this.#plan(e, lease);
      for (let b = 0; b < plan.batches; b++) yield this.#produce(plan, b, lease.slots[b % SYNC_SLOTS]!);
    } finally {
      this.#release(lease);
    }
  }

  async *#asyncEpoch(e: number): AsyncGenerator<Batch, void, undefined> {
    const lease = this.#acquire(ASYNC_SLOTS);
    let pending: Promise<Batch> | undefined;
    try {
      const plan = this.#plan(e, lease);
      const start = (b: number) => {
        const p = onMacrotask(() => this.#produce(plan, b, lease.slots[b % ASYNC_SLOTS]!));
        p.catch(() => {}); // surfaced when awaited; a loop that breaks early must not leave an unhandled rejection
        return p;
      };
      if (plan.batches > 0) pending = start(0);
      for (let b = 0; b < plan.batches; b++) {
        const batch = await pending!;
        pending = b + 1 < plan.batches ? start(b + 1) : undefined;
        yield batch;
      }
    } finally {
      // A prefetch still in flight writes into this lease's slots: let it finish before another epoch reuses them.
      if (pending) await pending.catch(() => {});
      this.#release(lease);
    }
  }

  async *#asyncNoPrefetch(e: number): AsyncGenerator<Batch, void, undefined> {
    for (const b of this.#syncEpoch(e)) yield b;
  }

  #plan(e: number, lease: Lease): Plan {
    const indices = this.sampler.epochIndices(e);
    checkSamplerIndices(indices, this.dataset.length);
    const n = indices.length;
    if (lease.order.length !== n) lease.order = new Int32Array(n);
    lease.order.set(indices);
    const order = lease.order;
    const batches = this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    return { order, batches, rng: epochRng(this.seed, e, STREAM_AUGMENT) };
  }

  #produce(plan: Plan, b: number, slot: Slot): Batch {
    const start = b * this.batchSize;
    const count = Math.min(this.batchSize, plan.order.length - start);
    const raw = this.#opts.collate ? this.#customCollate(plan.order, start, count) : this.#collator.fill(slot, plan.order, start, count);
    const { numClasses, labelKey = "label", transforms, copy } = this.#opts;
    if (numClasses !== undefined) {
      const labels = raw[labelKey];
      if (!labels) throw new KilnError(`DataLoader: numClasses is set but the batch has no field "${labelKey}"`, { code: "bad_option", tensor: labelKey });
      checkLabels(labels, labelKey, numClasses, plan.order, start);
    }
    let out = raw;
    if (transforms) {
      out = { ...raw };
      for (const [k, t] of Object.entries(transforms)) out[k] = t.apply(raw[k]!, plan.rng, { batched: true, buffers: slot.pool });
    }
    if (copy) out = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.clone()]));
    return out;
  }

  #customCollate(order: ArrayLike<number>, start: number, count: number): Batch {
    const indices = Array.from({ length: count }, (_, j) => order[start + j]!);
    return this.#opts.collate!(indices.map((i) => this.dataset.get(i)), indices);
  }

  #acquire(slots: number): Lease {
    const lease: Lease = this.#lease && !this.#lease.busy ? this.#lease : { slots: [], order: new Int32Array(0), busy: false };
    // The first lease is kept; a second iteration running at the same time gets buffers of its own.
    this.#lease ??= lease;
    while (lease.slots.length < slots) lease.slots.push(this.#opts.collate ? { full: {}, views: new Map(), pool: new BufferPool() } : this.#collator.newSlot());
    lease.busy = true;
    return lease;
  }

  #release(lease: Lease): void {
    lease.busy = false;
  }

  #checkFields(): void {
    const spec = this.#collator.spec;
    if (this.#opts.collate || this.dataset.length === 0) return;
    const { numClasses, labelKey = "label", transforms = {} } = this.#opts;
    const known = Object.keys(spec).map((k) => `"${k}"`).join(", ");
    if (numClasses !== undefined && !spec[labelKey]) {
      throw new KilnError(`DataLoader: numClasses is set but samples have no field "${labelKey}" (fields: ${known}); set labelKey`, { code: "bad_option", tensor: labelKey });
    }
    for (const k of Object.keys(transforms)) {
      if (!spec[k]) throw new KilnError(`DataLoader: a transform is given for "${k}" but samples have no such field (fields: ${known})`, { code: "bad_option", tensor: k });
    }
  }
}

let schedule: ((cb: () => void) => void) | undefined;

/** Runs fn on a later macrotask, so it can overlap whatever the caller awaits in the meantime. */
function onMacrotask<T>(fn: () => T): Promise<T> {
  schedule ??= makeScheduler();
  return new Promise<T>((resolve, reject) => {
    schedule!(() => {
      try {
        resolve(fn());
      } catch (e) {
        reject(e);
      }
    });
  });
}

// setImmediate under Node; a MessageChannel in browsers (setTimeout is clamped to 4 ms once nested).
function makeScheduler(): (cb: () => void) => void {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  if (typeof g.setImmediate === "function") return (cb) => void g.setImmediate!(cb);
  if (typeof MessageChannel === "function") {
    const ch = new MessageChannel();
    const queue: Array<() => void> = [];
    ch.port1.onmessage = () => queue.shift()?.();
    return (cb) => {
      queue.push(cb);
      ch.port2.postMessage(0);
    };
  }
  return (cb) => void setTimeout(cb, 0);
}
