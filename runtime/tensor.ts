// Tensor: a dtype, a concrete shape and a typed array of elements in row-major order. Call results are Tensors;
// Tensors are also accepted as call inputs (their shape binds symbolic dims). toString() prints numpy-style.

import { KilnError } from "./errors.js";
import {
  allocTypedArray, decodeElement, describeTypedArray, encodeValues, isDType, typedArrayMatches,
  type DType, type TypedArrayFor,
} from "./dtype.js";

export type NestedNumbers = number | NestedNumbers[];

/**
 * Marks Tensors of every copy of the runtime (a standalone module's kiln-runtime/ beside the package's), so a
 * Tensor one model returns is a Tensor to another: `instanceof Tensor` and isTensor() test this brand
 * (Symbol.for is shared by all copies), never the prototype chain.
 */
export const TENSOR_BRAND: unique symbol = Symbol.for("kiln.tensor");

/** Whether `x` is a Tensor made by any copy of the Kiln runtime (checked: dtype, shape and data agree). */
export function isTensor(x: unknown): x is Tensor {
  if (typeof x !== "object" || x === null || (x as { [TENSOR_BRAND]?: unknown })[TENSOR_BRAND] !== true) return false;
  const t = x as Tensor;
  if (!isDType(t.dtype) || !Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) return false;
  return typedArrayMatches(t.dtype, t.data) && t.data.length === t.shape.reduce((a, b) => a * b, 1);
}

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: number[];
  readonly data: TypedArrayFor[D];

  /** By brand, not prototype chain: see TENSOR_BRAND (subclasses keep the ordinary check). */
  static [Symbol.hasInstance](x: unknown): x is Tensor {
    return this === Tensor ? isTensor(x) : Function.prototype[Symbol.hasInstance].call(this, x);
  }

  get [TENSOR_BRAND](): true {
    return true;
  }

  /**
   * `data` is used as is (not copied) when it is the dtype's typed array; a plain array of numbers is converted
   * (checked: integer dtypes need integers in range). Omit `data` for a zero-filled tensor.
   */
  constructor(dtype: D, shape: readonly number[], data?: TypedArrayFor[D] | ArrayLike<number | boolean>) {
    if (!isDType(dtype)) throw new KilnError(`Tensor: unknown dtype ${JSON.stringify(dtype)}`, { code: "bad_option" });
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new KilnError(`Tensor: bad shape [${shape.join(", ")}]: dims must be non-negative integers`, { code: "bad_option" });
    }
    const size = shape.reduce((a, b) => a * b, 1);
    let arr: TypedArrayFor[D];
    if (data === undefined) arr = allocTypedArray(dtype, size);
    else if (typedArrayMatches(dtype, data)) arr = data as TypedArrayFor[D];
    else if (ArrayBuffer.isView(data)) {
      throw new KilnError(`Tensor: dtype ${dtype} needs a ${allocTypedArray(dtype, 0).constructor.name} but got ${describeTypedArray(data)}`, { code: "input_dtype", expected: dtype });
    } else {
      const enc = encodeValues(dtype, data);
      if ("bad" in enc) throw new KilnError(`Tensor: element ${enc.index} is ${enc.bad}, not a valid ${dtype} value`, { code: "input_value" });
      arr = enc as TypedArrayFor[D];
    }
    if (arr.length !== size) {
      throw new KilnError(`Tensor: shape [${shape.join(", ")}] has ${size} elements but the data has ${arr.length}`, { code: "input_shape", expected: `${size} elements`, actual: `${arr.length}` });
    }
    this.dtype = dtype;
    this.shape = [...shape];
    this.data = arr;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Element at a multi-index (f16/bf16 decoded to numbers, bool as 0/1). */
  get(...idx: number[]): number {
    if (idx.length !== this.shape.length) {
      throw new KilnError(`Tensor.get: expected ${this.shape.length} indices for shape [${this.shape.join(", ")}], got ${idx.length}`, { code: "index" });
    }
    let flat = 0;
    for (let i = 0; i < idx.length; i++) {
      const n = this.shape[i]!;
      let k = idx[i]!;
      if (Number.isInteger(k) && k < 0) k += n;
      if (!Number.isInteger(k) || k < 0 || k >= n) {
        throw new KilnError(`Tensor.get: index ${idx[i]} out of range for axis ${i} of size ${n}`, { code: "index" });
      }
      flat = flat * n + k;
    }
    return decodeElement(this.dtype, this.data[flat]!);
  }

  /** Nested JS arrays (a number for a rank-0 tensor); f16/bf16 decoded, bool as 0/1. */
  toArray(): NestedNumbers {
    const build = (axis: number, offset: number): NestedNumbers => {
      if (axis === this.shape.length) return decodeElement(this.dtype, this.data[offset]!);
      const n = this.shape[axis]!;
      const stride = this.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const out: NestedNumbers[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = build(axis + 1, offset + i * stride);
      return out;
    };
    return build(0, 0);
  }

  /** Flat elements as plain numbers (f16/bf16 decoded). */
  toFlatArray(): number[] {
    return Array.from(this.data as ArrayLike<number>, (v) => decodeElement(this.dtype, v));
  }

  /**
   * Resolves to this Tensor: the same `await t.read()` as a WebGPU call's GpuTensor, so code written for either
   * backend reads results one way.
   */
  read(): Promise<Tensor<D>> {
    return Promise.resolve(this);
  }

  /** A deep copy. */
  clone(): Tensor<D> {
    return new Tensor(this.dtype, this.shape, this.data.slice() as TypedArrayFor[D]);
  }

  /** numpy-like text: `tensor([[1.0000, 2.0000], ...], dtype=f32, shape=[2, 2])`, elided when large. */
  toString(options: { threshold?: number; edgeItems?: number } = {}): string {
    return formatTensor(this, options.threshold ?? 1000, options.edgeItems ?? 3);
  }
}

