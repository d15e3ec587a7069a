// Codegen stage (wasm): the math wasm lacks (exp, log, tanh, sigmoid, pow, guarded integer division) as
// internal functions, each written once over `Lanes` and emitted in scalar f32 and f32x4 form on first use.
// Algorithms are Cephes' single-precision ones (range reduction + minimax polynomial); special values are
// patched with branch-free selects so the vector form stays straight-line. The `exp` op itself has a shorter
// form (expFast) with a branch to the general path for values whose result is not a normal float, and the softmax
// row kernel one without any test (expRow) for rows whose x - max it knows to be in range.
import type { E, FnBuilder, WType } from "./context.js";
import type { Lanes } from "./lanes.js";

/** Straight-line code where every intermediate value gets its own local, so it can be read many times. */
export class Seq {
  readonly stmts: E[] = [];
  constructor(readonly fb: FnBuilder, readonly L: Lanes) {}
  private keep(t: WType, e: E): () => E {
    const v = this.fb.local(t);
    this.stmts.push(v.set(e));
    return () => v.get();
  }
  f(e: E): () => E { return this.keep(this.L.ft, e); }
  i(e: E): () => E { return this.keep(this.L.it, e); }
  mask(e: E): () => E { return this.keep(this.L.mt, e); }
  done(result: E): E { return this.fb.m.block(null, [...this.stmts, result], this.fb.b.auto); }
}

/** c[0]*x^(n-1) + ... + c[n-1], Horner's scheme. */
export function horner(L: Lanes, x: () => E, c: readonly number[]): E {
  let acc = L.f(c[0]!);
  for (const k of c.slice(1)) acc = L.add(L.mul(acc, x()), L.f(k));
  return acc;
}

// ln 2 split so that n * LN2_HI is exact for |n| < 2^15.
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
const LOG_P = [
  7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
];
const TANH_P = [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1];
// e^r ~ 1 + r + r^2 (q0 + q1 r + ... + q4 r^4) on |r| <= 0.35: a relative-error fit (Lawson-weighted least
// squares), 4.7e-9 with these f32 coefficients, so nearly all of the <= 2 ulp budget is left to rounding.
const EXP_Q = [1.381313312e-3, 8.369424380e-3, 4.166845605e-2, 1.666651517e-1, 4.999999404e-1];
// e^r ~ 1 + r (c1 + c2 r + ... + c5 r^4): XNNPACK's rr2-p5 coefficients (0x1.0F9F9Cp-7, 0x1.573A1Ap-5,
// 0x1.555A80p-3, 0x1.FFFDC6p-2, 0x1.FFFFF6p-1; src/f32-raddstoreexpminusmax), one multiply-add fewer than EXP_Q.
// With fused multiply-adds 1.98 ulp at most over every float in [-87.6, 0] (a float64 simulation); unfused 2.26,
// over the 2 ulp budget, so only the relaxed build's softmax rows use it (expRow `p5`).
const EXP_P5 = [0.008289290592074394, 0.04189782217144966, 0.16667652130126953, 0.4999915063381195, 0.9999997019767761];
// 1.5 * 2^23: t = x log2(e) + SHIFT rounds to an integer n held in t's low mantissa bits, so bits(t) << 23 is
// n << 23 (the high bits shift out), with no float-to-int conversion (trunc_sat is ~8 x64 instructions in V8).
const SHIFT = 12582912;
// |x| <= this gives n in [-125, 125], so p * 2^n (p in [0.7, 1.42]) is a normal float and adding n to the
// exponent field is exact; beyond it (and for NaN) the general path runs.
const EXP_FAST_MAX = 86.9;
// e^-104 = 6.8e-46 is under half the smallest subnormal (2^-150 = 7.0e-46), so it and everything below round to 0.
export const EXP_ZERO_BELOW = -104;
const SQRT_HALF = 0.70710678118654752440;
const FLT_MIN = 1.1754943508222875e-38;

/**
 * e^x. Clamping to [-104, 89] keeps 2^n finite while still producing +inf above ln(FLT_MAX) and 0 below the
 * subnormal range; NaN survives min/max. 2^n is applied as two factors so subnormal results round once.
 */
export function expCore(s: Seq, x0: () => E): E {
  const L = s.L;
  const x = s.f(L.min(L.max(x0(), L.f(-104)), L.f(89)));
  const n = s.f(L.nearest(L.mul(x(), L.f(Math.LOG2E))));
  const r = s.f(L.sub(L.sub(x(), L.mul(n(), L.f(LN2_HI))), L.mul(n(), L.f(LN2_LO))));
  const y = L.add(L.add(L.mul(horner(L, r, EXP_P), L.mul(r(), r())), r()), L.f(1));
  const ni = s.i(L.toInt(n()));
  const n1 = s.i(L.ishr(ni(), 1));
  const pow2 = (k: E): E => L.fromBits(L.ishl(L.iadd(k, L.i(127)), 23));
  return L.mul(L.mul(y, pow2(n1())), pow2(L.isub(ni(), n1())));
}

