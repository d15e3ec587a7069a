// Codegen stage (WGSL): helper functions a kernel includes when its expressions need them. GPUs may treat
// floats "fast-math" style (WGSL lets implementations assume no NaN or infinity), so NaN tests use the bits, and
// the integer and cast semantics that WGSL leaves to the hardware are spelled out to match wasm and the reference.

export type HelperName =
  | "isnan" | "nan" | "inf" | "max_f32" | "min_f32" | "f32_to_i32" | "div_i32" | "exp" | "log" | "tanh" | "sigmoid" | "pow"
  | "f32_to_bool" | "f16_bits" | "bf16_bits" | "f16_round" | "bf16_round" | "bf16_at" | "to_f16" | MathHelperName;

import { MATH_HELPERS, type MathHelperName } from "./prelude-math.js";

interface Helper {
  readonly deps: readonly HelperName[];
  readonly code: string;
}

const HELPERS: Record<HelperName, Helper> = {
  ...MATH_HELPERS,
  isnan: {
    deps: [],
    code: `fn kiln_isnan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`,
  },
  // Bit patterns go through a let: a const-expression may not produce NaN or infinity.
  nan: {
    deps: [],
    code: `fn kiln_nan() -> f32 {
  let bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}`,
  },
  inf: {
    deps: [],
    code: `fn kiln_inf(negative: bool) -> f32 {
  let bits = select(0x7f800000u, 0xff800000u, negative);
  return bitcast<f32>(bits);
}`,
  },
  // NaN-propagating, like Math.max and wasm's f32.max (WGSL's max may return the other operand).
  max_f32: {
    deps: ["isnan", "nan"],
    code: `fn kiln_max_f32(a: f32, b: f32) -> f32 {
  if (kiln_isnan(a) || kiln_isnan(b)) { return kiln_nan(); }
  return max(a, b);
}`,
  },
  min_f32: {
    deps: ["isnan", "nan"],
    code: `fn kiln_min_f32(a: f32, b: f32) -> f32 {
  if (kiln_isnan(a) || kiln_isnan(b)) { return kiln_nan(); }
  return min(a, b);
}`,
  },
  // Truncates toward zero and saturates, NaN -> 0 (wasm's i32.trunc_sat_f32_s).
  f32_to_i32: {
    deps: ["isnan"],
    code: `fn kiln_f32_to_i32(x: f32) -> i32 {
  if (kiln_isnan(x)) { return 0i; }
  if (x >= 2147483648.0f) { return 2147483647i; }
  if (x <= -2147483648.0f) { return -2147483647i - 1i; }
  return i32(x);
}`,
  },
  // x != 0 with NaN -> true; compared on the bits so a fast-math compiler cannot drop the NaN case.
  f32_to_bool: {
    deps: [],
    code: `fn kiln_f32_to_bool(x: f32) -> i32 {
  return select(0i, 1i, (bitcast<u32>(x) & 0x7fffffffu) != 0u);
}`,
  },
  // f32 -> IEEE binary16 bits, round to nearest even (ties and the f32 -> f16 conversion of WGSL are
  // implementation-defined; this is runtime/dtype.ts f32ToF16Bits in bit operations, so every adapter, the packed
  // and the native path and the wasm backend store the same bits): overflow (>= 65520) -> +-Inf, subnormals kept
  // (round() is round-half-even in WGSL, and x * 2^24 is exact), NaN -> sign | 0x7e00 (quiet, as the host does).
  f16_bits: {
    deps: [],
    code: `fn kiln_f16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let s = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return s | 0x7e00u; }
  if (a >= 0x477ff000u) { return s | 0x7c00u; }
  if (a >= 0x38800000u) {
    let r = a + 0x0fffu + ((a >> 13u) & 1u);
    return s | ((r - 0x38000000u) >> 13u);
  }
  return s | u32(round(bitcast<f32>(a) * 16777216.0f));
}`,
  },
  // f32 -> bfloat16 bits (the top half, round to nearest even); NaN stays NaN with its quiet bit set.
  bf16_bits: {
    deps: [],
    code: `fn kiln_bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return ((b >> 16u) | 0x40u) & 0xffffu; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}`,
  },
  // The f32 value of x rounded to f16 / bf16 (a cast to a 16-bit dtype kept in an f32 register).
  f16_round: {
    deps: ["f16_bits"],
    code: `fn kiln_f16_round(x: f32) -> f32 {
  return unpack2x16float(kiln_f16_bits(x)).x;
}`,
  },
  bf16_round: {
    deps: ["bf16_bits"],
    code: `fn kiln_bf16_round(x: f32) -> f32 {
  return bitcast<f32>(kiln_bf16_bits(x) << 16u);
}`,
  },
  // Element h (0: low half, 1: high half) of a word holding two bf16 values, as f32.
  bf16_at: {
    deps: [],
    code: `fn kiln_bf16_at(w: u32, h: u32) -> f32 {
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, h == 1u));
}`,
  },
  // For array<f16> stores (the shader has `enable f16;`): the same bits as the packed path.
  to_f16: {
    deps: ["f16_bits"],
    code: `fn kiln_to_f16(x: f32) -> f16 {
  return bitcast<vec2<f16>>(kiln_f16_bits(x)).x;
}`,
  },
  // Truncating division where x / 0 = 0 and INT_MIN / -1 wraps to INT_MIN (WGSL would return x for both).
  div_i32: {
    deps: [],
    code: `fn kiln_div_i32(a: i32, b: i32) -> i32 {
  if (b == 0i) { return 0i; }
  if (b == -1i) { return 0i - a; }
  return a / b;
}`,
  },
  // exp and log are the wasm backend's algorithms (compiler/codegen/wasm/math.ts, Cephes' single precision):
  // WGSL only promises log to 2^-21 absolute near 1 and pow inherits it, which 1 - beta^t (Adam's bias
  // correction) turns into a 5e-5 relative error; these are within a few ulps and agree with wasm everywhere.
  // e^x: clamping to [-104, 89] keeps 2^n finite; 2^n is applied as two factors so subnormal results round once.
  exp: {
    deps: ["isnan"],
    code: `fn kiln_exp(x0: f32) -> f32 {
  if (kiln_isnan(x0)) { return x0; }
  let x = min(max(x0, -104.0f), 89.0f);
  let n = round(x * 1.44269504088896341f);
  let r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  let p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  let y = (p * (r * r) + r) + 1.0f;
  let ni = i32(n);
  let n1 = ni >> 1u;
  return y * bitcast<f32>((n1 + 127i) << 23u) * bitcast<f32>((ni - n1 + 127i) << 23u);
}`,
  },
  // ln x: x = m * 2^e with m in [sqrt(1/2), sqrt(2)); subnormals are first scaled by 2^23.
  log: {
    deps: ["isnan", "nan", "inf"],
    code: `fn kiln_log(x: f32) -> f32 {
  if (kiln_isnan(x)) { return x; }
  if (x < 0.0f) { return kiln_nan(); }
  if (x == 0.0f) { return kiln_inf(true); }
  if (bitcast<u32>(x) == 0x7f800000u) { return x; }
  let tiny = x < 1.17549435e-38f;
  let bits = bitcast<i32>(select(x, x * 8388608.0f, tiny));
  let e0 = ((bits >> 23u) - 126i) - select(0i, 23i, tiny);
  let m0 = bitcast<f32>((bits & 0x007fffffi) | 0x3f000000i);
  let small = m0 < 0.70710678118654752440f;
  let fe = f32(e0 - select(0i, 1i, small));
  let xm = select(m0 - 1.0f, (m0 + m0) - 1.0f, small);
  let z = xm * xm;
  let p = (((((((7.0376836292e-2f * xm - 1.1514610310e-1f) * xm + 1.1676998740e-1f) * xm - 1.2420140846e-1f) * xm + 1.4249322787e-1f) * xm - 1.6668057665e-1f) * xm + 2.0000714765e-1f) * xm - 2.4999993993e-1f) * xm + 3.3333331174e-1f;
  var y = p * xm * z;
  y = y + fe * -2.12194440e-4f;
  y = y + z * -0.5f;
  return (xm + y) + fe * 0.693359375f;
}`,
  },
  // WGSL's tanh loses relative accuracy near 0 on some drivers (1.7e-5 on llvmpipe); this is wasm's algorithm:
  // an odd polynomial below |x| = 0.625, else 1 - 2 / (e^{2|x|} + 1), which saturates to 1 by itself.
  tanh: {
    deps: ["exp"],
    code: `fn kiln_tanh(x: f32) -> f32 {
  let ax = abs(x);
  var r: f32;
  if (ax > 0.625f) {
    r = 1.0f - 2.0f / (kiln_exp(ax + ax) + 1.0f);
  } else {
    let z = ax * ax;
    let p = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z - 3.33332819422e-1f);
    r = p * z * ax + ax;
  }
  return select(r, -r, x < 0.0f);
}`,
  },
  // e^-x overflows to inf for very negative x, giving 0; it underflows to 0 for large x, giving 1.
  sigmoid: {
    deps: ["exp"],
    code: `fn kiln_sigmoid(x: f32) -> f32 {
  return 1.0f / (1.0f + kiln_exp(-x));
}`,
  },
  // a^b = e^{b ln|a|} (0^(b>0) = 0, 0^(b<0) = inf, inf and NaN follow); then, as C's pow: a negative base takes
  // the sign of an odd integer b (|b| >= 2^24 is always even) and is NaN for a non-integer b unless it is -inf;
  // b = 0, a = 1 (even for b = NaN) and (-1)^±inf give 1.
  pow: {
    deps: ["exp", "log", "nan"],
    code: `fn kiln_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0f || a == 1.0f) { return 1.0f; }
  let ab = bitcast<u32>(b) & 0x7fffffffu;
  if (a == -1.0f && ab == 0x7f800000u) { return 1.0f; }
  let r = kiln_exp(b * kiln_log(abs(a)));
  let is_int = trunc(b) == b;
  let odd = is_int && abs(b) < 16777216.0f && (i32(b) & 1i) != 0i;
  // -inf is not NaN here: (-inf)^0.5 = inf, (-inf)^-1.5 = 0, as C's pow.
  if (a < 0.0f && !is_int && (bitcast<u32>(a) & 0x7fffffffu) != 0x7f800000u) { return kiln_nan(); }
  // The sign bit, not a < 0: (-0)^(odd negative) is -inf, as in C's pow and the reference.
  return select(r, -r, odd && (bitcast<u32>(a) & 0x80000000u) != 0u);
}`,
  },
};

/** The helpers' code in dependency order (each once). */
export function renderHelpers(used: ReadonlySet<HelperName>): string[] {
  const out: string[] = [];
  const done = new Set<HelperName>();
  const visit = (h: HelperName): void => {
    if (done.has(h)) return;
    done.add(h);
    HELPERS[h].deps.forEach(visit);
    out.push(HELPERS[h].code);
  };
  [...used].sort().forEach(visit);
  return out;
}
