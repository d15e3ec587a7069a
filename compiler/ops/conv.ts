// Op registry, neural-network composites: conv2d, flatten, dropout and batch_norm (pooling is in pooling.ts), built from
// pad, window and random_uniform plus the usual primitives, so they get reference semantics, gradients and
// codegen on every backend without kernels of their own; the exception is a depthwise conv (groups = channels),
// the depthwise_conv2d primitive (depthwise.ts) with a direct kernel. Argument checks (with diagnostics) are in
// compiler/lower/builtins-nn.ts; these functions assume checked shapes.

import { addDim, mulDims } from "../ir/dim-expr.js";
import type { Dim, DType, Shape, TensorType } from "../ir/types.js";
import type { PrimEmitter } from "./composites.js";
import { windowOut, windowOutDim } from "./window.js";

type Id = number | undefined;
type Pair = readonly [number, number];

export interface Conv2dOptions {
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly groups: number;
}

/** What a conv2d with these shapes and options gives, or why it is invalid (code, message, hint). */
export function conv2dShape(x: Shape, w: Shape, o: Conv2dOptions): { out: Dim[] } | { error: "K409" | "K410"; message: string; hint?: string; on: "x" | "w" } {
  const show = (s: Shape) => `[${s.join(", ")}]`;
  if (x.length !== 4) return { error: "K409", message: `conv2d needs x [N, C, H, W], got ${show(x)}`, on: "x" };
  if (w.length !== 4 || !w.every((d) => typeof d === "number")) return { error: "K409", message: `conv2d needs w [O, C / groups, KH, KW] with known sizes, got ${show(w)}`, on: "w" };
  const [N, C, H, W] = x;
  const [O, Cg, KH, KW] = w as number[];
  if (typeof C !== "number") return { error: "K409", message: `conv2d needs a known channel count, got x ${show(x)}`, hint: "N, H and W may be symbolic", on: "x" };
  if (typeof H !== "number" || typeof W !== "number") {
    // Symbolic H or W: the output is a derived dim, floor((H + 2 padding - dilation (KH - 1) - 1) / stride) + 1.
    const out = (d: Dim, k: 0 | 1, K: number) => windowOutDim(addDim(d, 2 * o.padding[k])!, K, o.stride[k], o.dilation[k]);
    const [oh, ow] = [out(H!, 0, KH), out(W!, 1, KW)];
    if ((typeof oh === "number" && oh < 1) || (typeof ow === "number" && ow < 1)) return { error: "K410", message: `conv2d: the kernel does not fit x ${show(x)}`, on: "w" };
    return { out: [N!, O, oh, ow] };
  }
  const g = o.groups;
  if (C % g !== 0 || O % g !== 0) {
    return { error: "K409", message: `conv2d with groups: ${g} needs input channels (${C}) and output channels (${O}) divisible by ${g}`, hint: "each group convolves C / groups input channels into O / groups output channels", on: C % g !== 0 ? "x" : "w" };
  }
  if (Cg !== C / g) {
    return { error: "K409", message: `conv2d: w ${show(w)} expects ${Cg} input channels per group, x has ${C} channels${g > 1 ? ` in ${g} groups (${C / g} each)` : ""}`, hint: "w is [out_channels, in_channels / groups, KH, KW], as in PyTorch", on: "w" };
  }
  const oh = windowOut(H + 2 * o.padding[0], KH, o.stride[0], o.dilation[0]);
  const ow = windowOut(W + 2 * o.padding[1], KW, o.stride[1], o.dilation[1]);
  if (oh < 1 || ow < 1) {
    return { error: "K410", message: `conv2d: the ${KH}x${KW} kernel (dilation ${o.dilation.join("x")}) does not fit the ${H}x${W} input with padding ${o.padding.join("x")}`, hint: "the output would be empty; use more padding or a smaller kernel", on: "w" };
  }
  return { out: [N, O, oh, ow] };
}

export function padSpatial(e: PrimEmitter, x: number, [ph, pw]: Pair, value: number): Id {
  if (ph === 0 && pw === 0) return x;
  return e.emit("pad", [x], { pads: [[0, 0, 0], [0, 0, 0], [ph, ph, 0], [pw, pw, 0]], value });
}

/**
 * x [N, C, H, W] * w [O, C/g, KH, KW] (+ b [O]) -> [N, O, OH, OW] as im2col: the window of each output pixel
 * becomes a row, one matmul with w as [C*KH*KW, O], then back to NCHW (groups: groupedConv).
 */