/**
 * x = n ln2 + r with n = round(x log2 e) from the SHIFT trick; returns t (n + bias in its low bits) and p ~ e^r.
 * `bias` 127 (XNNPACK's magic bias 0x1.8000FEp23) leaves n + 127 in t's low bits, so bits(t) << 23 is 2^n itself.
 */
function expReduce(s: Seq, x: () => E, bias = 0, p5 = false): { t: () => E; p: E } {
  const L = s.L;
  const t = s.f(L.madd(x(), L.f(Math.LOG2E), L.f(SHIFT + bias)));
  const n = s.f(L.sub(t(), L.f(SHIFT + bias)));
  const r = s.f(L.nmadd(n(), L.f(LN2_LO), L.nmadd(n(), L.f(LN2_HI), x())));
  const q = p5 ? EXP_P5 : EXP_Q;
  let p = L.f(q[0]!);
  for (const c of [...q.slice(1), ...(p5 ? [1] : [1, 1])]) p = L.madd(p, r(), L.f(c));
  return { t, p };
}

/**
 * e^x for the `exp` op: 2^n applied by adding n to p's exponent bits when every lane has |x| <= EXP_FAST_MAX
 * or x < -104, where the result is 0 (softmax's x - max is in [-87, 0] or a masked score). Otherwise the same reduction on x clamped to [-104, 89]
 * (pmin/pmax: one instruction each, and NaN passes as the first operand) with 2^n as two factors, like expCore,
 * so subnormals round once, large x gives +inf, small x 0, NaN NaN. Both paths give the same bits wherever the
 * fast one applies (both scalings are exact there), so a lane's result never depends on its neighbours.
 * `ret` returns the fast result from the function being built (a scalar function running this on a splat
 * returns its lane 0). `nonPositive`: every x is <= 0 or NaN, which shortens the test (the same lanes pass).
 */
export function expFast(s: Seq, x: () => E, ret: (v: E) => E = (v) => s.fb.m.return(v), nonPositive = false): E {
  const L = s.L;
  const m = s.fb.m;
  const fast = expReduce(s, x);
  // Below EXP_ZERO_BELOW e^x rounds to +0 (as the general path's clamp to -104 gives): masked attention scores
  // (-inf or -1e9 after the row max) take the fast path too, instead of sending most vectors of a causal row to
  // the general one.
  const zero = s.mask(L.lt(x(), L.f(EXP_ZERO_BELOW)));
  const res = s.f(L.sel(zero(), L.f(0), L.fromBits(L.iadd(L.bits(fast.p), L.ishl(L.bits(fast.t()), 23)))));
  // With x known to be <= 0 or NaN (softmax's x - max), |x| <= EXP_FAST_MAX is x >= -EXP_FAST_MAX: the same lanes
  // take the fast path, for about half the instructions of the test.
  const ok = L.mor(nonPositive ? L.ge(x(), L.f(-EXP_FAST_MAX)) : L.le(L.abs(x()), L.f(EXP_FAST_MAX)), zero());
  // The lanes' sign bits (one movmskps) rather than all_true, which V8 spells in about seven instructions.
  s.stmts.push(m.if(L.width === "f32" ? ok : m.i32.eq(m.i32x4.bitmask(ok), m.i32.const(15)), ret(res())));
  const clamp = L.width === "f32"
    ? (v: E) => L.min(L.max(v, L.f(-104)), L.f(89))
    : (v: E) => m.f32x4.pmin(m.f32x4.pmax(v, L.f(-104)), L.f(89));
  const xc = s.f(clamp(x()));
  const gen = expReduce(s, xc);
  const ni = s.i(L.isub(L.bits(gen.t()), L.i(0x4b400000)));
  const n1 = s.i(L.ishr(ni(), 1));
  const pow2 = (k: E): E => L.fromBits(L.ishl(L.iadd(k, L.i(127)), 23));
  return L.mul(L.mul(gen.p, pow2(n1())), pow2(L.isub(ni(), n1())));
}

/** A row whose every x - max is at least this takes expRow (n = round(x log2 e) >= -126, so 2^n is a normal float). */
export const EXP_ROW_MIN = -87.6;

/**
 * e^x for x in [EXP_ROW_MIN, 0] (or NaN, which stays NaN) with no test at all: p * 2^n, 2^n built by shifting t's
 * bits into the exponent field (XNNPACK's rr2 scaling). expFast's reduction and polynomial (only an x log2 e
 * exactly halfway between integers may round to the other n), and where e^x is normal its scaling too (p * 2^n is
 * exact); below (n = -126, p < 1) the one rounding of the product gives the subnormal, as expFast's general path.
 * `p5` (relaxed builds): XNNPACK's degree-5 polynomial instead, within 2 ulp only where relaxed_madd fuses (V8 on
 * x64 with FMA3, arm64); unfused it is 2.26 ulp.
 */
export function expRow(s: Seq, x: () => E, p5 = false): E {
  const L = s.L;
  const r = expReduce(s, x, 127, p5);
  return L.mul(r.p, L.fromBits(L.ishl(L.bits(r.t()), 23)));
}

