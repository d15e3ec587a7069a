// Codegen stage (wasm): one arithmetic vocabulary over scalar f32 and f32x4, so each math routine
// (math.ts) is written once and emitted in both widths. Conditions are masks (i32 0/1, or all-ones v128
// lanes) and all control flow is branch-free selection, which is what the vector form needs anyway.
import type { Bin, E, Module, WType } from "./context.js";

export interface Lanes {
  readonly width: "f32" | "f32x4";
  /** Types of a float value, an int value and a mask. */
  readonly ft: WType;
  readonly it: WType;
  readonly mt: WType;
  f(c: number): E;
  i(c: number): E;
  add(a: E, b: E): E;
  sub(a: E, b: E): E;
  mul(a: E, b: E): E;
  div(a: E, b: E): E;
  /** a * b + c and c - a * b: one rounding where the build fuses (relaxed SIMD, vector form), two otherwise. */
  madd(a: E, b: E, c: E): E;
  nmadd(a: E, b: E, c: E): E;
  /** NaN-propagating, like Math.min/max. */
  min(a: E, b: E): E;
  max(a: E, b: E): E;
  abs(a: E): E;
  neg(a: E): E;
  nearest(a: E): E;
  trunc(a: E): E;
  copysign(mag: E, sign: E): E;
  lt(a: E, b: E): E;
  gt(a: E, b: E): E;
  eq(a: E, b: E): E;
  ne(a: E, b: E): E;
  ge(a: E, b: E): E;
  le(a: E, b: E): E;
  iadd(a: E, b: E): E;
  isub(a: E, b: E): E;
  iand(a: E, b: E): E;
  ior(a: E, b: E): E;
  ishl(a: E, n: number): E;
  ishr(a: E, n: number): E;
  ishrU(a: E, n: number): E;
  ieq(a: E, b: E): E;
  /** Signed integer compares, as masks. */
  igt(a: E, b: E): E;
  ilt(a: E, b: E): E;
  /** Saturating truncation toward zero, NaN -> 0. */
  toInt(a: E): E;
  toFloat(a: E): E;
  bits(a: E): E;
  fromBits(a: E): E;
  mand(a: E, b: E): E;
  mor(a: E, b: E): E;
  mnot(a: E): E;
  /** mask ? a : b, for float or int values. */
  sel(mask: E, a: E, b: E): E;
}

/** The value types the lanes need (binaryen's, or an EmitCtx's `t`). */
type Types = Pick<Bin, "f32" | "i32" | "v128">;

export function scalarLanes(b: Types, m: Module): Lanes {
  return {
    width: "f32", ft: b.f32, it: b.i32, mt: b.i32,
    f: (c) => m.f32.const(c),
    i: (c) => m.i32.const(c),
    add: (x, y) => m.f32.add(x, y),
    sub: (x, y) => m.f32.sub(x, y),
    mul: (x, y) => m.f32.mul(x, y),
    div: (x, y) => m.f32.div(x, y),
    madd: (x, y, z) => m.f32.add(m.f32.mul(x, y), z),
    nmadd: (x, y, z) => m.f32.sub(z, m.f32.mul(x, y)),
    min: (x, y) => m.f32.min(x, y),
    max: (x, y) => m.f32.max(x, y),
    abs: (x) => m.f32.abs(x),
    neg: (x) => m.f32.neg(x),
    nearest: (x) => m.f32.nearest(x),
    trunc: (x) => m.f32.trunc(x),
    copysign: (x, s) => m.f32.copysign(x, s),
    lt: (x, y) => m.f32.lt(x, y),
    gt: (x, y) => m.f32.gt(x, y),
    eq: (x, y) => m.f32.eq(x, y),
    ne: (x, y) => m.f32.ne(x, y),
    ge: (x, y) => m.f32.ge(x, y),
    le: (x, y) => m.f32.le(x, y),
    iadd: (x, y) => m.i32.add(x, y),
    isub: (x, y) => m.i32.sub(x, y),
    iand: (x, y) => m.i32.and(x, y),
    ior: (x, y) => m.i32.or(x, y),
    ishl: (x, n) => m.i32.shl(x, m.i32.const(n)),
    ishr: (x, n) => m.i32.shr_s(x, m.i32.const(n)),
    ishrU: (x, n) => m.i32.shr_u(x, m.i32.const(n)),
    ieq: (x, y) => m.i32.eq(x, y),
    igt: (x, y) => m.i32.gt_s(x, y),
    ilt: (x, y) => m.i32.lt_s(x, y),
    toInt: (x) => m.i32.trunc_s_sat.f32(x),
    toFloat: (x) => m.f32.convert_s.i32(x),
    bits: (x) => m.i32.reinterpret(x),
    fromBits: (x) => m.f32.reinterpret(x),
    mand: (x, y) => m.i32.and(x, y),
    mor: (x, y) => m.i32.or(x, y),
    mnot: (x) => m.i32.eqz(x),
    sel: (c, x, y) => m.select(c, x, y),
  };
}

