// Op registry, a strided conv2d's input gradient by sub-pixel (phase) decomposition (issue 19 item 1): at stride s
// the input rows h = s*u + r of one phase r in [0, s) receive only the kernel taps p with (r + pad - p*dilation)
// divisible by s, so per phase (r, q) the gradient is a stride-1 correlation of dY with that sub-kernel (flipped,
// transposed): s*s gathered implicit-GEMM products (codegen/plan-conv-gather.ts) that read no zeros, written as NHWC
// rows, then one stacking concat and one permute that interleaves them into NCHW, instead of col2im's patch-sized
// d(rows) matmul, its permute and a pad and an add per tap.
// Built from primitives, so the reference interpreter checks it and second derivatives exist.
// `KILN_CONV_DX_PHASE=0` keeps col2im, `=N` sets the fewest pixels per phase (A/B runs, tests; compiler/cache.ts keys on it).

import type { Node } from "../ir/graph.js";
import type { Dim } from "../ir/types.js";
import { convGradOperands } from "./conv-backward.js";
import { flip } from "./depthwise.js";
import type { GradEmitter } from "./vjp-core.js";
import type { AttrsOf } from "./types.js";

/**
 * The fewest pixels per phase image (U*V) that take the phases: `KILN_CONV_DX_PHASE` unset, PHASE_MIN_PIXELS; `0`,
 * never (col2im, A/B runs); another number, that many (tests force small images through with 1).
 */
export function phaseMinPixels(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CONV_DX_PHASE;
  const n = env === undefined || env === "" ? NaN : Number(env);
  return Number.isInteger(n) && n >= 0 ? (n === 0 ? Infinity : n) : PHASE_MIN_PIXELS;
}

/** The fewest pixels per phase image (U*V) that take the phases. */
export const PHASE_MIN_PIXELS = 32;

