// Seeded randomness for the data pipeline: independent Rng streams derived from (seed, epoch, purpose), unbiased
// integers below n, and Fisher–Yates permutations, all on top of runtime/rng.ts.

import { KilnError } from "../errors.js";
import { Rng } from "../rng.js";

/** Stream tags, so the shuffle order and the augmentation draws of one epoch never share a stream. */
export const STREAM_SHUFFLE = 0x5348;
export const STREAM_AUGMENT = 0x4147;
export const STREAM_SPLIT = 0x5350;

/** A 32-bit seed mixing `seed` with each part (murmur3's finaliser per step), so nearby inputs give unrelated seeds. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  checkSeed(seed);
  let h = (seed >>> 0) ^ Math.imul(Math.floor(seed / 4294967296) >>> 0, 0x9e3779b1);
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x9e3779b9) | 0;
  }
  return h >>> 0;
}

/** The Rng of one purpose in one epoch. */
export function epochRng(seed: number, epoch: number, stream: number): Rng {
  return new Rng(deriveSeed(seed, stream, epoch));
}

export function checkSeed(seed: number, where = "seed"): void {
  if (!Number.isSafeInteger(seed)) throw new KilnError(`${where} must be a safe integer, got ${seed}`, { code: "bad_option" });
}

/** Uniform integer in [0, n) without modulo bias (rejection of the top partial range). */
export function randomInt(rng: Rng, n: number): number {
  if (n <= 1) return 0;
  const limit = 4294967296 - (4294967296 % n);
  for (;;) {
    const u = rng.nextU32();
    if (u < limit) return u % n;
  }
}

/** Shuffles `a` in place (Fisher–Yates, from the end). */
export function shuffleInPlace(a: { length: number; [i: number]: number }, rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