function formatTensor(t: Tensor, threshold: number, edge: number): string {
  const elide = t.size > threshold;
  const isFloat = t.dtype === "f32" || t.dtype === "f64" || t.dtype === "f16" || t.dtype === "bf16";
  // Collect the elements that will be printed, to choose a common format and width.
  const shown: number[] = [];
  const visit = (axis: number, offset: number) => {
    if (axis === t.shape.length) { shown.push(decodeElement(t.dtype, t.data[offset]!)); return; }
    const n = t.shape[axis]!;
    const stride = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    for (const i of indicesShown(n, elide, edge)) if (i >= 0) visit(axis + 1, offset + i * stride);
  };
  visit(0, 0);
  let fmt: (x: number) => string;
  if (t.dtype === "bool") fmt = (x) => (x ? "true" : "false");
  else if (!isFloat) fmt = (x) => String(x);
  else {
    const finite = shown.filter((x) => Number.isFinite(x) && x !== 0).map(Math.abs);
    const maxAbs = finite.length ? Math.max(...finite) : 0;
    const minAbs = finite.length ? Math.min(...finite) : 0;
    const sci = maxAbs >= 1e8 || (minAbs > 0 && minAbs < 1e-4);
    const allInts = shown.every((x) => !Number.isFinite(x) || Number.isInteger(x));
    fmt = (x) => {
      if (Number.isNaN(x)) return "nan";
      if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
      if (sci) return x.toExponential(4);
      if (allInts) return x.toFixed(0) + ".";
      return x.toFixed(4);
    };
  }
  const width = Math.max(1, ...shown.map((x) => fmt(x).length));
  const pad = (s: string) => " ".repeat(width - s.length) + s;
  const prefix = "tensor(";
  const render = (axis: number, offset: number, indent: number): string => {
    if (axis === t.shape.length) return pad(fmt(decodeElement(t.dtype, t.data[offset]!)));
    const n = t.shape[axis]!;
    const stride = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const parts = indicesShown(n, elide, edge).map((i) => (i < 0 ? "..." : render(axis + 1, offset + i * stride, indent + 1)));
    if (axis === t.shape.length - 1) return "[" + parts.join(", ") + "]";
    const sep = "," + "\n".repeat(t.shape.length - 1 - axis) + " ".repeat(indent + 1);
    return "[" + parts.join(sep) + "]";
  };
  const body = render(0, 0, prefix.length);
  return `${prefix}${body}, dtype=${t.dtype}, shape=[${t.shape.join(", ")}])`;
}

/** Indices printed along an axis of size n; -1 marks the "..." gap. */
function indicesShown(n: number, elide: boolean, edge: number): number[] {
  if (!elide || n <= 2 * edge) return Array.from({ length: n }, (_, i) => i);
  const head = Array.from({ length: edge }, (_, i) => i);
  const tail = Array.from({ length: edge }, (_, i) => n - edge + i);
  return [...head, -1, ...tail];
}