/** One axis of one phase: the taps it takes (first, step, count), the dilation between them in dY, dY's [lo, hi] padding (negative: cropped). */
interface AxisPhase {
  readonly p0: number;
  readonly step: number;
  readonly T: number;
  readonly dil: number;
  readonly lo: number;
  readonly hi: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Rows h = s*u + r (u < U) of x, padded by `pad` before the window: the taps p with r + pad - p*d divisible by s,
 * p0 the first and then every s / gcd(s, d)-th, the t-th of them reading dY at u + m0 - t*(d / gcd), where
 * m0 = (r + pad - p0*d) / s. Undefined when no tap reaches this phase (its gradient is 0).
 */
function axisPhase(r: number, pad: number, s: number, d: number, K: number, U: number, OH: number): AxisPhase | undefined {
  let p0 = 0;
  while (p0 < K && (((r + pad - p0 * d) % s) + s) % s !== 0) p0++;
  if (p0 >= K) return undefined;
  const g = gcd(s, d);
  const step = s / g, dil = d / g;
  const T = Math.floor((K - 1 - p0) / step) + 1;
  const m0 = (r + pad - p0 * d) / s;
  // Correlation with the flipped taps: phase[u] = sum over t' of dY[u + m0 - (T - 1)*dil + t'*dil] w[tap T - 1 - t'].
  const lo = (T - 1) * dil - m0;
  const hi = U - 1 + m0 - (OH - 1);
  return { p0, step, T, dil, lo, hi };
}

/**
 * The gradient of x (the window's input, or the input of the zero pad before it, `pad`) for conv2d's d(rows)
 * cotangent at stride > 1, as an NCHW [N, C, H, W] value; undefined when the pattern or the sizes do not fit.
 */
export function phaseConvGrad(e: GradEmitter, n: Node<"window">, ct: number, pad: readonly [number, number], H: number, W: number): number | undefined {
  const minPixels = phaseMinPixels();
  if (minPixels === Infinity) return undefined;
  const { stride: [sh, sw], dilation: [dh, dw] } = n.attrs;
  if ((sh === 1 && sw === 1) || e.lowPrecision(n)) return undefined;
  const ops = convGradOperands(e, n, ct);
  if (!ops) return undefined;
  const { img, B, N, C, O, OH, OW, KH, KW } = ops;
  // Windows that do not overlap (span <= stride on both axes, e.g. 1x1 at stride 2) give each pixel at most one tap:
  // col2im is then one pad per tap and no sum, and the phases would add zero phases and the interleaving copies.
  if ((KH - 1) * dh + 1 <= sh && (KW - 1) * dw + 1 <= sw) return undefined;
  const U = Math.ceil(H / sh), V = Math.ceil(W / sw);
  // Phase images under 32 pixels: too few rows per image for the gathered products to beat the one big d(rows) gemm
  // (measured: 4 pixels 0.72x, 16 pixels 0.99x, 49 pixels 1.05x, 64 pixels 1.15x, bench/conv-dx-ab.js).
  if (U * V < minPixels) return undefined;
  // The kernel flipped along p and q and transposed to [C, O, KH, KW] once; each phase takes a strided slice of it.
  const w4 = e.emit("reshape", [B], { shape: [O, C, KH, KW] });
  const wf = e.emit("permute", [flip(e, flip(e, w4, 2, KH), 3, KW)], { perm: [1, 0, 2, 3] });
  const phases: number[] = [];
  for (let r = 0; r < sh; r++) {
    for (let q = 0; q < sw; q++) {
      const a = axisPhase(r, pad[0], sh, dh, KH, U, OH), b = axisPhase(q, pad[1], sw, dw, KW, V, OW);
      phases.push(a && b ? phaseRows(e, img, wf, a, b, KH, KW) : zeros(e, [N, U, V, C]));
    }
  }
  // Interleave: stack the NHWC phases [s*s, N, U, V, C] (one copy, each phase into its block), then one permute to
  // [N, C, U, sh, V, sw] = NCHW, then cut to H x W where U*sh or V*sw is longer.
  const stacked = e.emit("concat", phases.map((p) => e.emit("reshape", [p], { shape: [1, N, U, V, C] })), { axis: 0 });
  const six = e.emit("reshape", [stacked], { shape: [sh, sw, N, U, V, C] });
  let dx = e.emit("reshape", [e.emit("permute", [six], { perm: [2, 5, 3, 0, 4, 1] })], { shape: [N, C, U * sh, V * sw] });
  if (U * sh !== H) dx = e.emit("slice", [dx], { axis: 2, start: 0, end: H });
  if (V * sw !== W) dx = e.emit("slice", [dx], { axis: 3, start: 0, end: W });
  return dx;
}

function zeros(e: GradEmitter, shape: Dim[]): number {
  return e.emit("broadcast_to", [e.constant(0, "f32")], { shape });
}

/**
 * One phase as NHWC rows [N, U, V, C]: dY (padded or cropped so that the phase lands in x's coordinates) correlated
 * with its flipped taps at stride 1, the patches gathered into the matmul's A panels (codegen/plan-conv-gather.ts), as
 * col2im's d(rows) gemm is shaped; the interleaving permute then makes NCHW. One tap: dYᵀ x w on dY as it is.
 */
function phaseRows(e: GradEmitter, img: number, wf: number, a: AxisPhase, b: AxisPhase, KH: number, KW: number): number {
  // wf's tap index is flipped: tap p sits at K - 1 - p, so the phase's taps p0 + step*t, t < T, are the strided
  // run from K - 1 - p0 - step*(T - 1) in increasing (flipped) order.
  let w = wf;
  if (a.T !== KH) w = e.emit("slice", [w], { axis: 2, start: KH - 1 - a.p0 - a.step * (a.T - 1), end: KH - a.p0, ...(a.step > 1 ? { step: a.step } : {}) });
  if (b.T !== KW) w = e.emit("slice", [w], { axis: 3, start: KW - 1 - b.p0 - b.step * (b.T - 1), end: KW - b.p0, ...(b.step > 1 ? { step: b.step } : {}) });
  let x = img;
  // Negative padding: dY rows no input row of this phase reads (a padding larger than the kernel's reach).
  const crop = (axis: 2 | 3, lo: number, hi: number) => {
    const size = e.type(x).shape[axis] as number;
    const start = Math.max(-lo, 0), end = size - Math.max(-hi, 0);
    if (start > 0 || end < size) x = e.emit("slice", [x], { axis, start, end });
  };
  crop(2, a.lo, a.hi);
  crop(3, b.lo, b.hi);
  const grow: AttrsOf["pad"]["pads"] = [[0, 0, 0], [0, 0, 0], [Math.max(a.lo, 0), Math.max(a.hi, 0), 0], [Math.max(b.lo, 0), Math.max(b.hi, 0), 0]];
  // Asymmetric padding: the pad node under the window (the gather reads its lo and checks bounds for the rest).
  if (grow.some(([lo, hi]) => lo > 0 || hi > 0)) x = e.emit("pad", [x], { pads: grow, value: 0 });
  const [N, O, Hx, Wx] = e.type(x).shape as [Dim, number, number, number];
  const C = e.type(w).shape[0] as number;
  const k = O * a.T * b.T;
  const wt = e.emit("permute", [e.emit("reshape", [w], { shape: [C, k] })], { perm: [1, 0] });
  if (a.T === 1 && b.T === 1) {
    // One tap: [N, U*V, O] (dY read transposed per image, which the matmul folds) x w [O, C].
    const dyT = e.emit("permute", [e.emit("reshape", [x], { shape: [N, O, Hx * Wx] })], { perm: [0, 2, 1] });
    return e.emit("reshape", [e.emit("matmul", [dyT, wt], {})], { shape: [N, Hx, Wx, C] });
  }
  const cols = e.emit("window", [x], { kernel: [a.T, b.T], stride: [1, 1], dilation: [a.dil, b.dil] });
  const [, U, V] = e.type(cols).shape as [Dim, number, number];
  // A known batch makes the rows one matrix (as conv2d's), a symbolic one [N, U*V, k], one gemm over all rows either way.
  const rows = e.emit("reshape", [cols], { shape: typeof N === "number" ? [N * U * V, k] : [N, U * V, k] });
  return e.emit("reshape", [e.emit("matmul", [rows, wt], {})], { shape: [N, U, V, C] });
}
