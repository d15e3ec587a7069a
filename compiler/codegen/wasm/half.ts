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

export type HalfDType = "f16" | "bf16";

export function isHalf(d: DType | undefined): d is HalfDType {
  return d === "f16" || d === "bf16";
}

/** Integer and float lane operations for one width: "s" = scalar i32/f32, "v" = i32x4/f32x4 in a v128. */
interface Ops {
  readonly c: EmitCtx;
  int(k: number): E;
  float(k: number): E;
  and(a: E, b: E): E;
  or(a: E, b: E): E;
  add(a: E, b: E): E;
  sub(a: E, b: E): E;
  shl(a: E, n: number): E;
  shrU(a: E, n: number): E;
  /** Signed integer compares, as masks (i32 0/1 or all-ones lanes). */
  gtS(a: E, b: E): E;
  ltS(a: E, b: E): E;
  fadd(a: E, b: E): E;
  fmul(a: E, b: E): E;
  fge(a: E, b: E): E;
  bits(a: E): E;
  fromBits(a: E): E;
  /** mask ? a : b (integers). */
  sel(mask: E, a: E, b: E): E;
  /** mask ? k : 0 for an integer constant k. */
  maskConst(mask: E, k: number): E;
  /** Binds a value (integer-typed unless `float`) to a local for several uses. */
  bind(v: E, body: (get: () => E) => E, float?: boolean): E;
}

function ops(c: EmitCtx, width: "s" | "v"): Ops {
  const m = c.m;
  if (width === "s") {
    return {
      c,
      int: (k) => m.i32.const(k | 0),
      float: (k) => m.f32.const(k),
      and: (a, b) => m.i32.and(a, b),
      or: (a, b) => m.i32.or(a, b),
      add: (a, b) => m.i32.add(a, b),
      sub: (a, b) => m.i32.sub(a, b),
      shl: (a, n) => m.i32.shl(a, m.i32.const(n)),
      shrU: (a, n) => m.i32.shr_u(a, m.i32.const(n)),
      gtS: (a, b) => m.i32.gt_s(a, b),
      ltS: (a, b) => m.i32.lt_s(a, b),
      fadd: (a, b) => m.f32.add(a, b),
      fmul: (a, b) => m.f32.mul(a, b),
      fge: (a, b) => m.f32.ge(a, b),
      bits: (a) => m.i32.reinterpret(a),
      fromBits: (a) => m.f32.reinterpret(a),
      sel: (k, a, b) => m.select(k, a, b),
      maskConst: (k, v) => m.i32.mul(k, m.i32.const(v | 0)),
      bind: (v, body, float) => c.bind(float ? c.t.f32 : c.t.i32, v, body),
    };
  }
  return {
    c,
    int: (k) => c.splatI32(k | 0),
    float: (k) => c.splatF32(k),
    and: (a, b) => m.v128.and(a, b),
    or: (a, b) => m.v128.or(a, b),
    add: (a, b) => m.i32x4.add(a, b),
    sub: (a, b) => m.i32x4.sub(a, b),
    shl: (a, n) => m.i32x4.shl(a, m.i32.const(n)),
    shrU: (a, n) => m.i32x4.shr_u(a, m.i32.const(n)),
    gtS: (a, b) => m.i32x4.gt_s(a, b),
    ltS: (a, b) => m.i32x4.lt_s(a, b),
    fadd: (a, b) => m.f32x4.add(a, b),
    fmul: (a, b) => m.f32x4.mul(a, b),
    fge: (a, b) => m.f32x4.ge(a, b),
    bits: (a) => a,
    fromBits: (a) => a,
    sel: (k, a, b) => m.v128.bitselect(a, b, k),
    maskConst: (k, v) => m.v128.and(k, c.splatI32(v | 0)),
    bind: (v, body) => c.bind(c.t.v128, v, body),
  };
}

/**
 * f16 bits -> f32 (the upper 16 bits of each integer must be zero). Exponent and mantissa move into place and a
 * multiply by 2^112 rebiases the exponent; the same multiply turns f16 subnormals (exponent 0) into normal f32s,
 * exactly, since wasm floats keep subnormals. Results >= 2^16 came from exponent 31: force Inf/NaN's exponent.
 */
function widenF16(o: Ops, h: E): E {
  return o.bind(h, (hv) => o.bind(o.fmul(o.fromBits(o.shl(o.and(hv(), o.int(0x7fff)), 13)), o.float(2 ** 112)), (f) =>
    o.fromBits(o.or(
      o.or(o.bits(f()), o.maskConst(o.fge(f(), o.float(65536)), 0x7f800000)),
      o.shl(o.and(hv(), o.int(0x8000)), 16),
    )), true));
}

/**
 * f32 -> f16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne, branch-free). On |x|: normal
 * results rebias the exponent and add 0xfff + the lowest kept bit before dropping 13 bits (a carry into the
 * exponent is the correct rounding, up to Inf); below 2^-14 adding 0.5 lines the 10 subnormal mantissa bits up at
 * the bottom of the f32 and the FPU rounds to nearest even; |x| >= 2^16 is Inf, NaN keeps its top payload, quiet.
 */
function narrowF16(o: Ops, x: E): E {
  return o.bind(o.bits(x), (b) => o.bind(o.and(b(), o.int(0x7fffffff)), (a) => {
    const normal = o.shrU(o.add(o.add(a(), o.int(0xc8000fff)), o.and(o.shrU(a(), 13), o.int(1))), 13);
    const sub = o.sub(o.bits(o.fadd(o.fromBits(a()), o.float(0.5))), o.int(0x3f000000));
    const special = o.sel(o.gtS(a(), o.int(0x7f800000)), o.or(o.int(0x7e00), o.and(o.shrU(a(), 13), o.int(0x3ff))), o.int(0x7c00));
    const mag = o.sel(o.gtS(a(), o.int(0x477fffff)), special, o.sel(o.ltS(a(), o.int(0x38800000)), sub, normal));
    return o.or(mag, o.and(o.shrU(b(), 16), o.int(0x8000)));
  }));
}

/** f32 -> bf16 bits: the top half rounded to nearest even; NaN keeps its top bits and becomes quiet. */
function narrowBf16(o: Ops, x: E): E {
  return o.bind(o.bits(x), (b) => o.sel(
    o.gtS(o.and(b(), o.int(0x7fffffff)), o.int(0x7f800000)),
    o.or(o.shrU(b(), 16), o.int(0x40)),
    o.shrU(o.add(o.add(b(), o.int(0x7fff)), o.and(o.shrU(b(), 16), o.int(1))), 16),
  ));
}

/** Scalar: i32 holding the 16-bit pattern (upper half zero) -> f32. */
export function halfToF32(c: EmitCtx, d: HalfDType, h: E): E {
  const o = ops(c, "s");
  return d === "f16" ? widenF16(o, h) : o.fromBits(o.shl(h, 16));
}

/** Scalar: f32 -> i32 holding the rounded 16-bit pattern in its low half. */
export function f32ToHalf(c: EmitCtx, d: HalfDType, x: E): E {
  const o = ops(c, "s");
  return d === "f16" ? narrowF16(o, x) : narrowBf16(o, x);
}

/** SIMD: i32x4 of 16-bit patterns -> f32x4. */
export function halfToF32x4(c: EmitCtx, d: HalfDType, h: E): E {
  const o = ops(c, "v");
  return d === "f16" ? widenF16(o, h) : o.shl(h, 16);
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
