// Op registry, convolutions built on conv2d: conv1d (conv2d with H = 1) and conv_transpose2d (PyTorch's
// semantics, as zero insertion between the input's pixels, padding or cropping, and a conv2d with the kernel
// flipped and its channel axes swapped). Argument checks are in compiler/lower/builtins-layers.ts.

import { conv2d, type Conv2dOptions } from "./conv.js";
import type { PrimEmitter } from "./composites.js";
import { sliceAttrs } from "./vjp.js";
import { windowOut } from "./window.js";

type Id = number | undefined;
type Pair = readonly [number, number];

export interface Conv1dOptions {
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
}

/** Output length of a conv1d over a known length (< 1 when the kernel does not fit). */
export function conv1dOut(L: number, K: number, o: Conv1dOptions): number {
  return windowOut(L + 2 * o.padding, K, o.stride, o.dilation);
}

/** x [N, C, L] * w [O, C / groups, K] (+ b [O]) -> [N, O, OL], as conv2d on [N, C, 1, L]. */
export function conv1d(e: PrimEmitter, x: number, w: number, b: number | undefined, o: Conv1dOptions): Id {
  const [N, C, L] = e.type(x).shape;
  const [O, Cg, K] = e.type(w).shape;
  const x4 = e.emit("reshape", [x], { shape: [N, C, 1, L] });
  const w4 = e.emit("reshape", [w], { shape: [O, Cg, 1, K] });
  if (x4 === undefined || w4 === undefined) return undefined;
  const y = conv2d(e, x4, w4, b, { stride: [1, o.stride], padding: [0, o.padding], dilation: [1, o.dilation], groups: o.groups });
  if (y === undefined) return undefined;
  const [, , , OL] = e.type(y).shape;
  return e.emit("reshape", [y], { shape: [N, O, OL] });
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  readonly outputPadding: Pair;
}

/** PyTorch's output size along one axis: (H - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1. */
export function convTransposeOut(size: number, K: number, k: 0 | 1, o: ConvTranspose2dOptions): number {
  return (size - 1) * o.stride[k] - 2 * o.padding[k] + o.dilation[k] * (K - 1) + o.outputPadding[k] + 1;
}

/** v with `axis` (of size n) reversed, as n one-wide slices concatenated backwards. */
function flip(e: PrimEmitter, v: Id, axis: number, n: number): Id {
  if (v === undefined || n === 1) return v;
  const parts: number[] = [];
  for (let i = n - 1; i >= 0; i--) {
    const s = e.emit("slice", [v], sliceAttrs(axis, i, i + 1));
    if (s === undefined) return undefined;
    parts.push(s);
  }
  return e.emit("concat", parts, { axis });
}

/**
 * x [N, Cin, H, W] with w [Cin, Cout / groups, KH, KW] (+ b [Cout]) -> [N, Cout, OH, OW]: the gradient of a
 * conv2d with respect to its input. stride - 1 zeros go between the input's pixels; each side gets
 * dilation (K - 1) - padding more (a negative amount crops), the bottom/right output_padding more; then a
 * stride-1 conv2d with the kernel flipped and [Cin, Cout] swapped per group.
 */
export function convTranspose2d(e: PrimEmitter, x: number, w: number, b: number | undefined, o: ConvTranspose2dOptions): Id {
  const [, Cin, H, W] = e.type(x).shape as number[];
  const [, CoutG, KH, KW] = e.type(w).shape as number[];
  const g = o.groups;
  const lo = [0, 1].map((k) => o.dilation[k] * ([KH, KW][k] - 1) - o.padding[k]);
  const hi = [0, 1].map((k) => lo[k] + o.outputPadding[k]);
  const z = e.emit("pad", [x], {
    pads: [[0, 0, 0], [0, 0, 0], [Math.max(lo[0], 0), Math.max(hi[0], 0), o.stride[0] - 1], [Math.max(lo[1], 0), Math.max(hi[1], 0), o.stride[1] - 1]],
    value: 0,
  });
  let cropped: Id = z;
  [H, W].forEach((size, k) => {
    if (cropped === undefined || (lo[k] >= 0 && hi[k] >= 0)) return;
    const full = (size - 1) * o.stride[k] + 1 + Math.max(lo[k], 0) + Math.max(hi[k], 0);
    cropped = e.emit("slice", [cropped], sliceAttrs(2 + k, Math.max(-lo[k], 0), full - Math.max(-hi[k], 0)));
  });
  // w as [groups, Cin / g, Cout / g, KH, KW] -> [Cout, Cin / g, KH, KW], flipped in both spatial axes.
  const w5 = e.emit("reshape", [w], { shape: [g, Cin / g, CoutG, KH, KW] });
  const wp = w5 === undefined ? undefined : e.emit("permute", [w5], { perm: [0, 2, 1, 3, 4] });
  const w4 = wp === undefined ? undefined : e.emit("reshape", [wp], { shape: [g * CoutG, Cin / g, KH, KW] });
  const wf = flip(e, flip(e, w4, 2, KH), 3, KW);
  if (cropped === undefined || wf === undefined) return undefined;
  return conv2d(e, cropped, wf, b, { stride: [1, 1], padding: [0, 0], dilation: o.dilation, groups: g });
}