export function conv2d(e: PrimEmitter, x: number, w: number, b: number | undefined, o: Conv2dOptions): Id {
  const [N, C] = e.type(x).shape;
  const [O, , KH, KW] = e.type(w).shape as number[];
  const g = o.groups;
  const cg = (C as number) / g, og = O / g, k = cg * KH * KW;
  if (g === 1 && KH === 1 && KW === 1 && o.stride.every((s) => s === 1) && o.padding.every((p) => p === 0) && wideImage(e.type(x).shape)) return pointwiseConv(e, x, w, b);
  if (cg === 1 && og === 1 && g > 1 && directDepthwise(e.type(x))) return depthwiseConv(e, x, w, b, o);
  const xp = padSpatial(e, x, o.padding, 0);
  if (xp === undefined) return undefined;
  if (g > 1) return groupedConv(e, xp, w, b, o, N!, O, cg, og, k);
  const cols = e.emit("window", [xp], { kernel: [KH, KW], stride: o.stride, dilation: o.dilation });
  if (cols === undefined) return undefined;
  const [, OH, OW] = e.type(cols).shape as Dim[];
  // A known batch makes the rows one matrix, so dW is a single matmul too (not a batched one summed over N).
  const rows = e.emit("reshape", [cols], { shape: typeof N === "number" ? [mulDims(mulDims(N, OH!), OW!), k] : [N!, mulDims(OH!, OW!), k] });
  const wm = e.emit("reshape", [w], { shape: [O, k] });
  const wt = wm === undefined ? undefined : e.emit("permute", [wm], { perm: [1, 0] });
  let y: Id = rows === undefined || wt === undefined ? undefined : e.emit("matmul", [rows, wt], {});
  if (b !== undefined && y !== undefined) y = e.emit("add", [y, b], {});
  const nhwc = y === undefined ? undefined : e.emit("reshape", [y], { shape: [N, OH, OW, O] });
  return nhwc === undefined ? undefined : e.emit("permute", [nhwc], { perm: [0, 3, 1, 2] });
}

/**
 * Images of at least 64 pixels (or symbolic sizes) take the NCHW matmul: below that its N = H*W columns are too few
 * for the matmul kernel's panels (mobilenet_v2's 2x2 and 4x4 layers ran 1.2-1.5x slower than im2col's rows).
 */
function wideImage(s: Shape): boolean {
  const [, , H, W] = s;
  return typeof H !== "number" || typeof W !== "number" || H * W >= 64;
}

/**
 * A 1x1 conv (stride 1, no padding) is w [O, C] @ x [N, C, H*W] on the NCHW data as it is: no im2col copy, no
 * permute back; the bias add joins the matmul as its epilogue (an activation after the reshape back to 4-D stays
 * its own elementwise kernel).
 */
function pointwiseConv(e: PrimEmitter, x: number, w: number, b: number | undefined): Id {
  const [N, C, H, W] = e.type(x).shape;
  const O = e.type(w).shape[0]!;
  const xm = e.emit("reshape", [x], { shape: [N!, C!, mulDims(H!, W!)] });
  const wm = e.emit("reshape", [w], { shape: [O, C!] });
  let y: Id = xm === undefined || wm === undefined ? undefined : e.emit("matmul", [wm, xm], {});
  if (b !== undefined && y !== undefined) {
    const bc = e.emit("reshape", [b], { shape: [O, 1] });
    y = bc === undefined ? undefined : e.emit("add", [y, bc], {});
  }
  return y === undefined ? undefined : e.emit("reshape", [y], { shape: [N!, O, H!, W!] });
}

/** f32 (and, for the reference, f64) images of known size run depthwise convs as the depthwise_conv2d primitive. */
function directDepthwise(t: TensorType): boolean {
  return (t.dtype === "f32" || t.dtype === "f64") && typeof t.shape[2] === "number" && typeof t.shape[3] === "number";
}

/** One filter per channel: the depthwise_conv2d primitive on x as it is (padding as bounds), then the bias. */
function depthwiseConv(e: PrimEmitter, x: number, w: number, b: number | undefined, o: Conv2dOptions): Id {
  const [ph, pw] = o.padding;
  const y = e.emit("depthwise_conv2d", [x, w], { stride: o.stride, dilation: o.dilation, pads: [[ph, ph], [pw, pw]] });
  if (b === undefined || y === undefined) return y;
  const bc = e.emit("reshape", [b], { shape: [e.type(w).shape[0]!, 1, 1] });
  return bc === undefined ? undefined : e.emit("add", [y, bc], {});
}

/**
 * conv2d with groups > 1 in a fixed number of primitives, however many groups (mobilenet's depthwise convs have
 * hundreds): one window over all channels, then for a depthwise conv (one input and one output channel per
 * group) a product with w and a sum over the taps, else one matmul batched over the groups.
 */
