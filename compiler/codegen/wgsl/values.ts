// Codegen stage (WGSL): how Kiln dtypes live in WGSL registers. f32 as f32, i32/i8/u8/bool as i32 (i8
// sign-extended, u8 zero-extended, bool 0/1; one 32-bit word each in storage, the runtime widens byte-sized host
// data), and f16/bf16 as f32 holding a value of the 16-bit format (stored as 16-bit halves: see half.ts).
import type { DType } from "../../ir/types.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../../runtime/dtype.js";

/** WGSL scalar type of a value of dtype `d`, in storage and in expressions. */
export type WgslScalar = "f32" | "i32";

export function unsupportedDType(d: DType): Error {
  return new Error(`wgsl backend: dtype ${d} not supported yet`);
}

/** Register type of a value of dtype `d` (f16/bf16 compute in f32); f64 throws (WGSL has no f64). */
export function wgslType(d: DType): WgslScalar {
  if (d === "f64") throw unsupportedDType(d);
  return d === "f32" || d === "f16" || d === "bf16" ? "f32" : "i32";
}

/** The i32 a constant of an integer or bool dtype holds (truncated, wrapped to the dtype). */
export function intConstValue(v: number, d: DType): number {
  const t = Number.isFinite(v) ? Math.trunc(v) : 0;
  switch (d) {
    case "bool": return v !== 0 && !Number.isNaN(v) ? 1 : 0;
    case "u8": return t & 255;
    case "i8": return (t << 24) >> 24;
    default: return t | 0;
  }
}

/** An i32 literal; INT_MIN has no literal form (its negation overflows), so it is written as a difference. */
export function i32Literal(v: number): string {
  return v === -2147483648 ? "(-2147483647i - 1i)" : `${v}i`;
}

/**
 * An f32 literal: the shortest decimal that rounds back to the same f32. Infinities and NaN have no literal and
 * cannot be const-expressions either (a shader-creation error), so they come back as null: callers bind them
 * at run time with `bitcast<f32>` of a `let` (see finiteOrBits).
 */
export function f32Literal(v: number): string | null {
  const x = Math.fround(v);
  if (!Number.isFinite(x)) return null;
  if (Object.is(x, -0)) return "-0.0f";
  // Tint rejects a literal whose exact decimal value lies beyond f32's range even when it would round to FLT_MAX
  // ("3.4028235e38f": value cannot be represented as 'f32'), so a candidate must also be in range as written.
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x && Math.abs(Number(s)) <= F32_MAX) return `${normalizeDecimal(s)}f`;
  }
  // 17 significant digits write the double exactly, and every f32 is a double.
  return `${normalizeDecimal(x.toPrecision(17))}f`;
}

/** The largest finite f32, (2 - 2^-23) * 2^127. */
const F32_MAX = 3.4028234663852886e38;

/** toPrecision output in WGSL's grammar: "1e+21" -> "1e21", "5" stays "5" (an int literal with f suffix is f32). */
function normalizeDecimal(s: string): string {
  return s.replace("e+", "e");
}

/** The u32 bit pattern of an f32 value, as a WGSL literal. */
export function f32Bits(v: number): string {
  const b = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  return `0x${b.toString(16)}u`;
}

/**
 * Statements binding `name` to the f32 value `v`. Non-finite values go through a `let` of their bits, which
 * makes the bitcast a run-time expression.
 */
export function bindF32(name: string, v: number): string[] {
  const lit = f32Literal(v);
  if (lit !== null) return [`let ${name} = ${lit};`];
  return [`let ${name}_bits = ${f32Bits(v)};`, `let ${name} = bitcast<f32>(${name}_bits);`];
}

/** A constant of dtype `d` bound to `name` (always a `let`, so expressions over it are never const-folded). */
export function bindConst(name: string, v: number, d: DType): string[] {
  // A constant of a 16-bit dtype holds the value that format stores (as the reference rounds it).
  if (d === "f16") return bindF32(name, f16BitsToF32(f32ToF16Bits(v)));
  if (d === "bf16") return bindF32(name, bf16BitsToF32(f32ToBf16Bits(v)));
  return wgslType(d) === "f32" ? bindF32(name, v) : [`let ${name} = ${i32Literal(intConstValue(v, d))};`];
}
