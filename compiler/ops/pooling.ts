// Op registry, pooling composites: max/avg pooling with PyTorch's ceil_mode and count_include_pad, adaptive and
// global average pooling, built from pad, window, reductions and matmul. Argument checks (with diagnostics) are
// in compiler/lower/builtins-nn.ts and builtins-layers.ts; these functions assume checked shapes.

import { addDim } from "../ir/dim-expr.js";
import type { Dim } from "../ir/types.js";
import type { PrimEmitter } from "./composites.js";

type Id = number | undefined;
type Pair = readonly [number, number];

export interface PoolOptions {
  readonly kernel: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  /** Round the output size up (PyTorch's ceil_mode): a last, partial window over the bottom/right edge. */
  readonly ceilMode: boolean;
  /** avg only: divide by the whole window, padding included (PyTorch's default), or by its real elements. */
  readonly countIncludePad: boolean;
}

/**
 * PyTorch's pooling output size along one axis (< 1 when the kernel does not fit): with ceil_mode the size rounds
 * up, but a last window that would start in the right padding is dropped.
 */
export function poolOut(size: number, kernel: number, stride: number, padding: number, ceilMode: boolean): number {
  const span = size + 2 * padding - kernel;
  if (span < 0) return 0;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
}

/**
 * How far the last window runs past the padded input (ceil_mode only), per spatial axis. Over a symbolic size it
 * is min(stride - 1, kernel - padding - 1): the window count over H + 2 padding + that is
 * floor((H + min(2 padding - kernel + stride - 1, padding - 1)) / stride) + 1, which is PyTorch's rounded-up count
 * less the window that would start in the right padding, for every H (the two cases of its rule are the two
 * sides of the min).
 */
function overhang(size: Dim, k: 0 | 1, o: PoolOptions): number {
  if (!o.ceilMode) return 0;
  if (typeof size !== "number") return Math.min(o.stride[k] - 1, o.kernel[k] - o.padding[k] - 1);
  const out = poolOut(size, o.kernel[k], o.stride[k], o.padding[k], true);
  return Math.max(0, (out - 1) * o.stride[k] + o.kernel[k] - (size + 2 * o.padding[k]));
}

function padded(e: PrimEmitter, x: number, o: PoolOptions, extra: Pair, value: number): Id {
  const [ph, pw] = o.padding;
  if (ph === 0 && pw === 0 && extra[0] === 0 && extra[1] === 0) return x;
  return e.emit("pad", [x], { pads: [[0, 0, 0], [0, 0, 0], [ph, ph + extra[0], 0], [pw, pw + extra[1], 0]], value });
}

/**
 * Each window's divisor [1, OH, OW, 1, 1, 1] as the window sums of a ones image: the real elements only
 * (count_include_pad false), or the padded image's, never the ceil_mode overhang (PyTorch's rule).
 */
function divisors(e: PrimEmitter, x: number, o: PoolOptions, extra: Pair): Id {
  const [, , H, W] = e.type(x).shape;
  const dt = e.type(x).dtype;
  const [ph, pw] = o.padding;
  // count_include_pad counts the padded image, the overhang never.
  const inc = o.countIncludePad;
  const shape: Dim[] = inc ? [1, 1, addDim(H!, 2 * ph)!, addDim(W!, 2 * pw)!] : [1, 1, H!, W!];
  const ones = e.emit("broadcast_to", [e.constant(1, dt)], { shape });
  const lo: Pair = inc ? [0, 0] : [ph, pw];
  const lifted = ones === undefined ? undefined : e.emit("pad", [ones], { pads: [[0, 0, 0], [0, 0, 0], [lo[0], lo[0] + extra[0], 0], [lo[1], lo[1] + extra[1], 0]], value: 0 });
  const win = lifted === undefined ? undefined : e.emit("window", [lifted], { kernel: o.kernel, stride: o.stride, dilation: [1, 1] });
  return win === undefined ? undefined : e.emit("sum", [win], { axes: [4, 5], keepdims: true });
}

