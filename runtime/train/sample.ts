// Text generation from a trained language model: slides a window of the model's context length over the text so
// far, calls its forward (ids [1, T] -> logits [1, T, V]) and draws the next id from softmax(logits / temperature)
// at the last position, with a seeded RNG so a run repeats exactly.

import { KilnError } from "../errors.js";
import { Rng } from "../rng.js";
import { Tensor } from "../tensor.js";

/** What generation needs of a loaded module (wasm or anything with the same call()). */
export interface Callable {
  call(name: string, inputs: Record<string, Tensor>): Tensor | Tensor[];
}

export interface SampleOptions {
  /** The forward function, e.g. "GPT.forward", and its ids input's name. */
  fn: string;
  input: string;
  /** Context length T: the forward's fixed sequence length. */
  context: number;
  /** How many ids to generate. */
  count: number;
  /** Softmax temperature (default 1); 0 picks the most likely id. */
  temperature?: number;
  seed?: number;
  /** Draw only ids below this (a model with more classes than the text has characters, as an imported one). */
  vocab?: number;
}

/** Draws one id from softmax(logits / temperature); temperature 0 is argmax. */
export function sampleLogits(logits: ArrayLike<number>, temperature: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  const p = Array.from(logits, (z) => Math.exp((z - logits[best]!) / temperature));
  let u = rng.uniform() * p.reduce((a, b) => a + b, 0);
  for (let i = 0; i < p.length; i++) if ((u -= p[i]!) < 0) return i;
  return p.length - 1;
}

/** The prompt's ids (at least `context` of them) followed by `count` generated ids. */
export function generate(mod: Callable, prompt: ArrayLike<number>, o: SampleOptions): Int32Array {
  const T = o.context;
  if (prompt.length < T) throw new KilnError(`sample: the prompt has ${prompt.length} ids; the model reads windows of ${T}`, { code: "bad_option", fn: o.fn, tensor: o.input });
  const temperature = o.temperature ?? 1;
  if (!(temperature >= 0)) throw new KilnError(`sample: temperature must be >= 0, got ${temperature}`, { code: "bad_option" });
  const rng = new Rng(o.seed ?? 0);
  const out = new Int32Array(prompt.length + o.count);
  out.set(Array.from(prompt));
  for (let n = prompt.length; n < out.length; n++) {
    const window = new Tensor("i32", [1, T], out.slice(n - T, n));
    const r = mod.call(o.fn, { [o.input]: window });
    const logits = (Array.isArray(r) ? r[0]! : r);
    const V = logits.shape[logits.shape.length - 1]!;
    const data = logits.data as Float32Array;
    out[n] = sampleLogits(data.subarray(data.length - V, data.length - V + Math.min(V, o.vocab ?? V)), temperature, rng);
  }
  return out;
}