/**
 * `relaxed`: multiply-adds are f32x4.relaxed_madd / relaxed_nmadd (V8 on x64 with FMA3 fuses them); `b` must
 * then be the binaryen object itself, whose raw API builds them (binaryen.js has no wrapper for relaxed ops).
 */
export function vectorLanes(b: Types, m: Module, relaxed = false): Lanes {
  const ternary = (op: "RelaxedMaddVecF32x4" | "RelaxedNmaddVecF32x4", x: E, y: E, z: E): E => {
    const api = b as unknown as Record<string, number> & { _BinaryenSIMDTernary(mod: number, op: number, a: E, b: E, c: E): E };
    return api._BinaryenSIMDTernary((m as unknown as { ptr: number }).ptr, api[op]!, x, y, z);
  };
  const splat = (c: number, arr: Float32Array | Int32Array): E => {
    arr.fill(c);
    return m.v128.const(Array.from(new Uint8Array(arr.buffer)));
  };
  return {
    width: "f32x4", ft: b.v128, it: b.v128, mt: b.v128,
    f: (c) => splat(c, new Float32Array(4)),
    i: (c) => splat(c, new Int32Array(4)),
    add: (x, y) => m.f32x4.add(x, y),
    sub: (x, y) => m.f32x4.sub(x, y),
    mul: (x, y) => m.f32x4.mul(x, y),
    div: (x, y) => m.f32x4.div(x, y),
    madd: (x, y, z) => (relaxed ? ternary("RelaxedMaddVecF32x4", x, y, z) : m.f32x4.add(m.f32x4.mul(x, y), z)),
    nmadd: (x, y, z) => (relaxed ? ternary("RelaxedNmaddVecF32x4", x, y, z) : m.f32x4.sub(z, m.f32x4.mul(x, y))),
    min: (x, y) => m.f32x4.min(x, y),
    max: (x, y) => m.f32x4.max(x, y),
    abs: (x) => m.f32x4.abs(x),
    neg: (x) => m.f32x4.neg(x),
    nearest: (x) => m.f32x4.nearest(x),
    trunc: (x) => m.f32x4.trunc(x),
    copysign: (x, s) => m.v128.bitselect(s, x, splat(-0x80000000, new Int32Array(4))),
    lt: (x, y) => m.f32x4.lt(x, y),
    gt: (x, y) => m.f32x4.gt(x, y),
    eq: (x, y) => m.f32x4.eq(x, y),
    ne: (x, y) => m.f32x4.ne(x, y),
    ge: (x, y) => m.f32x4.ge(x, y),
    le: (x, y) => m.f32x4.le(x, y),
    iadd: (x, y) => m.i32x4.add(x, y),
    isub: (x, y) => m.i32x4.sub(x, y),
    iand: (x, y) => m.v128.and(x, y),
    ior: (x, y) => m.v128.or(x, y),
    ishl: (x, n) => m.i32x4.shl(x, m.i32.const(n)),
    ishr: (x, n) => m.i32x4.shr_s(x, m.i32.const(n)),
    ishrU: (x, n) => m.i32x4.shr_u(x, m.i32.const(n)),
    ieq: (x, y) => m.i32x4.eq(x, y),
    igt: (x, y) => m.i32x4.gt_s(x, y),
    ilt: (x, y) => m.i32x4.lt_s(x, y),
    toInt: (x) => m.i32x4.trunc_sat_f32x4_s(x),
    toFloat: (x) => m.f32x4.convert_i32x4_s(x),
    bits: (x) => x,
    fromBits: (x) => x,
    mand: (x, y) => m.v128.and(x, y),
    mor: (x, y) => m.v128.or(x, y),
    mnot: (x) => m.v128.not(x),
    sel: (c, x, y) => m.v128.bitselect(x, y, c),
  };
}
