// Codegen stage (WGSL): helper functions a kernel includes when its expressions need them. GPUs may treat
// floats "fast-math" style (WGSL lets implementations assume no NaN or infinity), so NaN tests use the bits, and
// the integer and cast semantics that WGSL leaves to the hardware are spelled out to match wasm and the reference.

export type HelperName =
  | "isnan" | "nan" | "inf" | "max_f32" | "min_f32" | "f32_to_i32" | "div_i32" | "tanh" | "sigmoid" | "pow" | "f32_to_bool";

interface Helper {
  readonly deps: readonly HelperName[];
  readonly code: string;
}

const HELPERS: Record<HelperName, Helper> = {
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
  // Truncating division where x / 0 = 0 and INT_MIN / -1 wraps to INT_MIN (WGSL would return x for both).
  div_i32: {
    deps: [],
    code: `fn kiln_div_i32(a: i32, b: i32) -> i32 {
  if (b == 0i) { return 0i; }
  if (b == -1i) { return 0i - a; }
  return a / b;
}`,
  },
  // WGSL's tanh loses relative accuracy near 0 on some drivers (1.7e-5 on llvmpipe); this is wasm's algorithm:
  // an odd polynomial below |x| = 0.625, else 1 - 2 / (e^{2|x|} + 1), which saturates to 1 by itself.
  tanh: {
    deps: [],
    code: `fn kiln_tanh(x: f32) -> f32 {
  let ax = abs(x);
  var r: f32;
  if (ax > 0.625f) {
    r = 1.0f - 2.0f / (exp(ax + ax) + 1.0f);
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
    deps: [],
    code: `fn kiln_sigmoid(x: f32) -> f32 {
  return 1.0f / (1.0f + exp(-x));
}`,
  },
  // WGSL's pow is exp2(b * log2(a)), undefined for a <= 0; this adds Math.pow's cases: b = 0 gives 1, a = 0 gives
  // 0 or inf, a negative base is NaN unless b is an integer, whose parity gives the sign.
  pow: {
    deps: ["nan", "inf"],
    code: `fn kiln_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0f) { return 1.0f; }
  let odd = trunc(b) == b && abs(b) < 16777216.0f && (i32(b) & 1i) != 0i;
  if (a == 0.0f) {
    if (b > 0.0f) { return select(0.0f, a, odd); }
    return kiln_inf(odd && (bitcast<u32>(a) & 0x80000000u) != 0u);
  }
  let r = pow(abs(a), b);
  if (a < 0.0f) {
    if (trunc(b) != b) { return kiln_nan(); }
    return select(r, -r, odd);
  }
  return r;
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