function groupedConv(e: PrimEmitter, xp: number, w: number, b: number | undefined, o: Conv2dOptions, N: Dim, O: number, cg: number, og: number, k: number): Id {
  const g = o.groups;
  const cols = e.emit("window", [xp], { kernel: [e.type(w).shape[2] as number, e.type(w).shape[3] as number], stride: o.stride, dilation: o.dilation });
  if (cols === undefined) return undefined;
  const [, OH, OW] = e.type(cols).shape as Dim[];
  let y: Id;
  if (cg === 1 && og === 1) {
    const taps = e.emit("reshape", [cols], { shape: [N, OH!, OW!, g, k] });
    const wm = e.emit("reshape", [w], { shape: [g, k] });
    const prod = taps === undefined || wm === undefined ? undefined : e.emit("mul", [taps, wm], {});
    y = prod === undefined ? undefined : e.emit("sum", [prod], { axes: [4], keepdims: false });
  } else {
    // rows [N, g, OH*OW, k] @ w [g, k, og] -> [N, g, OH*OW, og] -> [N, OH, OW, O]
    const rows = e.emit("reshape", [cols], { shape: [N, mulDims(OH!, OW!), g, k] });
    const rg = rows === undefined ? undefined : e.emit("permute", [rows], { perm: [0, 2, 1, 3] });
    const wg = e.emit("reshape", [w], { shape: [g, og, k] });
    const wt = wg === undefined ? undefined : e.emit("permute", [wg], { perm: [0, 2, 1] });
    const m = rg === undefined || wt === undefined ? undefined : e.emit("matmul", [rg, wt], {});
    const back = m === undefined ? undefined : e.emit("permute", [m], { perm: [0, 2, 1, 3] });
    y = back === undefined ? undefined : e.emit("reshape", [back], { shape: [N, OH!, OW!, O] });
  }
  if (b !== undefined && y !== undefined) y = e.emit("add", [y, b], {});
  return y === undefined ? undefined : e.emit("permute", [y], { perm: [0, 3, 1, 2] });
}

/** [N, ...] -> [N, product of the rest] (the rest known at compile time). */
export function flatten(e: PrimEmitter, x: number): Id {
  const [n, ...rest] = e.type(x).shape;
  return e.emit("reshape", [x], { shape: [n, (rest as number[]).reduce((a, d) => a * d, 1)] });
}

/** Training: each element is zeroed with probability p, the rest scaled by 1 / (1 - p). `stream` picks the mask's random stream. */
export function dropout(e: PrimEmitter, x: number, p: number, stream: number): Id {
  const t = e.type(x);
  const u = e.emit("random_uniform", [], { stream, shape: t.shape });
  const drop = u === undefined ? undefined : e.emit("lt", [u, e.constant(p, "f32")], {});
  const kept = e.emit("div", [x, e.constant(1 - p, t.dtype)], {});
  return drop === undefined || kept === undefined ? undefined : e.emit("where", [drop, e.constant(0, t.dtype), kept], {});
}

export interface BatchNormOut {
  readonly y: Id;
  /** Training only: the new running mean and variance, [C] each. */
  readonly runningMean?: Id;
  readonly runningVar?: Id;
}

/**
 * x [N, C], [N, C, L] or [N, C, H, W] normalised per channel. Training (PyTorch's rules): batch mean and biased variance
 * normalise; the running stats move by `momentum` towards the batch mean and the unbiased variance. Eval: the
 * running stats normalise.
 */
export function batchNorm(
  e: PrimEmitter, x: number, gamma: number, beta: number, rm: number, rv: number,
  o: { readonly momentum: number; readonly eps: number; readonly training: boolean },
): BatchNormOut {
  const xt = e.type(x);
  const C = xt.shape[1];
  const dt: DType = xt.dtype;
  // Every axis but the channels: [0] for [N, C], [0, 2] for [N, C, L], [0, 2, 3] for [N, C, H, W].
  const axes = xt.shape.map((_, k) => k).filter((k) => k !== 1);
  const perChannel: Dim[] = [C, ...xt.shape.slice(2).map(() => 1)];
  const asChannel = (v: number) => e.emit("reshape", [v], { shape: perChannel });
  const c = (v: number) => e.constant(v, dt);
  const op = (name: "add" | "sub" | "mul" | "div", a: Id, b: Id): Id => (a === undefined || b === undefined ? undefined : e.emit(name, [a, b], {}));
  const affine = (xhat: Id) => op("add", op("mul", xhat, asChannel(gamma)), asChannel(beta));
  const invStd = (v: Id) => (v === undefined ? undefined : e.emit("rsqrt", [op("add", v, c(o.eps))!], {}));
  if (!o.training) return { y: affine(op("mul", op("sub", x, asChannel(rm)), invStd(asChannel(rv)))) };

  const mean = e.emit("mean", [x], { axes, keepdims: true });
  const xc = op("sub", x, mean);
  const variance = xc === undefined ? undefined : e.emit("mean", [op("mul", xc, xc)!], { axes, keepdims: true });
  const y = affine(op("mul", xc, invStd(variance)));
  if (mean === undefined || variance === undefined) return { y };
  // Elements per channel: a constant, or (symbolic batch) a sum of ones over the reduced axes.
  const reduced = xt.shape.map((d, k) => (axes.includes(k) ? d : 1));
  const n = reduced.every((d) => typeof d === "number")
    ? c((reduced as number[]).reduce((a, d) => a * d, 1))
    : e.emit("sum", [e.emit("broadcast_to", [c(1)], { shape: reduced })!], { axes: reduced.map((_, k) => k), keepdims: false });
  const unbiased = op("div", op("mul", variance, n), op("sub", n, c(1)));
  const toC = (v: Id) => (v === undefined ? undefined : e.emit("reshape", [v], { shape: [C] }));
  const blend = (run: number, batch: Id) => op("add", op("mul", run, c(1 - o.momentum)), op("mul", toC(batch), c(o.momentum)));
  return { y, runningMean: blend(rm, mean), runningVar: blend(rv, unbiased) };
}
