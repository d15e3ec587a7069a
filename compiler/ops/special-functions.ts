// Op registry, float64 special functions for the reference interpreter: erf (JavaScript has no Math.erf),
// round half to even, torch.remainder and torch.sign. The oracle's own accuracy is what the f32 kernels are
// measured against, so erf is computed to ~1e-15 relative (checked against Python's math.erf in test/ops).

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/**
 * erf(x). |x| < 3: e^{-x²} · 2x/√π · Σ (2x²)^n / (1·3···(2n+1)), a series of positive terms (no cancellation).
 * |x| >= 3: 1 - erfc(x), erfc from its continued fraction (modified Lentz), which converges fast there.
 */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x); // erfc(6) = 2e-17 < half an ulp of 1
  if (a < 3) {
    const x2 = a * a;
    let term = a;
    let sum = a;
    for (let n = 1; n < 200 && term > sum * 1e-17; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r === 0 ? x : r; // keeps erf(-0) = -0
  }
  // erfc(a) = e^{-a²}/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))).
  const tiny = 1e-300;
  let f = a, C = a, D = 0;
  for (let k = 1; k < 300; k++) {
    const ak = k / 2;
    D = a + ak * D;
    D = D === 0 ? tiny : D;
    C = a + ak / C;
    C = C === 0 ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Round to nearest, ties to even (torch.round, numpy.round, wasm's nearest); ±0, ±Inf and NaN unchanged. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 52) return x;
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  return r === 0 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : r;
}

/** torch.sign: -1, 0 or 1; sign(±0) = +0 and sign(NaN) = 0, as PyTorch 1.13 gives. */
export function sign64(x: number): number {
  return (x > 0 ? 1 : 0) - (x < 0 ? 1 : 0);
}

/**
 * torch.remainder for floats (Python's %): fmod, then moved by one divisor when its sign differs from the
 * divisor's, so the result has the sign of b (or is ±0, keeping fmod's sign). Exact in float64.
 */
export function remainder64(a: number, b: number): number {
  const m = a % b;
  return m !== 0 && (b < 0) !== (m < 0) ? m + b : m;
}
