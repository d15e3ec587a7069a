// Samplers: the order in which a loader visits dataset indices in one epoch. Random orders are a function of
// (seed, epoch) alone, so any epoch can be replayed; trainValSplit partitions indices once, by seed.

import { KilnError } from "../errors.js";
import { checkIndex } from "./dataset.js";
import { checkSeed, epochRng, shuffleInPlace, STREAM_SHUFFLE, STREAM_SPLIT } from "./random.js";
import { Rng } from "../rng.js";
import { deriveSeed } from "./random.js";

export interface Sampler {
  /** Indices per epoch. */
  readonly length: number;
  /** The indices of an epoch, in visiting order. May return the same (refilled) array every call. */
  epochIndices(epoch: number): ArrayLike<number>;
}

/** 0, 1, …, n-1 every epoch. */
export class SequentialSampler implements Sampler {
  readonly length: number;
  readonly #order: Int32Array;

  constructor(n: number) {
    checkCount(n, "SequentialSampler");
    this.length = n;
    this.#order = identity(n);
  }

  epochIndices(): ArrayLike<number> {
    return this.#order;
  }
}

export interface RandomSamplerOptions {
  /** Seed of the shuffle (default 0); epoch e's order is a function of (seed, e) only. */
  seed?: number;
}

/** A fresh permutation of 0..n-1 per epoch. */
export class RandomSampler implements Sampler {
  readonly length: number;
  readonly seed: number;
  readonly #order: Int32Array;

  constructor(n: number, opts: RandomSamplerOptions = {}) {
    checkCount(n, "RandomSampler");
    this.seed = opts.seed ?? 0;
    checkSeed(this.seed, "RandomSampler: seed");
    this.length = n;
    this.#order = new Int32Array(n);
  }

  epochIndices(epoch: number): ArrayLike<number> {
    return permutation(this.#order, epochRng(this.seed, checkEpoch(epoch), STREAM_SHUFFLE));
  }
}

export interface SubsetSamplerOptions {
  /** Visit the subset in a fresh random order every epoch (default false: in the given order). */
  shuffle?: boolean;
  seed?: number;
}

/** The given indices (e.g. one side of trainValSplit), optionally shuffled per epoch. */
export class SubsetSampler implements Sampler {
  readonly subset: Int32Array;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly #order: Int32Array;

  constructor(indices: ArrayLike<number>, opts: SubsetSamplerOptions = {}) {
    this.subset = Int32Array.from(indices as ArrayLike<number>, (i) => {
      if (!Number.isInteger(i) || i < 0) throw new KilnError(`SubsetSampler: index ${i} is not a non-negative integer`, { code: "index" });
      return i;
    });
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    checkSeed(this.seed, "SubsetSampler: seed");
    this.#order = this.subset.slice();
  }

  get length(): number {
    return this.subset.length;
  }

  epochIndices(epoch: number): ArrayLike<number> {
    if (!this.shuffle) return this.subset;
    this.#order.set(this.subset);
    shuffleInPlace(this.#order, epochRng(this.seed, checkEpoch(epoch), STREAM_SHUFFLE));
    return this.#order;
  }
}

/** Indices start..end-1 (e.g. a fixed validation range), optionally shuffled per epoch. */
export function rangeSampler(start: number, end: number, opts: SubsetSamplerOptions = {}): SubsetSampler {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start) {
    throw new KilnError(`rangeSampler: [${start}, ${end}) is not a range of non-negative integers`, { code: "bad_option" });
  }
  return new SubsetSampler(Int32Array.from({ length: end - start }, (_, i) => start + i), opts);
}

export interface SplitOptions {
  /** Fraction of the n indices that go to validation (rounded to the nearest count). */
  valFraction?: number;
  /** Exact number of validation indices (instead of valFraction). */
  valCount?: number;
  /** Seed of the random partition (default 0). */
  seed?: number;
  /** Randomise which indices go where (default true); false keeps the last valCount indices for validation. */
  shuffle?: boolean;
}

/** Partitions 0..n-1 into disjoint train and validation index sets (each sorted ascending). */
export function trainValSplit(n: number, opts: SplitOptions): { train: Int32Array; val: Int32Array } {
  checkCount(n, "trainValSplit");
  const valCount = splitCount(n, opts);
  const order = identity(n);
  if (opts.shuffle ?? true) {
    const seed = opts.seed ?? 0;
    checkSeed(seed, "trainValSplit: seed");
    shuffleInPlace(order, new Rng(deriveSeed(seed, STREAM_SPLIT)));
  }
  const val = order.slice(n - valCount).sort();
  const train = order.slice(0, n - valCount).sort();
  return { train, val };
}

function splitCount(n: number, opts: SplitOptions): number {
  const { valFraction, valCount } = opts;
  if ((valFraction === undefined) === (valCount === undefined)) {
    throw new KilnError("trainValSplit: give exactly one of valFraction and valCount", { code: "bad_option" });
  }
  if (valCount !== undefined) {
    if (!Number.isInteger(valCount) || valCount < 0 || valCount > n) {
      throw new KilnError(`trainValSplit: valCount ${valCount} is not an integer in [0, ${n}]`, { code: "bad_option" });
    }
    return valCount;
  }
  if (typeof valFraction !== "number" || !(valFraction >= 0 && valFraction <= 1)) {
    throw new KilnError(`trainValSplit: valFraction ${valFraction} is not in [0, 1]`, { code: "bad_option" });
  }
  return Math.round(n * valFraction);
}

/** Checks every index an epoch will visit, before any batch is built. */
export function checkSamplerIndices(order: ArrayLike<number>, datasetLength: number): void {
  for (let k = 0; k < order.length; k++) checkIndex(order[k]!, datasetLength, `sampler (position ${k} of the epoch)`);
}

function permutation(out: Int32Array, rng: Rng): Int32Array {
  for (let i = 0; i < out.length; i++) out[i] = i;
  shuffleInPlace(out, rng);
  return out;
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function checkCount(n: number, where: string): void {
  if (!Number.isInteger(n) || n < 0) throw new KilnError(`${where}: length ${n} is not a non-negative integer`, { code: "bad_option" });
}

function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new KilnError(`epoch ${epoch} is not a non-negative integer`, { code: "bad_option" });
  return epoch;
}
