// Deterministic seeded PRNG for param init: xoshiro128** whose 128-bit state is filled by splitmix32 from an
// integer seed. Pure 32-bit integer arithmetic (Math.imul), so the raw stream is identical on every platform.

import { KilnError } from "./errors.js";

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32: a stream of well-mixed 32-bit words from a 32-bit seed (used only to seed xoshiro). */
function splitmix32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
}

export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare: number | null = null;

  /** `seed`: any safe integer (negative and > 2^32 values are fine). */
  constructor(seed = 0) {
    if (!Number.isSafeInteger(seed)) throw new KilnError(`rng: seed must be a safe integer, got ${seed}`, { code: "bad_option" });
    // splitmix32 gives the four state words. Its 32-bit seed is the seed's low 32 bits (two's complement for
    // negative seeds), XORed with a hash of the high bits for seeds outside [-2^31, 2^32).
    const hiBits = Math.floor(seed / 4294967296) >>> 0;
    const mixedHi = hiBits === 0 || hiBits === 0xffffffff ? 0 : splitmix32(hiBits)();
    const next = splitmix32((seed >>> 0) ^ mixedHi);
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1; // all-zero state is a fixed point
  }

  /** Next raw 32-bit output, as an unsigned integer. */
  nextU32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number;
  /** Uniform in [low, high). */
  uniform(low: number, high: number): number;
  uniform(low = 0, high = 1): number {
    return low + (high - low) * (this.nextU32() / 4294967296);
  }

  /** Normal(mean, std) by Box–Muller; each pair of uniforms gives two samples (the second is kept for the next call). */
  normal(mean = 0, std = 1): number {
    let z: number;
    if (this.#spare !== null) {
      z = this.#spare;
      this.#spare = null;
    } else {
      const u1 = 1 - this.uniform(); // (0, 1]: log is finite
      const u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      z = r * Math.cos(theta);
      this.#spare = r * Math.sin(theta);
    }
    return mean + std * z;
  }
}
