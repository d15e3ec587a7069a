// Op registry, a strided conv2d's input gradient by sub-pixel (phase) decomposition (issue 19 item 1): at stride s
// the input rows h = s*u + r of one phase r in [0, s) receive only the kernel taps p with (r + pad - p*dilation)
// divisible by s, so per phase (r, q) the gradient is a stride-1 correlation of dY with that sub-kernel (flipped,
// transposed): s*s gathered implicit-GEMM convs (codegen/plan-conv-gather.ts) that read no zeros, then one
// interleaving copy, instead of col2im's patch-sized d(rows) matmul, its permute and a pad and an add per tap.
// Built from primitives, so the reference interpreter checks it and second derivatives exist.
// `KILN_CONV_DX_PHASE=0` keeps col2im (A/B measurements; compiler/cache.ts keys on it).

import type { Node } from "../ir/graph.js";
import type { Dim } from "../ir/types.js";
import { conv2d } from "./conv.js";
import { convGradOperands } from "./conv-backward.js";
import { flip } from "./depthwise.js";
import type { GradEmitter } from "./vjp-core.js";
import type { AttrsOf } from "./types.js";

export function phaseGradEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CONV_DX_PHASE;
  return env !== "0";
}

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
 * Rows h = s*u + r (u < U) of x, padded by `pad` before the window: the taps p with (r + pad - p*d) = s*m, m >= ...,
 * taken every s / gcd(s, d) taps, read dY at u + m0 - t*(d / gcd) for the t-th of them (m0 for the first).
 * Undefined when no tap reaches this phase (its gradient is 0).
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
  if (!phaseGradEnabled()) return undefined;
  const { stride: [sh, sw], dilation: [dh, dw] } = n.attrs;
  if ((sh === 1 && sw === 1) || e.lowPrecision(n)) return undefined;
  const ops = convGradOperands(e, n, ct);
  if (!ops) return undefined;
  const { img, B, N, C, O, OH, OW, KH, KW } = ops;
  // Windows that do not overlap (span <= stride on both axes, e.g. 1x1 at stride 2) give each pixel at most one tap:
  // col2im is then one pad per tap and no sum, and the phases would add zero phases and the interleaving copies.
  if ((KH - 1) * dh + 1 <= sh && (KW - 1) * dw + 1 <= sw) return undefined;
  const U = Math.ceil(H / sh), V = Math.ceil(W / sw);
  // The kernel flipped along p and q and transposed to [C, O, KH, KW] once; each phase takes a strided slice of it.
  const w4 = e.emit("reshape", [B], { shape: [O, C, KH, KW] });
  const wf = e.emit("permute", [flip(e, flip(e, w4, 2, KH), 3, KW)], { perm: [1, 0, 2, 3] });
  const phases: number[] = [];
  for (let r = 0; r < sh; r++) {
    for (let q = 0; q < sw; q++) {
      const a = axisPhase(r, pad[0], sh, dh, KH, U, OH), b = axisPhase(q, pad[1], sw, dw, KW, V, OW);
      phases.push(a && b ? phaseConv(e, img, wf, a, b, KH, KW) : zeros(e, [N, C, U, V]));
    }
  }
  // Interleave: stack [s*s, N, C, U, V] (one copy, each phase into its block), then [N, C, U, sh, V, sw] (one
  // copy), then cut to H x W where U*sh or V*sw is longer.
  const stacked = e.emit("concat", phases.map((p) => e.emit("reshape", [p], { shape: [1, N, C, U, V] })), { axis: 0 });
  const six = e.emit("reshape", [stacked], { shape: [sh, sw, N, C, U, V] });
  let dx = e.emit("reshape", [e.emit("permute", [six], { perm: [2, 3, 4, 0, 5, 1] })], { shape: [N, C, U * sh, V * sw] });
  if (U * sh !== H) dx = e.emit("slice", [dx], { axis: 2, start: 0, end: H });
  if (V * sw !== W) dx = e.emit("slice", [dx], { axis: 3, start: 0, end: W });
  return dx;
}

function zeros(e: GradEmitter, shape: Dim[]): number {
  return e.emit("broadcast_to", [e.constant(0, "f32")], { shape });
}

/** One phase: dY (padded or cropped) correlated with its flipped taps, stride 1, as the conv2d composite. */
function phaseConv(e: GradEmitter, img: number, wf: number, a: AxisPhase, b: AxisPhase, KH: number, KW: number): number {
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
  const padded = grow.some(([lo, hi]) => lo > 0 || hi > 0);
  // Asymmetric padding: the pad node under the window (the gather reads its lo and checks bounds for the rest).
  if (padded) x = e.emit("pad", [x], { pads: grow, value: 0 });
  if (a.T === 1 && b.T === 1) {
    // One tap: w [C, O] @ dY [N, O, U*V] on the NCHW data, whatever the image size (conv2d would take a window
    // copy below 64 pixels).
    const [N, O, U, V] = e.type(x).shape as [Dim, number, number, number];
    const C = e.type(w).shape[0] as number;
    const y = e.emit("matmul", [e.emit("reshape", [w], { shape: [C, O] }), e.emit("reshape", [x], { shape: [N, O, U * V] })], {});
    return e.emit("reshape", [y], { shape: [N, C, U, V] });
  }
  return conv2d(e, x, w, undefined, { stride: [1, 1], padding: [0, 0], dilation: [a.dil, b.dil], groups: 1 })!;
}
