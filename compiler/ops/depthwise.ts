// Op registry, depthwise_conv2d: one 2-D filter per channel (conv2d with groups = channels), a primitive so the
// backends run it as one direct kernel (padding as bounds in the loop) instead of an im2col window of KH*KW times
// the activations. Its shape rule, float64 evaluator and gradient: the input's is the same op on the cotangent
// (stride folded in as interior zeros, the kernel flipped), the filter's a window product summed over pixels.

import { formatShape, isFloat, type Dim } from "../ir/types.js";
import { makeRef } from "./shape-utils.js";
import type { GradEmitter, VjpRule } from "./vjp-core.js";
import type { AttrsOf, InferResult, OpCore } from "./types.js";

type Attrs = AttrsOf["depthwise_conv2d"];

const posInt = (v: number) => Number.isInteger(v) && v >= 1;

/** Output size along spatial axis k (0: H, 1: W). */
export function depthwiseOut(size: number, K: number, k: 0 | 1, a: Attrs): number {
  return Math.floor((size + a.pads[k]![0] + a.pads[k]![1] - a.dilation[k] * (K - 1) - 1) / a.stride[k]) + 1;
}

export const depthwiseConv2dCore: OpCore<"depthwise_conv2d"> = {
  name: "depthwise_conv2d",
  arity: 2,
  infer([x, w], a): InferResult {
    const bad = (message: string): InferResult => ({ error: "K409", message: `depthwise_conv2d: ${message}` });
    if (x.dtype !== w.dtype || !isFloat(x.dtype)) return bad(`needs float x and w of one dtype, got ${x.dtype} and ${w.dtype}`);
    if (x.shape.length !== 4 || w.shape.length !== 4) return bad(`needs x [N, C, H, W] and w [C, 1, KH, KW], got ${formatShape(x.shape)} and ${formatShape(w.shape)}`);
    const [N, C, H, W] = x.shape;
    const [WC, one, KH, KW] = w.shape;
    if (typeof C !== "number" || typeof H !== "number" || typeof W !== "number") return bad(`needs known C, H and W, got x ${formatShape(x.shape)}`);
    if (WC !== C || one !== 1 || typeof KH !== "number" || typeof KW !== "number") return bad(`w ${formatShape(w.shape)} must be [${C}, 1, KH, KW]`);
    if (a.stride.length !== 2 || a.dilation.length !== 2 || !a.stride.every(posInt) || !a.dilation.every(posInt)) return bad("stride and dilation must be two positive integers");
    if (a.pads.length !== 2 || !a.pads.every((p) => p.length === 2 && p.every(Number.isInteger))) return bad("pads must be [[top, bottom], [left, right]] integers");
    const oh = depthwiseOut(H, KH, 0, a), ow = depthwiseOut(W, KW, 1, a);
    if (oh < 1 || ow < 1) return { error: "K410", message: `depthwise_conv2d: the ${KH}x${KW} kernel does not fit ${formatShape(x.shape)} with pads ${JSON.stringify(a.pads)}` };
    return { dtype: x.dtype, shape: [N as Dim, C, oh, ow] };
  },
  evaluate([x, w], a, out) {
    const r = makeRef(out.dtype, out.shape);
    const [N, C, OH, OW] = out.shape;
    const [, , H, W] = x.shape;
    const [, , KH, KW] = w.shape;
    const [[top], [left]] = a.pads as [[number, number], [number, number]];
    let o = 0;
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let i = 0; i < OH; i++)
          for (let j = 0; j < OW; j++) {
            let s = 0;
            for (let p = 0; p < KH; p++) {
              const h = i * a.stride[0] + p * a.dilation[0] - top;
              if (h < 0 || h >= H) continue;
              for (let q = 0; q < KW; q++) {
                const v = j * a.stride[1] + q * a.dilation[1] - left;
                if (v >= 0 && v < W) s += w.data[(c * KH + p) * KW + q] * x.data[((n * C + c) * H + h) * W + v];
              }
            }
            r.data[o++] = s;
          }
    return r;
  },
};

/** v with `axis` (of size n) reversed, as n one-wide slices concatenated backwards. */
export function flip(e: GradEmitter, v: number, axis: number, n: number): number {
  if (n === 1) return v;
  const parts: number[] = [];
  for (let i = n - 1; i >= 0; i--) parts.push(e.emit("slice", [v], { axis, start: i, end: i + 1 }));
  return e.emit("concat", parts, { axis });
}

/** x grown (pad > 0) or cut (pad < 0) by the given [lo, hi] on axes 2 and 3. */
function padOrCrop(e: GradEmitter, x: number, pads: Attrs["pads"]): number {
  let v = x;
  const grow = pads.map(([lo, hi]) => [Math.max(lo, 0), Math.max(hi, 0), 0] as const);
  if (grow.some(([lo, hi]) => lo > 0 || hi > 0)) v = e.emit("pad", [v], { pads: [[0, 0, 0], [0, 0, 0], ...grow], value: 0 });
  pads.forEach(([lo, hi], k) => {
    const size = e.type(v).shape[2 + k] as number;
    const start = Math.max(-lo, 0), end = size - Math.max(-hi, 0);
    if (start > 0 || end < size) v = e.emit("slice", [v], { axis: 2 + k, start, end });
  });
  return v;
}

export const depthwiseConv2dVjp: VjpRule<"depthwise_conv2d"> = (e, n, ct) => {
  const [x, w] = n.inputs as [number, number];
  const a = n.attrs;
  const [N, C, H, W] = e.type(x).shape as [Dim, number, number, number];
  const [, , KH, KW] = e.type(w).shape as number[] as [number, number, number, number];
  const [, , OH, OW] = e.type(ct).shape as [Dim, number, number, number];
  // dx: the cotangent with stride - 1 zeros between its pixels, convolved (stride 1) with the flipped kernel.
  const [sh, sw] = a.stride, [dh, dw] = a.dilation;
  const up = sh > 1 || sw > 1 ? e.emit("pad", [ct], { pads: [[0, 0, 0], [0, 0, 0], [0, 0, sh - 1], [0, 0, sw - 1]], value: 0 }) : ct;
  const wf = flip(e, flip(e, w, 2, KH), 3, KW);
  const lu = [(OH - 1) * sh + 1, (OW - 1) * sw + 1];
  const [[top], [left]] = a.pads as [[number, number], [number, number]];
  const dx = e.emit("depthwise_conv2d", [up, wf], {
    stride: [1, 1], dilation: a.dilation,
    pads: [[(KH - 1) * dh - top, H - lu[0]! + top], [(KW - 1) * dw - left, W - lu[1]! + left]],
  });
  // dw[c, p, q] = sum over n, i, j of window(x)[n, i, j, c, p, q] * ct[n, c, i, j].
  const cols = e.emit("window", [padOrCrop(e, x, a.pads)], { kernel: [KH, KW], stride: a.stride, dilation: a.dilation });
  const cty = e.emit("reshape", [e.emit("permute", [ct], { perm: [0, 2, 3, 1] })], { shape: [N, OH, OW, C, 1, 1] });
  const dwSum = e.emit("sum", [e.emit("mul", [cols, cty], {})], { axes: [0, 1, 2], keepdims: false });
  return [dx, e.emit("reshape", [dwSum], { shape: [C, 1, KH, KW] })];
};
