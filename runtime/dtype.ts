// Runtime dtypes: element sizes, the typed array used for each dtype, f16/bf16 bit conversions, and checked
// conversion of plain JS numbers into a dtype's typed array.

import type { ManifestDType } from "./manifest.js";
import { KilnError } from "./errors.js";

export type DType = ManifestDType;

/** The typed array holding each dtype's elements (f16/bf16 hold raw 16-bit patterns; bool holds 0/1). */
export interface TypedArrayFor {
  f32: Float32Array;
  f64: Float64Array;
  i32: Int32Array;
  i8: Int8Array;
  u8: Uint8Array;
  bool: Uint8Array;
  f16: Uint16Array;
  bf16: Uint16Array;
}
export type AnyTypedArray = TypedArrayFor[DType];

type TypedArrayCtor = {
  new (length: number): AnyTypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTypedArray;
  readonly name: string;
};

const CTORS: Record<DType, TypedArrayCtor> = {
  f32: Float32Array,
  f64: Float64Array,
  i32: Int32Array,
  i8: Int8Array,
  u8: Uint8Array,
  bool: Uint8Array,
  f16: Uint16Array,
  bf16: Uint16Array,
};

export const DTYPE_LIST: readonly DType[] = ["f32", "f16", "bf16", "f64", "i32", "i8", "u8", "bool"];

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && (DTYPE_LIST as readonly string[]).includes(s);
}

/** Bytes per element in linear memory (bool is one byte). */
export function dtypeBytes(d: DType): number {
  switch (d) {
    case "f64": return 8;
    case "f32": case "i32": return 4;
    case "f16": case "bf16": return 2;
    case "i8": case "u8": case "bool": return 1;
  }
}

export function typedArrayCtor(d: DType): TypedArrayCtor {
  return CTORS[d];
}

export function allocTypedArray<D extends DType>(d: D, length: number): TypedArrayFor[D] {
  return new CTORS[d](length) as TypedArrayFor[D];
}

/** A view (not a copy) of `length` elements of dtype `d` at byte offset `ptr` of `buffer`. */
export function typedView<D extends DType>(d: D, buffer: ArrayBufferLike, ptr: number, length: number): TypedArrayFor[D] {
  return new CTORS[d](buffer, ptr, length) as TypedArrayFor[D];
}

export function isTypedArray(x: unknown): x is AnyTypedArray | BigInt64Array | BigUint64Array | Int16Array | Uint32Array | Uint8ClampedArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/** True when the typed array `a` is the kind that stores dtype `d` (Uint8Array serves u8 and bool, Uint16Array f16 and bf16). */
export function typedArrayMatches(d: DType, a: unknown): boolean {
  return a instanceof CTORS[d];
}

/** "a Float32Array", "an Int32Array": for error messages. */
export function describeTypedArray(a: ArrayBufferView): string {
  const name = a.constructor?.name ?? "typed array";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}

// ---- f16 / bf16 ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of x, round to nearest even. */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> 0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into exponent: still correct (or inf)
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits of x (upper half of the f32, round to nearest even). */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff; // quiet nan
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}

/**
 * Bulk f32 -> f16 bits, bit-identical to f32ToF16Bits per element (inputs stored low are converted on every call,
 * so this works on the integer bits: one add-and-shift rounds to nearest even in the normal range).
 */
export function f32ArrayToF16Bits(src: Float32Array, dst: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = Math.min(u.length, dst.length);
  for (let i = 0; i < n; i++) {
    const b = u[i]!;
    const sign = (b >>> 16) & 0x8000;
    const a = b & 0x7fffffff;
    let h: number;
    if (a >= 0x38800000) {
      // Normal f16 range and above; the carry of the rounding add may step into the next binade or to Inf.
      if (a >= 0x47800000) h = a > 0x7f800000 ? 0x7e00 : 0x7c00;
      else h = ((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - 0x1c000;
    } else if (a < 0x33000000) h = 0; // below half the smallest subnormal (2^-25): rounds to zero
    else {
      const e = (a >>> 23) - 112; // -10..0: an f16 subnormal
      const shift = 14 - e;
      const mant = (a & 0x7fffff) | 0x800000;
      h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && h & 1)) h++;
    }
    dst[i] = sign | h;
  }
}

/** Bulk f32 -> bf16 bits, bit-identical to f32ToBf16Bits per element (NaN kept quiet, round to nearest even). */
export function f32ArrayToBf16Bits(src: Float32Array, dst: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = Math.min(u.length, dst.length);
  for (let i = 0; i < n; i++) {
    const b = u[i]!;
    dst[i] = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) & 0xffff : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/** Whether an element of dtype `d` (its typed-array value: f16/bf16 as bit patterns) is finite (not NaN or ±Inf). */
export function isFiniteElement(d: DType, raw: number): boolean {
  if (d === "f16") return (raw & 0x7c00) !== 0x7c00;
  if (d === "bf16") return (raw & 0x7f80) !== 0x7f80;
  return Number.isFinite(raw);
}

/** The JS number an element of dtype `d` stands for (decodes f16/bf16 bit patterns). */
export function decodeElement(d: DType, raw: number): number {
  if (d === "f16") return f16BitsToF32(raw);
  if (d === "bf16") return bf16BitsToF32(raw);
  return raw;
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  i32: [-2147483648, 2147483647],
  i8: [-128, 127],
  u8: [0, 255],
  bool: [0, 1],
};

/**
 * Converts plain JS values to dtype `d`'s typed array. Floats accept any number; integer dtypes require integers
 * in range and bool requires 0/1/true/false (no silent truncation). Returns a description of the first bad value
 * instead of throwing, so callers can build a message naming their tensor.
 */
export function encodeValues(d: DType, values: ArrayLike<unknown>): AnyTypedArray | { bad: string; index: number } {
  const n = values.length;
  const out = allocTypedArray(d, n);
  const range = INT_RANGE[d];
  for (let i = 0; i < n; i++) {
    let v = values[i];
    if (typeof v === "boolean" && (d === "bool" || range)) v = v ? 1 : 0;
    if (typeof v !== "number") return { bad: describeValue(v), index: i };
    if (range) {
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) return { bad: String(v), index: i };
      out[i] = v;
    } else if (d === "f16") out[i] = f32ToF16Bits(v);
    else if (d === "bf16") out[i] = f32ToBf16Bits(v);
    else out[i] = v;
  }
  return out;
}

/** Like encodeValues but numbers are converted without integer checks (used by param init: ints are rounded). */
export function encodeNumbersLoose(d: DType, values: ArrayLike<number>, out: AnyTypedArray): void {
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (d === "f16") out[i] = f32ToF16Bits(v);
    else if (d === "bf16") out[i] = f32ToBf16Bits(v);
    else if (d === "bool") out[i] = v !== 0 ? 1 : 0;
    else if (INT_RANGE[d]) out[i] = Math.round(v);
    else out[i] = v;
  }
}

export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "…" : v)}`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `${describeTypedArray(v)}`;
  return `${typeof v === "object" ? (v.constructor?.name ?? "object") : typeof v}`;
}

export function assertDType(d: unknown, where: string): asserts d is DType {
  if (!isDType(d)) throw new KilnError(`${where}: unknown dtype ${JSON.stringify(d)} (expected one of ${DTYPE_LIST.join(", ")})`, { code: "bad_manifest" });
}