/** max or average over each window ([N, C, H, W] -> [N, C, OH, OW]); padding is -inf for max, 0 for avg. */
export function pool2d(e: PrimEmitter, kind: "max" | "avg", x: number, o: PoolOptions): Id {
  const [, , H, W] = e.type(x).shape;
  const extra: Pair = [overhang(H!, 0, o), overhang(W!, 1, o)];
  const xp = padded(e, x, o, extra, kind === "max" ? -Infinity : 0);
  const win = xp === undefined ? undefined : e.emit("window", [xp], { kernel: o.kernel, stride: o.stride, dilation: [1, 1] });
  if (win === undefined) return undefined;
  let r: Id;
  if (kind === "max") r = firstMax(e, win, o.kernel);
  else {
    // Every window divides by kernel area unless the padding is left out or a ceil_mode window overhangs.
    const uniform = extra[0] === 0 && extra[1] === 0 && (o.countIncludePad || (o.padding[0] === 0 && o.padding[1] === 0));
    if (uniform) r = e.emit("mean", [win], { axes: [4, 5], keepdims: false });
    else {
      const s = e.emit("sum", [win], { axes: [4, 5], keepdims: true });
      const d = divisors(e, x, o, extra);
      const q = s === undefined || d === undefined ? undefined : e.emit("div", [s, d], {});
      r = q === undefined ? undefined : e.emit("reshape", [q], { shape: e.type(q).shape.slice(0, 4) });
    }
  }
  return r === undefined ? undefined : e.emit("permute", [r], { perm: [0, 3, 1, 2] });
}

/**
 * The max of each window [N, OH, OW, C, KH, KW], its taps flattened to one axis so the reduction can send the
 * gradient to the first maximum (row-major) alone, as PyTorch's max_pool2d does, instead of splitting ties.
 */
function firstMax(e: PrimEmitter, win: number, kernel: Pair): Id {
  const s = e.type(win).shape;
  const flat = e.emit("reshape", [win], { shape: [...s.slice(0, 4), kernel[0] * kernel[1]] });
  return flat === undefined ? undefined : e.emit("max", [flat], { axes: [4], keepdims: false, first: true });
}

/** PyTorch's adaptive window of output i of n over `size` inputs: [floor(i size / n), ceil((i + 1) size / n)). */
export function adaptiveRange(i: number, n: number, size: number): Pair {
  return [Math.floor((i * size) / n), Math.ceil(((i + 1) * size) / n)];
}

/**
 * The averaging matrix of one axis, [n, size] (or its transpose): row i is 1 / count over its adaptive range.
 * Built from padded constants so it folds away; adaptive pooling averages rectangles, so it is separable.
 */
function averagingMatrix(e: PrimEmitter, n: number, size: number, transpose: boolean, dt: "f32" | "f64" | "f16" | "bf16"): Id {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) {
    const [s, t] = adaptiveRange(i, n, size);
    const band = e.emit("broadcast_to", [e.constant(1 / (t - s), dt)], { shape: transpose ? [t - s, 1] : [1, t - s] });
    const pads: [number, number, number][] = [[0, 0, 0], [s, size - t, 0]];
    const row = band === undefined ? undefined : e.emit("pad", [band], { pads: transpose ? [pads[1], pads[0]] : pads, value: 0 });
    if (row === undefined) return undefined;
    rows.push(row);
  }
  return rows.length === 1 ? rows[0] : e.emit("concat", rows, { axis: transpose ? 1 : 0 });
}

/** x [N, C, H, W] (H, W known) -> [N, C, OH, OW], PyTorch's adaptive_avg_pool2d for any output size. */
export function adaptiveAvgPool2d(e: PrimEmitter, x: number, [OH, OW]: Pair): Id {
  const t = e.type(x);
  const [, , H, W] = t.shape as number[];
  if (OH === 1 && OW === 1) return e.emit("mean", [x], { axes: [2, 3], keepdims: true });
  if (H % OH === 0 && W % OW === 0) {
    const k: Pair = [H / OH, W / OW];
    return pool2d(e, "avg", x, { kernel: k, stride: k, padding: [0, 0], ceilMode: false, countIncludePad: true });
  }
  const dt = t.dtype as "f32";
  const awT = averagingMatrix(e, OW, W, true, dt);
  const ah = averagingMatrix(e, OH, H, false, dt);
  const cols = awT === undefined ? undefined : e.emit("matmul", [x, awT], {});
  return cols === undefined || ah === undefined ? undefined : e.emit("matmul", [ah, cols], {});
}
