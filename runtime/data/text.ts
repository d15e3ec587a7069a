// Text data for language models: a file's characters (or UTF-8 bytes) as i32 ids with a vocabulary, split by
// position into a training part and a held-out part (nanoGPT's habit: the first 90% / the last 10%), and batches
// of random windows of T + 1 ids as (x = ids[s .. s+T), y = ids[s+1 .. s+T]) for next-token prediction.

import { KilnError } from "../errors.js";
import { readBytes } from "../io.js";
import { Rng } from "../rng.js";
import { Tensor } from "../tensor.js";

/** Ids <-> text. "char": the file's distinct characters (code points), sorted; "byte": the 256 byte values. */
export class Vocabulary {
  readonly kind: "char" | "byte";
  /** The character of each id ("char"); empty for "byte". */
  readonly chars: readonly string[];
  readonly #index = new Map<string, number>();

  constructor(kind: "char" | "byte", chars: readonly string[] = []) {
    this.kind = kind;
    this.chars = chars;
    chars.forEach((c, i) => this.#index.set(c, i));
  }

  /** The sorted distinct characters of `text`. */
  static ofText(text: string): Vocabulary {
    return new Vocabulary("char", [...new Set(text)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  get size(): number {
    return this.kind === "byte" ? 256 : this.chars.length;
  }

  encode(text: string): Int32Array {
    if (this.kind === "byte") return Int32Array.from(new TextEncoder().encode(text));
    const out = new Int32Array([...text].length);
    let i = 0;
    for (const c of text) {
      const id = this.#index.get(c);
      if (id === undefined) throw new KilnError(`text: character ${JSON.stringify(c)} is not in the vocabulary of ${this.size}`, { code: "input_value", tensor: "text", actual: JSON.stringify(c) });
      out[i++] = id;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    if (this.kind === "byte") return new TextDecoder().decode(Uint8Array.from(ids as ArrayLike<number>));
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]!];
      if (c === undefined) throw new KilnError(`text: id ${ids[i]} is out of range for the vocabulary of ${this.size}`, { code: "input_value", tensor: "ids", expected: `0..${this.size - 1}`, actual: String(ids[i]) });
      s += c;
    }
    return s;
  }
}

export interface TextDatasetOptions {
  /** "char" (default) or "byte". */
  vocab?: "char" | "byte";
  /** Fraction of the ids, from the start, used for training (default 0.9); the rest is held out. */
  trainFraction?: number;
}

/** One part of a text (train or held-out): its ids and random or fixed windows over them. */
export class TextSplit {
  constructor(readonly name: string, readonly ids: Int32Array) {}

  /** x and y [batch, T] i32: windows starting at `starts`, y shifted by one. */
  windows(starts: readonly number[], T: number): { x: Tensor; y: Tensor } {
    const x = new Int32Array(starts.length * T), y = new Int32Array(starts.length * T);
    starts.forEach((s, b) => {
      if (!(Number.isInteger(s) && s >= 0 && s + T + 1 <= this.ids.length)) {
        throw new KilnError(`text: window start ${s} with T=${T} is out of range for the ${this.name} split of ${this.ids.length} ids`, { code: "bad_option", tensor: this.name });
      }
      x.set(this.ids.subarray(s, s + T), b * T);
      y.set(this.ids.subarray(s + 1, s + T + 1), b * T);
    });
    return { x: new Tensor("i32", [starts.length, T], x), y: new Tensor("i32", [starts.length, T], y) };
  }

  /** `batch` windows at uniformly random starts drawn from `rng`. */
  randomBatch(rng: Rng, batch: number, T: number): { x: Tensor; y: Tensor } {
    const last = this.ids.length - T - 1;
    if (last < 0) throw new KilnError(`text: the ${this.name} split has ${this.ids.length} ids, fewer than a window of T + 1 = ${T + 1}`, { code: "bad_option", tensor: this.name });
    return this.windows(Array.from({ length: batch }, () => Math.floor(rng.uniform() * (last + 1))), T);
  }
}

export class TextDataset {
  readonly train: TextSplit;
  readonly heldOut: TextSplit;
  constructor(readonly vocab: Vocabulary, readonly ids: Int32Array, trainFraction: number) {
    if (!(trainFraction > 0 && trainFraction < 1)) throw new KilnError(`text: trainFraction must be in (0, 1), got ${trainFraction}`, { code: "bad_option" });
    const cut = Math.floor(ids.length * trainFraction);
    this.train = new TextSplit("train", ids.subarray(0, cut));
    this.heldOut = new TextSplit("held-out", ids.subarray(cut));
  }

  static fromText(text: string, opts: TextDatasetOptions = {}): TextDataset {
    const vocab = (opts.vocab ?? "char") === "byte" ? new Vocabulary("byte") : Vocabulary.ofText(text);
    return new TextDataset(vocab, vocab.encode(text), opts.trainFraction ?? 0.9);
  }
}

/** Reads a UTF-8 text file (path or URL) into a TextDataset. */
export async function loadText(path: string | URL, opts: TextDatasetOptions = {}): Promise<TextDataset> {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(await readBytes(path));
  if (text.length === 0) throw new KilnError(`text: ${String(path)} is empty`, { code: "bad_option" });
  return TextDataset.fromText(text, opts);
}
