// Values of random_uniform (dropout masks): one seeded stream per (function, stream id) that advances every call,
// so training steps draw fresh values while a run stays reproducible for a load seed. The wasm executor and the
// reference interpreter both draw from this class, so with the same seed they see the same values.

import { Rng } from "./rng.js";

/** FNV-1a of a string, 32 bits. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class RandomStreams {
  readonly #base: number;
  readonly #streams = new Map<string, Rng>();

  /** `seed`: the module's load seed (any safe integer). */
  constructor(seed = 0) {
    // One word from the seed's own stream, so these streams differ from the param-init stream of the same seed.
    this.#base = new Rng(seed).nextU32();
  }

  /** The next `n` values of stream `stream` of function `fn`: uniform in [0, 1), each exactly an f32. */
  next(fn: string, stream: number, n: number): Float32Array {
    const key = `${fn}#${stream}`;
    let rng = this.#streams.get(key);
    if (!rng) {
      rng = new Rng((this.#base ^ hash32(key)) >>> 0);
      this.#streams.set(key, rng);
    }
    const out = new Float32Array(n);
    // 24 random bits: exactly representable in f32, so no value rounds up to 1.
    for (let i = 0; i < n; i++) out[i] = (rng.nextU32() >>> 8) / 16777216;
    return out;
  }
}