/** ln x: x = m * 2^e with m in [sqrt(1/2), sqrt(2)); subnormals are first scaled by 2^23. */
export function logCore(s: Seq, x: () => E): E {
  const L = s.L;
  const tiny = s.mask(L.lt(x(), L.f(FLT_MIN)));
  const bits = s.i(L.bits(L.sel(tiny(), L.mul(x(), L.f(8388608)), x())));
  const e0 = L.isub(L.isub(L.ishr(bits(), 23), L.i(126)), L.sel(tiny(), L.i(23), L.i(0)));
  const m0 = s.f(L.fromBits(L.ior(L.iand(bits(), L.i(0x007fffff)), L.i(0x3f000000))));
  const small = s.mask(L.lt(m0(), L.f(SQRT_HALF)));
  const fe = s.f(L.toFloat(L.isub(e0, L.sel(small(), L.i(1), L.i(0)))));
  const xm = s.f(L.sel(small(), L.sub(L.add(m0(), m0()), L.f(1)), L.sub(m0(), L.f(1))));
  const z = s.f(L.mul(xm(), xm()));
  let y = L.mul(L.mul(horner(L, xm, LOG_P), xm()), z());
  y = L.add(y, L.mul(fe(), L.f(LN2_LO)));
  y = L.add(y, L.mul(z(), L.f(-0.5)));
  const res = s.f(L.add(L.add(xm(), y), L.mul(fe(), L.f(LN2_HI))));
  let out = L.sel(L.eq(x(), L.f(Infinity)), x(), res());
  out = L.sel(L.eq(x(), L.f(0)), L.f(-Infinity), out);
  out = L.sel(L.lt(x(), L.f(0)), L.f(NaN), out);
  return L.sel(L.ne(x(), x()), x(), out);
}

/**
 * tanh: an odd polynomial below |x| = 0.625 (no cancellation near 0), else 1 - 2/(e^{2|x|} + 1); that form
 * reaches exactly ±1 by itself once |x| > ~9 (and at ±inf), so no explicit saturation is needed.
 */
export function tanhCore(s: Seq, x: () => E): E {
  const L = s.L;
  const ax = s.f(L.abs(x()));
  const e = s.f(expCore(s, () => L.add(ax(), ax())));
  const big = L.sub(L.f(1), L.div(L.f(2), L.add(e(), L.f(1))));
  const x2 = s.f(L.mul(ax(), ax()));
  const small = L.add(L.mul(L.mul(horner(L, x2, TANH_P), x2()), ax()), ax());
  // Both branches are computed on |x|; restoring the sign last also keeps tanh(-0) = -0.
  return L.copysign(L.sel(L.gt(ax(), L.f(0.625)), big, small), x());
}

/** 1 / (1 + e^-x): e^-x overflows to inf for very negative x, giving 0, and underflows to 0, giving 1. */
export function sigmoidCore(s: Seq, x: () => E): E {
  const L = s.L;
  return L.div(L.f(1), L.add(L.f(1), expCore(s, () => L.neg(x()))));
}

/**
 * a^b = e^{b ln|a|}, which already gives 0^(b>0) = 0, 0^(b<0) = +inf, inf^b and NaN. Then: a with its sign bit
 * set (so -0 too, as in C's pow) takes the sign of an odd integer b (|b| >= 2^24 is always even); a finite a < 0
 * is NaN for non-integer b (-inf is not: (-inf)^0.5 = inf, (-inf)^-1.5 = 0); b = 0, a = 1 and (-1)^±inf give 1.
 */
export function powCore(s: Seq, a: () => E, b: () => E): E {
  const L = s.L;
  const la = s.f(logCore(s, () => L.abs(a())));
  const r = s.f(expCore(s, () => L.mul(b(), la())));
  const isInt = s.mask(L.eq(L.trunc(b()), b()));
  const odd = L.mand(L.mand(isInt(), L.lt(L.abs(b()), L.f(16777216))), L.mnot(L.ieq(L.iand(L.toInt(b()), L.i(1)), L.i(0))));
  const negBase = s.mask(L.lt(a(), L.f(0)));
  const signBit = L.mnot(L.ieq(L.iand(L.bits(a()), L.i(-0x80000000)), L.i(0)));
  let out = L.sel(L.mand(signBit, odd), L.neg(r()), r());
  // A finite negative base with a non-integer exponent is NaN; -inf keeps e^{b ln inf} (inf or 0), as C's pow.
  out = L.sel(L.mand(L.mand(negBase(), L.mnot(isInt())), L.lt(L.abs(a()), L.f(Infinity))), L.f(NaN), out);
  // 1^b = 1 and (-1)^±inf = 1 (C's pow), even for b = NaN; b = 0 gives 1.
  out = L.sel(L.mand(L.eq(a(), L.f(-1)), L.eq(L.abs(b()), L.f(Infinity))), L.f(1), out);
  out = L.sel(L.eq(a(), L.f(1)), L.f(1), out);
  return L.sel(L.eq(b(), L.f(0)), L.f(1), out);
}
