// Default collation: stacks the samples of a batch into [batch, ...] tensors of each field's dtype, writing into
// preallocated slot buffers (no allocation per batch). A slot holds one batch's buffers and its transforms' outputs.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { f32ToBf16Bits, f32ToF16Bits, type AnyTypedArray, type DType } from "../dtype.js";
import { checkIndex, type Dataset, type Sample, type SampleSpec } from "./dataset.js";
import { BufferPool } from "./transforms.js";

/** A batch: each field stacked along a new first axis. */
export type Batch = Record<string, Tensor>;

/** Buffers for one batch in flight: full-size tensors, views of them for a short last batch, transform outputs. */
export interface Slot {
  readonly full: Batch;
  readonly views: Map<number, Batch>;
  readonly pool: BufferPool;
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = { i32: [-2147483648, 2147483647], i8: [-128, 127], u8: [0, 255], bool: [0, 1] };

/** The fields of a dataset's samples: from its sampleSpec(), else from sample 0 (numbers: i32 if integral, else f32). */
export function inferSpec(ds: Dataset, dtypes: Record<string, DType> = {}): SampleSpec {
  if (ds.sampleSpec) return ds.sampleSpec();
  if (ds.length === 0) return {};
  const s = ds.get(0);
  const spec: SampleSpec = {};
  for (const [k, v] of Object.entries(s)) {
    if (v instanceof Tensor) spec[k] = { dtype: v.dtype, shape: [...v.shape] };
    else if (typeof v === "number") spec[k] = { dtype: dtypes[k] ?? (Number.isInteger(v) ? "i32" : "f32"), shape: [] };
    else throw new KilnError(`dataset sample 0: field "${k}" is neither a Tensor nor a number`, { code: "input_value", tensor: k });
  }
  return spec;
}

export class Collator {
  readonly #keys: string[];
  readonly #sizes: number[];

  constructor(readonly dataset: Dataset, readonly spec: SampleSpec, readonly batchSize: number) {
    this.#keys = Object.keys(spec);
    this.#sizes = this.#keys.map((k) => spec[k]!.shape.reduce((a, b) => a * b, 1));
  }

  newSlot(): Slot {
    const full: Batch = {};
    for (const k of this.#keys) full[k] = new Tensor(this.spec[k]!.dtype, [this.batchSize, ...this.spec[k]!.shape]);
    return { full, views: new Map(), pool: new BufferPool() };
  }

  /** Stacks samples order[start .. start+count) into the slot; returns the slot's tensors (or views for count < batch). */
  fill(slot: Slot, order: ArrayLike<number>, start: number, count: number): Batch {
    const fast = this.dataset.copyInto !== undefined && this.dataset.sampleSpec !== undefined;
    for (let b = 0; b < count; b++) {
      const i = order[start + b]!;
      checkIndex(i, this.dataset.length, "DataLoader");
      if (fast) this.#keys.forEach((k, j) => this.dataset.copyInto!(i, k, slot.full[k]!.data, b * this.#sizes[j]!));
      else this.#write(slot.full, b, i, this.dataset.get(i));
    }
    return count === this.batchSize ? slot.full : this.#view(slot, count);
  }

  #view(slot: Slot, count: number): Batch {
    let v = slot.views.get(count);
    if (!v) {
      v = {};
      this.#keys.forEach((k, j) => {
        const t = slot.full[k]!;
        v![k] = new Tensor(t.dtype, [count, ...t.shape.slice(1)], t.data.subarray(0, count * this.#sizes[j]!));
      });
      slot.views.set(count, v);
    }
    return v;
  }

  #write(full: Batch, b: number, i: number, s: Sample): void {
    this.#keys.forEach((k, j) => {
      const want = this.spec[k]!;
      const v = s[k];
      const dst = full[k]!.data;
      const size = this.#sizes[j]!;
      if (v instanceof Tensor) {
        if (v.dtype !== want.dtype || !sameShape(v.shape, want.shape)) {
          throw new KilnError(`dataset sample ${i}: field "${k}" is ${v.dtype}[${v.shape.join(", ")}] but sample 0's is ${want.dtype}[${want.shape.join(", ")}]`, { code: "input_shape", tensor: k, expected: `${want.dtype}[${want.shape.join(", ")}]`, actual: `${v.dtype}[${v.shape.join(", ")}]` });
        }
        (dst as Uint8Array).set(v.data as Uint8Array, b * size);
      } else if (typeof v === "number" && want.shape.length === 0) {
        dst[b] = encodeNumber(want.dtype, v, k, i);
      } else {
        throw new KilnError(`dataset sample ${i}: field "${k}" is ${v === undefined ? "missing" : `not a ${want.shape.length ? "Tensor" : "number"}`}`, { code: "input_value", tensor: k });
      }
    });
  }
}

function encodeNumber(d: DType, v: number, key: string, i: number): number {
  const range = INT_RANGE[d];
  if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) {
    throw new KilnError(`dataset sample ${i}: field "${key}" is ${v}, not a ${d} value (sample 0 made it ${d}; set the loader's dtypes option to change that)`, { code: "input_value", tensor: key, expected: d, actual: String(v) });
  }
  if (d === "f16") return f32ToF16Bits(v);
  if (d === "bf16") return f32ToBf16Bits(v);
  return v;
}

/** Every label of the batch must be an integer in [0, numClasses). `order`/`start` name the offending sample. */
export function checkLabels(t: Tensor, key: string, numClasses: number, order: ArrayLike<number>, start: number): void {
  const data = t.data as AnyTypedArray;
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  for (let j = 0; j < data.length; j++) {
    const v = data[j]!;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      const idx = order[start + Math.floor(j / per)]!;
      throw new KilnError(`DataLoader: label "${key}" of dataset index ${idx} is ${v}, outside [0, ${numClasses}) (numClasses ${numClasses})`, { code: "input_value", tensor: key, expected: `0..${numClasses - 1}`, actual: String(v) });
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
