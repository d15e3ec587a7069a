// Lowering helper: the range of values each dtype can hold, so that a number literal that would wrap (an
// integer) or overflow to Infinity (a float) is a diagnostic (K306) instead of a silent wrong value.

import type { DType } from "../ir/types.js";

/** Largest finite value of each float format (f16: 65504; bf16 and f32 share an 8-bit exponent). */
const FLOAT_MAX: Partial<Record<DType, number>> = {
  f16: 65504,
  bf16: 3.3895313892515355e38,
  f32: 3.4028234663852886e38,
  f64: Number.MAX_VALUE,
};

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  i32: [-2147483648, 2147483647],
  i8: [-128, 127],
  u8: [0, 255],
};

/** Why `value` cannot be stored as `dtype` unchanged (apart from float rounding), or undefined when it can. */
export function literalRangeError(value: number, dtype: DType): { message: string; hint: string } | undefined {
  const ints = INT_RANGE[dtype];
  if (ints) {
    if (Number.isInteger(value) && value >= ints[0] && value <= ints[1]) return undefined;
    if (!Number.isInteger(value)) return undefined; // a fraction meeting an integer is K301, reported by the caller
    return { message: `the number ${value} is out of range for ${dtype} (${ints[0]} to ${ints[1]}): it would wrap`, hint: `cast the tensor to a wider dtype first, e.g. cast(x, ${dtype === "i32" ? "f32" : "i32"})` };
  }
  const max = FLOAT_MAX[dtype];
  if (max !== undefined && !(Math.abs(value) <= max)) {
    return { message: `the number ${value} is out of range for ${dtype} (largest finite value ${max}): it would become ${value > 0 ? "" : "-"}Infinity`, hint: dtype === "f32" ? "use a smaller value, or f64 in the reference interpreter" : `use a smaller value, or compute in f32` };
  }
  return undefined;
}
