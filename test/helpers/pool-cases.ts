// Pooling cases shared by the wasm and WebGPU tests of the direct pool2d kernel (codegen/plan-pool.ts): max and avg
// windows of kernel 2/3, stride 1/2/3, padding, ceil_mode, over images whose rows are shorter, equal to and longer
// than a vector block, each pooled directly, after relu, after a per-channel affine + relu (batch_norm's shape) and
// after an affine alone; data with many ties, signed zeros, NaN and infinities.
import type { Input } from "./backend.js";

export interface PoolCase {
  readonly fn: string;
  readonly call: string;
  /** The producer is fused into the pool kernel (windows that do not overlap). */
  readonly fused: boolean;
  readonly exact: boolean;
}

const POOLS = [
  { tag: "max2", call: "max_pool2d(#, 2)", k: 2, s: 2 },
  { tag: "max2p1", call: "max_pool2d(#, 2, padding: 1)", k: 2, s: 2 },
  { tag: "max2ceil", call: "max_pool2d(#, 2, ceil_mode: true)", k: 2, s: 2 },
  { tag: "max3s2p1", call: "max_pool2d(#, 3, stride: 2, padding: 1)", k: 3, s: 2 },
  { tag: "max3s1p1", call: "max_pool2d(#, 3, stride: 1, padding: 1)", k: 3, s: 1 },
  { tag: "max2s1", call: "max_pool2d(#, 2, stride: 1)", k: 2, s: 1 },
  { tag: "max3", call: "max_pool2d(#, 3)", k: 3, s: 3 },
  { tag: "avg2", call: "avg_pool2d(#, 2)", k: 2, s: 2 },
  { tag: "avg2p1", call: "avg_pool2d(#, 2, padding: 1)", k: 2, s: 2 },
  { tag: "avg3s1p1", call: "avg_pool2d(#, 3, stride: 1, padding: 1)", k: 3, s: 1 },
  { tag: "avg3s2p1", call: "avg_pool2d(#, 3, stride: 2, padding: 1)", k: 3, s: 2 },
] as const;

const PRODUCERS = [
  { tag: "x", expr: "x", exact: true },
  { tag: "relu", expr: "relu(x)", exact: true },
  { tag: "bnrelu", expr: "relu(x * g + b)", exact: false },
  { tag: "affine", expr: "x * g - b", exact: false },
] as const;

/** One module's source (every case over x: f32[N, C, H, W]) and its cases. */
export function poolModule(C: number, H: number, W: number): { src: string; cases: PoolCase[] } {
  const cases: PoolCase[] = [];
  const fns: string[] = [];
  for (const p of POOLS) {
    for (const q of PRODUCERS) {
      const fn = `${p.tag}_${q.tag}`;
      const call = p.call.replace("#", q.expr);
      fns.push(`fn ${fn}(x: f32[N, ${C}, ${H}, ${W}], g: f32[${C}, 1, 1], b: f32[${C}, 1, 1]) { return ${call} }`);
      cases.push({ fn, call, fused: q.tag !== "x" && p.s >= p.k, exact: q.exact && p.tag.startsWith("max") });
    }
  }
  return { src: fns.join("\n"), cases };
}

/**
 * x with many ties (halves in [-2, 2], -0 among them), plus NaN, +inf and -inf at a few places; g and b per channel.
 * `special: false` leaves the non-finite values out (an avg or affine of them is NaN everywhere it reaches).
 */
export function poolInputs(N: number, C: number, H: number, W: number, seed: number, special = true): Record<string, Input> {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const n = N * C * H * W;
  const x = Array.from({ length: n }, () => Math.round((rnd() * 2 - 1) * 4) / 2);
  for (let i = 0; i < n; i += 37) x[i] = -0;
  if (special) {
    x[Math.floor(n / 3)] = NaN;
    x[Math.floor(n / 2)] = Infinity;
    x[Math.floor((2 * n) / 3)] = -Infinity;
    x[n - 1] = NaN;
  }
  const g = Array.from({ length: C }, (_, c) => Math.fround(0.5 + 0.25 * c));
  const b = Array.from({ length: C }, (_, c) => Math.fround(0.125 * c - 0.25));
  return { x: { dtype: "f32", shape: [N, C, H, W], data: x }, g: { dtype: "f32", shape: [C, 1, 1], data: g }, b: { dtype: "f32", shape: [C, 1, 1], data: b } };
}

/**
 * `got` equals the reference `want`: bit for bit as f32 (signed zeros, NaN as NaN) when exact, else within 2e-6.
 * `signedZeros: false` (WebGPU, where WGSL's max need not order -0 below +0) lets a zero of either sign match.
 */
export function poolMismatch(got: ArrayLike<number>, want: ArrayLike<number>, exact: boolean, signedZeros = true): string | undefined {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const a = Number(got[i]), r = Math.fround(Number(want[i]));
    if (Number.isNaN(r) || Number.isNaN(a)) {
      if (Number.isNaN(r) !== Number.isNaN(a)) return `[${i}] ${a} vs ${r}`;
      continue;
    }
    if (exact ? !(signedZeros ? Object.is(a, r) : a === r) : !(a === r || Math.abs(a - r) <= 1e-6 + 2e-6 * Math.abs(r))) return `[${i}] ${a} vs ${r}`;
  }
  return undefined;
}
