// Codegen stage (wasm): erf, sin, cos, log1p and expm1 as internal helpers, written once over `Lanes` like the
// rest of math.ts (whose Seq, Horner and exp/log cores they reuse). Accuracy in ulps against the float64
// reference is stated and checked in test/codegen/wasm-math-extra.test.ts.
import type { E } from "./context.js";
import { expCore, horner, logCore, type Seq } from "./math.js";

// Cephes' sinf/cosf: x reduced by multiples of pi/4 split in three parts (DP1 has 8 significant bits, so
// j * DP1 is exact while j < 2^16), then minimax polynomials on [-pi/4, pi/4].
const DP1 = 0.78515625;
const DP2 = 2.4187564849853515625e-4;
const DP3 = 3.77489497744594108e-8;
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1];
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2];

/**
 * sin or cos of x: |x| = j*pi/4 + r with j even, so with k = j/2 mod 4 the result is ±sin r or ±cos r. Inf and
 * NaN give NaN. Beyond |x| ~ 1e5 the three-part reduction loses digits (see docs/language.md).
 */
function sinCosCore(s: Seq, x: () => E, cos: boolean): E {
  const L = s.L;
  const ax = s.f(L.abs(x()));
  const j = s.i(L.iand(L.iadd(L.toInt(L.mul(ax(), L.f(4 / Math.PI))), L.i(1)), L.i(~1)));
  const y = s.f(L.toFloat(j()));
  const r = s.f(L.sub(L.sub(L.sub(ax(), L.mul(y(), L.f(DP1))), L.mul(y(), L.f(DP2))), L.mul(y(), L.f(DP3))));
  const z = s.f(L.mul(r(), r()));
  const ps = s.f(L.add(L.mul(L.mul(horner(L, z, SIN_P), z()), r()), r()));
  const pc = s.f(L.add(L.sub(L.mul(L.mul(horner(L, z, COS_P), z()), z()), L.mul(z(), L.f(0.5))), L.f(1)));
  // k odd swaps sin and cos; the sign flips for k in {2, 3} (sin) or {1, 2} (cos, via (j + 2) & 4).
  const swap = s.mask(L.ieq(L.iand(j(), L.i(2)), L.i(2)));
  const v = s.f(cos ? L.sel(swap(), ps(), pc()) : L.sel(swap(), pc(), ps()));
  const flip = s.mask(L.ieq(L.iand(cos ? L.iadd(j(), L.i(2)) : j(), L.i(4)), L.i(4)));
  // sin is odd: the sign of x (its bit, so sin(-0) = -0) flips the result once more.
  const neg = cos ? flip() : L.sel(L.ilt(L.bits(x()), L.i(0)), L.mnot(flip()), flip());
  const out = L.sel(neg, L.neg(v()), v());
  return L.sel(L.lt(ax(), L.f(Infinity)), out, L.f(NaN));
}

// erf: the coefficients and their fit are in scripts/fit-erf.py (least squares on Chebyshev nodes).
const ERF_SPLIT = 0.875;
const ERF_P = [8.671101386426017e-05, -0.0008210109081119299, 0.005206660833209753, -0.02686155028641224, 0.11283732205629349, -0.37612634897232056, 0.12837916612625122];
const ERF_Q = [
  -5.846182915547615e-08, 1.4034065998203005e-06, -1.3194431630836334e-05, 4.472398359212093e-05, 0.00024071507505141199,
  -0.0038249497301876545, 0.02475942112505436, -0.10810446739196777, -0.6333292722702026, -1.1295722723007202, 0.00019244688155595213,
];

/**
 * erf x: below |x| = 0.875, x + x * P(x^2) (relative accuracy down to subnormals, erf(-0) = -0); above,
 * 1 - e^{Q(t)} with t = min(|x|, 4), Q fitting ln erfc (erf is 1 in f32 from 3.92 on), sign restored last.
 */
function erfCore(s: Seq, x: () => E): E {
  const L = s.L;
  const ax = s.f(L.abs(x()));
  const sq = s.f(L.mul(x(), x()));
  const small = s.f(L.add(x(), L.mul(x(), horner(L, sq, ERF_P))));
  const t = s.f(L.min(ax(), L.f(4)));
  const big = s.f(L.sub(L.f(1), expCore(s, () => horner(L, t, ERF_Q))));
  // NaN fails the compare and takes the second branch, where min() and exp() keep it NaN.
  return L.sel(L.lt(ax(), L.f(ERF_SPLIT)), small(), L.copysign(big(), x()));
}

/**
 * log1p x = log(u) * x / (u - 1) with u = 1 + x rounded (Goldberg): u - 1 is exact, and the quotient corrects
 * the rounding of u, so the result keeps relative accuracy near 0 (and log1p(-0) = -0).
 */
function log1pCore(s: Seq, x: () => E): E {
  const L = s.L;
  const u = s.f(L.add(L.f(1), x()));
  const um1 = s.f(L.sub(u(), L.f(1)));
  const lu = s.f(logCore(s, u));
  const out = L.sel(L.eq(um1(), L.f(0)), x(), L.mul(lu(), L.div(x(), um1())));
  return L.sel(L.eq(x(), L.f(Infinity)), x(), out);
}

/** expm1 x = (u - 1) * x / log(u) with u = e^x (Kahan's trick); x itself where u rounds to 1, -1 where u - 1 does. */
function expm1Core(s: Seq, x: () => E): E {
  const L = s.L;
  const u = s.f(expCore(s, x));
  const um1 = s.f(L.sub(u(), L.f(1)));
  const lu = s.f(logCore(s, u));
  let out = L.sel(L.eq(um1(), L.f(0)), x(), L.mul(um1(), L.div(x(), lu())));
  out = L.sel(L.eq(um1(), L.f(-1)), L.f(-1), out);
  return L.sel(L.eq(u(), L.f(Infinity)), u(), out);
}

export const EXTRA_CORES = {
  erf: { arity: 1, core: (s: Seq, [x]: (() => E)[]) => erfCore(s, x!) },
  sin: { arity: 1, core: (s: Seq, [x]: (() => E)[]) => sinCosCore(s, x!, false) },
  cos: { arity: 1, core: (s: Seq, [x]: (() => E)[]) => sinCosCore(s, x!, true) },
  log1p: { arity: 1, core: (s: Seq, [x]: (() => E)[]) => log1pCore(s, x!) },
  expm1: { arity: 1, core: (s: Seq, [x]: (() => E)[]) => expm1Core(s, x!) },
} as const;
