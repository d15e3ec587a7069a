// Map-style datasets: `length` and `get(i)` returning a record of Tensors and numbers. TensorDataset slices
// in-memory tensors along their shared first dim; Subset re-indexes any dataset. Both offer the loader a fast path
// (sampleSpec + copyInto) that copies rows straight into batch buffers without building per-sample objects.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { AnyTypedArray, DType } from "../dtype.js";

/** One sample: named tensors (e.g. an image) and numbers (e.g. a label). */
export type Sample = Record<string, Tensor | number>;

/** dtype and per-sample shape of each field of a dataset's samples (a number is a [] field). */
export type SampleSpec = Record<string, { dtype: DType; shape: number[] }>;

export interface Dataset<S extends Sample = Sample> {
  readonly length: number;
  /** Sample i, 0 <= i < length. */
  get(i: number): S;
  /** Optional fast path for the loader: every sample's fields, known without reading one. */
  sampleSpec?(): SampleSpec;
  /** Optional fast path: copies field `key` of sample i into `dst` from element `offset` on. */
  copyInto?(i: number, key: string, dst: AnyTypedArray, offset: number): void;
}

export function checkIndex(i: number, length: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new KilnError(`${what}: index ${i} out of range for a dataset of length ${length}`, { code: "index", actual: String(i) });
  }
}

/**
 * Samples are rows of tensors sharing their first dim: `new TensorDataset({ image, label })` with image [N, 28, 28]
 * and label [N] gives samples `{ image: Tensor [28, 28], label: number }`. get() returns views (no copies) of the
 * rows: writing to them writes the dataset.
 */
export class TensorDataset implements Dataset {
  readonly tensors: Readonly<Record<string, Tensor>>;
  readonly length: number;
  readonly #rowSize: Record<string, number>;

  constructor(tensors: Record<string, Tensor>) {
    const keys = Object.keys(tensors);
    if (keys.length === 0) throw new KilnError("TensorDataset: needs at least one tensor", { code: "bad_option" });
    for (const k of keys) {
      const t = tensors[k];
      if (!(t instanceof Tensor)) throw new KilnError(`TensorDataset: "${k}" is not a Tensor`, { code: "bad_option", tensor: k });
      if (t.rank === 0) throw new KilnError(`TensorDataset: "${k}" is a scalar; every tensor needs a first (sample) dim`, { code: "input_shape", tensor: k });
    }
    const n = tensors[keys[0]!]!.shape[0]!;
    for (const k of keys) {
      const m = tensors[k]!.shape[0]!;
      if (m !== n) {
        throw new KilnError(`TensorDataset: "${k}" has ${m} rows but "${keys[0]}" has ${n}; all tensors must share their first dim`, { code: "input_shape", tensor: k, expected: String(n), actual: String(m) });
      }
    }
    this.tensors = { ...tensors };
    this.length = n;
    this.#rowSize = Object.fromEntries(keys.map((k) => [k, rowSize(tensors[k]!)]));
  }

  get(i: number): Sample {
    checkIndex(i, this.length, "TensorDataset.get");
    const out: Sample = {};
    for (const [k, t] of Object.entries(this.tensors)) {
      const size = this.#rowSize[k]!;
      out[k] = t.rank === 1 ? t.get(i) : new Tensor(t.dtype, t.shape.slice(1), t.data.subarray(i * size, (i + 1) * size));
    }
    return out;
  }

  sampleSpec(): SampleSpec {
    return Object.fromEntries(Object.entries(this.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape.slice(1) }]));
  }

  copyInto(i: number, key: string, dst: AnyTypedArray, offset: number): void {
    const t = this.tensors[key];
    if (t === undefined) throw new KilnError(`TensorDataset: no tensor "${key}"`, { code: "unknown_input", tensor: key });
    const size = this.#rowSize[key]!;
    if (size === 1) dst[offset] = t.data[i]!;
    else (dst as Uint8Array).set(t.data.subarray(i * size, (i + 1) * size) as Uint8Array, offset);
  }

  /** Rows [start, end) as a new dataset over views of the same data (no copy). */
  slice(start: number, end = this.length): TensorDataset {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.length || start > end) {
      throw new KilnError(`TensorDataset.slice: range [${start}, ${end}) is not within [0, ${this.length})`, { code: "index" });
    }
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(this.tensors)) {
      const size = this.#rowSize[k]!;
      out[k] = new Tensor(t.dtype, [end - start, ...t.shape.slice(1)], t.data.subarray(start * size, end * size));
    }
    return new TensorDataset(out);
  }
}

/** The samples of `dataset` at `indices`, in that order (like torch.utils.data.Subset). */
export class Subset<S extends Sample = Sample> implements Dataset<S> {
  readonly dataset: Dataset<S>;
  readonly indices: Int32Array;

  constructor(dataset: Dataset<S>, indices: ArrayLike<number>) {
    this.dataset = dataset;
    this.indices = Int32Array.from(indices as ArrayLike<number>, (i) => {
      checkIndex(i, dataset.length, "Subset");
      return i;
    });
    if (dataset.sampleSpec) this.sampleSpec = () => dataset.sampleSpec!();
    if (dataset.copyInto) this.copyInto = (i, key, dst, off) => dataset.copyInto!(this.#map(i), key, dst, off);
  }

  get length(): number {
    return this.indices.length;
  }

  get(i: number): S {
    return this.dataset.get(this.#map(i));
  }

  sampleSpec?(): SampleSpec;
  copyInto?(i: number, key: string, dst: AnyTypedArray, offset: number): void;

  #map(i: number): number {
    checkIndex(i, this.indices.length, "Subset.get");
    return this.indices[i]!;
  }
}

function rowSize(t: Tensor): number {
  return t.shape.slice(1).reduce((a, b) => a * b, 1);
}
