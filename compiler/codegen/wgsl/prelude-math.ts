// Codegen stage (WGSL): helper functions of the math primitives of issue 16, spread into prelude.ts's table.
// They are the wasm backend's algorithms (compiler/codegen/wasm/math-extra.ts), because WGSL's own sin/cos
// only promise 2^-11 absolute error and it has no erf, log1p or expm1. NaN tests use the bits (fast-math).

interface Helper {
  readonly deps: readonly ("isnan" | "nan" | "exp" | "log" | "f32_to_i32")[];
  readonly code: string;
}

export type MathHelperName = "sincos" | "erf" | "log1p" | "expm1" | "remainder";

export const MATH_HELPERS: Record<MathHelperName, Helper> = {
  // Cephes' sinf/cosf: |x| = j*pi/4 + r (pi/4 in three parts), k = j/2 mod 4 picks ±sin r or ±cos r.
  sincos: {
    deps: ["nan", "f32_to_i32"],
    code: `fn kiln_sincos(x: f32, cosine: bool) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u) { return kiln_nan(); }
  let ax = abs(x);
  let j = (kiln_f32_to_i32(ax * 1.27323954473516268f) + 1i) & -2i;
  let y = f32(j);
  let r = ((ax - y * 0.78515625f) - y * 2.4187564849853515625e-4f) - y * 3.77489497744594108e-8f;
  let z = r * r;
  let ps = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  let pc = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1.0f;
  let swap = (j & 2i) != 0i;
  var v: f32;
  var flip: bool;
  if (cosine) {
    v = select(pc, ps, swap);
    flip = ((j + 2i) & 4i) != 0i;
  } else {
    v = select(ps, pc, swap);
    flip = ((j & 4i) != 0i) != ((bitcast<u32>(x) & 0x80000000u) != 0u);
  }
  return select(v, -v, flip);
}`,
  },
  // x + x * P(x^2) below 0.875, else 1 - e^{Q(min(|x|, 4))} with the sign of x (scripts/fit-erf.py).
  erf: {
    deps: ["isnan", "exp"],
    code: `fn kiln_erf(x: f32) -> f32 {
  if (kiln_isnan(x)) { return x; }
  let ax = abs(x);
  if (ax < 0.875f) {
    let s = x * x;
    let p = (((((8.671101386426017e-05f * s - 0.0008210109081119299f) * s + 0.005206660833209753f) * s - 0.02686155028641224f) * s + 0.11283732205629349f) * s - 0.37612634897232056f) * s + 0.12837916612625122f;
    return x + x * p;
  }
  let t = min(ax, 4.0f);
  let q = (((((((((-5.846182915547615e-08f * t + 1.4034065998203005e-06f) * t - 1.3194431630836334e-05f) * t + 4.472398359212093e-05f) * t + 0.00024071507505141199f) * t - 0.0038249497301876545f) * t + 0.02475942112505436f) * t - 0.10810446739196777f) * t - 0.6333292722702026f) * t - 1.1295722723007202f) * t + 0.00019244688155595213f;
  let r = 1.0f - kiln_exp(q);
  return select(r, -r, x < 0.0f);
}`,
  },
  // Goldberg: log(u) * x / (u - 1) with u = 1 + x, accurate near 0; log1p(-0) = -0.
  log1p: {
    deps: ["isnan", "log"],
    code: `fn kiln_log1p(x: f32) -> f32 {
  if (kiln_isnan(x) || bitcast<u32>(x) == 0x7f800000u) { return x; }
  let u = 1.0f + x;
  let um1 = u - 1.0f;
  if (um1 == 0.0f) { return x; }
  return kiln_log(u) * (x / um1);
}`,
  },
  // Kahan: (u - 1) * x / log(u) with u = e^x.
  expm1: {
    deps: ["isnan", "exp", "log"],
    code: `fn kiln_expm1(x: f32) -> f32 {
  if (kiln_isnan(x)) { return x; }
  let u = kiln_exp(x);
  if (bitcast<u32>(u) == 0x7f800000u) { return u; }
  let um1 = u - 1.0f;
  if (um1 == 0.0f) { return x; }
  if (um1 == -1.0f) { return -1.0f; }
  return um1 * (x / kiln_log(u));
}`,
  },
  // torch.remainder in f32 (WGSL has no f64): a - floor(a / b) * b, corrected by one b when the rounded
  // quotient crossed an integer; exact only while |a / b| is small (docs/language.md). Zero keeps a's sign.
  remainder: {
    deps: ["isnan", "nan"],
    code: `fn kiln_remainder(a: f32, b: f32) -> f32 {
  if (kiln_isnan(a) || kiln_isnan(b) || b == 0.0f) { return kiln_nan(); }
  let aa = bitcast<u32>(a) & 0x7fffffffu;
  if (aa >= 0x7f800000u) { return kiln_nan(); }
  if ((bitcast<u32>(b) & 0x7fffffffu) == 0x7f800000u) {
    return select(a, b, a != 0.0f && ((a < 0.0f) != (b < 0.0f)));
  }
  var r = a - floor(a / b) * b;
  if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) { r = r + b; }
  if (abs(r) >= abs(b)) { r = r - b; }
  if (r == 0.0f) { return bitcast<f32>(bitcast<u32>(a) & 0x80000000u); }
  return r;
}`,
  },
};
