// Codegen stage (wasm): f16/bf16 <-> f32 conversions as branch-free Binaryen expressions, scalar (an i32 holding
// the 16-bit pattern in its low half <-> f32) and SIMD128 (i32x4 lanes of 16-bit patterns <-> f32x4). Kernels
// keep f16/bf16 as storage only: loads widen exactly, stores narrow with round-to-nearest-even. runtime/dtype.ts
// is the host-side twin (same rules; tests compare them bit for bit).
//
// Rules: f16 narrowing overflows to ±Inf (|x| >= 65520 after rounding), keeps subnormals (down to 2^-24, ties to
// even), and turns NaN into a quiet NaN (0x7e00 | sign | top payload bits); bf16 narrowing rounds the top 16 bits
// to nearest even (overflow carries into ±Inf) and keeps NaN quiet (| 0x40). Widening is exact for every pattern.
import type { DType } from "../../ir/types.js";
import type { E, EmitCtx } from "./context.js";
import { scalarLanes, vectorLanes, type Lanes } from "./lanes.js";

export type HalfDType = "f16" | "bf16";

export function isHalf(d: DType | undefined): d is HalfDType {
  return d === "f16" || d === "bf16";
}

/** The shared scalar/SIMD vocabulary (lanes.ts) plus what these routines add: locals and integer constants. */
interface Ops {
  readonly L: Lanes;
  /** An i32 constant from its bit pattern (0xc8000fff and the like). */
  int(k: number): E;
  /** Binds a value (integer-typed unless `float`) to a local for several uses. */
  bind(v: E, body: (get: () => E) => E, float?: boolean): E;
}

function ops(c: EmitCtx, width: "s" | "v"): Ops {
  const L = width === "s" ? scalarLanes(c.t, c.m) : vectorLanes(c.t, c.m);
  return { L, int: (k) => L.i(k | 0), bind: (v, body, float) => c.bind(float ? L.ft : L.it, v, body) };
}

/**
 * f16 bits -> f32 (the upper 16 bits of each integer must be zero). Exponent and mantissa move into place and a
 * multiply by 2^112 rebiases the exponent; the same multiply turns f16 subnormals (exponent 0) into normal f32s,
 * exactly, since wasm floats keep subnormals. Results >= 2^16 came from exponent 31: force Inf/NaN's exponent.
 */
function widenF16(o: Ops, h: E): E {
  const { L } = o;
  return o.bind(h, (hv) => o.bind(L.mul(L.fromBits(L.ishl(L.iand(hv(), o.int(0x7fff)), 13)), L.f(2 ** 112)), (f) =>
    L.fromBits(L.ior(
      L.ior(L.bits(f()), L.sel(L.ge(f(), L.f(65536)), o.int(0x7f800000), o.int(0))),
      L.ishl(L.iand(hv(), o.int(0x8000)), 16),
    )), true));
}

/**
 * f32 -> f16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne, branch-free). On |x|: normal
 * results rebias the exponent and add 0xfff + the lowest kept bit before dropping 13 bits (a carry into the
 * exponent is the correct rounding, up to Inf); below 2^-14 adding 0.5 lines the 10 subnormal mantissa bits up at
 * the bottom of the f32 and the FPU rounds to nearest even; |x| >= 2^16 is Inf, NaN keeps its top payload, quiet.
 */
function narrowF16(o: Ops, x: E): E {
  const { L } = o;
  return o.bind(L.bits(x), (b) => o.bind(L.iand(b(), o.int(0x7fffffff)), (a) => {
    const normal = L.ishrU(L.iadd(L.iadd(a(), o.int(0xc8000fff)), L.iand(L.ishrU(a(), 13), o.int(1))), 13);
    const sub = L.isub(L.bits(L.add(L.fromBits(a()), L.f(0.5))), o.int(0x3f000000));
    const special = L.sel(L.igt(a(), o.int(0x7f800000)), L.ior(o.int(0x7e00), L.iand(L.ishrU(a(), 13), o.int(0x3ff))), o.int(0x7c00));
    const mag = L.sel(L.igt(a(), o.int(0x477fffff)), special, L.sel(L.ilt(a(), o.int(0x38800000)), sub, normal));
    return L.ior(mag, L.iand(L.ishrU(b(), 16), o.int(0x8000)));
  }));
}

/** f32 -> bf16 bits: the top half rounded to nearest even; NaN keeps its top bits and becomes quiet. */
function narrowBf16(o: Ops, x: E): E {
  const { L } = o;
  return o.bind(L.bits(x), (b) => L.sel(
    L.igt(L.iand(b(), o.int(0x7fffffff)), o.int(0x7f800000)),
    L.ior(L.ishrU(b(), 16), o.int(0x40)),
    L.ishrU(L.iadd(L.iadd(b(), o.int(0x7fff)), L.iand(L.ishrU(b(), 16), o.int(1))), 16),
  ));
}

/** Scalar: i32 holding the 16-bit pattern (upper half zero) -> f32. */
export function halfToF32(c: EmitCtx, d: HalfDType, h: E): E {
  const o = ops(c, "s");
  return d === "f16" ? widenF16(o, h) : o.L.fromBits(o.L.ishl(h, 16));
}

/** Scalar: f32 -> i32 holding the rounded 16-bit pattern in its low half. */
export function f32ToHalf(c: EmitCtx, d: HalfDType, x: E): E {
  const o = ops(c, "s");
  return d === "f16" ? narrowF16(o, x) : narrowBf16(o, x);
}

/** SIMD: i32x4 of 16-bit patterns -> f32x4. */
export function halfToF32x4(c: EmitCtx, d: HalfDType, h: E): E {
  const o = ops(c, "v");
  return d === "f16" ? widenF16(o, h) : o.L.ishl(h, 16);
}

/** SIMD: f32x4 -> i32x4 of rounded 16-bit patterns. */
export function f32x4ToHalf(c: EmitCtx, d: HalfDType, x: E): E {
  const o = ops(c, "v");
  return d === "f16" ? narrowF16(o, x) : narrowBf16(o, x);
}

/** Rounds an f32 (or f32x4) to the nearest value of format `d`, kept as f32: what `cast(x, f16)` computes. */
export function roundToHalf(c: EmitCtx, d: HalfDType, x: E, width: "f32" | "f32x4"): E {
  return width === "f32" ? halfToF32(c, d, f32ToHalf(c, d, x)) : halfToF32x4(c, d, f32x4ToHalf(c, d, x));
}
