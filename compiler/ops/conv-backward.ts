// Op registry, conv2d's input gradient as a transposed convolution (issue 19 item 1): when a stride-1 window's
// cotangent is an im2col product G @ w (conv2d's d(rows), compiler/ops/conv.ts), the col2im sum over taps is the
// convolution of G's image with the flipped, transposed kernel, so the window's rule emits that conv2d composite,
// which the planner runs as one implicit-GEMM kernel (codegen/plan-conv-gather.ts) on wasm and WebGPU, instead of
// the d(rows) matmul, a permute and a slice, a pad and an add per tap. Built from primitives, so the reference
// interpreter checks it and second derivatives exist. The pad's rule then crops it by shrinking that conv's padding.

import type { Node } from "../ir/graph.js";
import type { Dim } from "../ir/types.js";
import { conv2d } from "./conv.js";
import { flip } from "./depthwise.js";
import type { GradEmitter } from "./vjp-core.js";
import type { AttrsOf } from "./types.js";

type Pair = readonly [number, number];

/** The first node behind `id` that is no reshape. */
function throughReshapes(e: GradEmitter, id: number): number {
  let v = id;
  while (e.node(v).op === "reshape") v = e.node(v).inputs[0]!;
  return v;
}

const shapeIs = (s: readonly Dim[], want: readonly Dim[]): boolean => s.length === want.length && s.every((d, k) => d === want[k]);

/**
 * The window's input cotangent as a transposed convolution, or undefined when `ct` is not reshape(G @ B) with
 * G the cotangent rows [N*OH*OW, O] (or [N, OH*OW, O]) and B [O, C*KH*KW] in f32, the stride 1 and the sizes known:
 * dxp[n, c, h, w] = sum over o, p, q of G[n, o, h - p*dh, w - q*dw] * B[o, c, p, q] = conv2d(G as [N, O, OH, OW],
 * B flipped along p and q and transposed to [C, O, KH, KW], padding (K - 1) * dilation, the same dilation).
 */
export function transposedConvGrad(e: GradEmitter, n: Node<"window">, ct: number): number | undefined {
  const { stride, dilation: [dh, dw] } = n.attrs;
  // In 16 bits the flipped kernel's concat would need a cast kernel of its own (copies cannot convert): the per-tap
  // col2im stays, whose casts fusion folds (test/precision/no-cast-kernels.test.ts).
  if (stride[0] !== 1 || stride[1] !== 1 || e.lowPrecision(n)) return undefined;
  const ops = convGradOperands(e, n, ct);
  if (!ops) return undefined;
  const { img, B, C, O, KH, KW } = ops;
  const w4 = e.emit("reshape", [B], { shape: [O, C, KH, KW] });
  const wf = e.emit("permute", [flip(e, flip(e, w4, 2, KH), 3, KW)], { perm: [1, 0, 2, 3] });
  const pad: Pair = [(KH - 1) * dh, (KW - 1) * dw];
  return conv2d(e, img, wf, undefined, { stride: [1, 1], padding: pad, dilation: [dh, dw], groups: 1 });
}

export interface ConvGradOperands {
  /** dY as the NCHW image [N, O, OH, OW]. */
  readonly img: number;
  /** The weight as the matmul read it, [O, C*KH*KW]. */
  readonly B: number;
  readonly N: Dim;
  readonly C: number;
  readonly O: number;
  readonly OH: number;
  readonly OW: number;
  readonly KH: number;
  readonly KW: number;
}

/**
 * dY's image and the weight when `ct` is reshape(G @ B) with G the cotangent rows [N*OH*OW, O] (or [N, OH*OW, O])
 * and B [O, C*KH*KW] in f32 and the sizes known, else undefined: conv2d's d(rows), any stride.
 */
export function convGradOperands(e: GradEmitter, n: Node<"window">, ct: number): ConvGradOperands | undefined {
  const [N, C, Hp, Wp] = e.type(n.inputs[0]!).shape;
  const [, OH, OW, , KH, KW] = e.type(n.id).shape as [Dim, Dim, Dim, Dim, number, number];
  if (![C, Hp, Wp, OH, OW].every((d) => typeof d === "number")) return undefined;
  // Reshapes only regroup the row-major elements (the matmul rule's and the rows' own come in a chain).
  const mm = e.node(throughReshapes(e, ct));
  if (mm.op !== "matmul" || mm.type.dtype !== "f32") return undefined;
  const [G, B] = mm.inputs as [number, number];
  const k = (C as number) * KH * KW;
  const gt = e.type(G), bt = e.type(B);
  const ms = mm.type.shape;
  if (gt.dtype !== "f32" || bt.dtype !== "f32" || bt.shape.length !== 2 || bt.shape[1] !== k || ms[ms.length - 1] !== k) return undefined;
  const O = bt.shape[0] as number;
  const P = (OH as number) * (OW as number);
  // The rows are the pixels (n, oh, ow) in order, so the product's elements line up with the window's.
  const rowsOk = typeof N === "number" ? shapeIs(gt.shape, [N * P, O]) : shapeIs(gt.shape, [N!, P, O]);
  if (!rowsOk) return undefined;
  const img = cotangentImage(e, G, [N!, O, OH as number, OW as number]);
  return { img, B, N: N!, C: C as number, O, OH: OH as number, OW: OW as number, KH, KW };
}

/** G's rows as the NCHW image [N, O, OH, OW]: the image G was permuted from (conv2d's cotangent), else a permute back. */
function cotangentImage(e: GradEmitter, G: number, img: readonly Dim[]): number {
  const p = e.node(throughReshapes(e, G));
  if (p.op === "permute" && (p.attrs as AttrsOf["permute"]).perm.join() === "0,2,3,1" && shapeIs(e.type(p.inputs[0]!).shape, img)) return p.inputs[0]!;
  const [N, O, OH, OW] = img;
  return e.emit("permute", [e.emit("reshape", [G], { shape: [N!, OH!, OW!, O!] })], { perm: [0, 3, 1, 2] });
}

/**
 * The pad's rule on a cotangent that is a stride-1 conv2d composite (transposedConvGrad's, or any with the same
 * nodes): cropping its output by the pad's [lo, hi] is the same convolution with lo and hi less padding, so the
 * border is never computed (on the MNIST CNN's 14x14 layer the full 16x16 output is 31% more work) and no slice
 * copies it. Undefined when the pattern or the amounts do not fit (the rule then slices as usual).
 */
export function croppedConvGrad(e: GradEmitter, n: Node<"pad">, ct: number): number | undefined {
  const pads = n.attrs.pads;
  if (pads.length !== 4 || pads.some((p) => p[2] !== 0) || pads.slice(0, 2).some((p) => p[0] !== 0 || p[1] !== 0)) return undefined;
  const back = e.node(ct);
  if (back.op !== "permute" || (back.attrs as AttrsOf["permute"]).perm.join() !== "0,3,1,2") return undefined;
  const nhwc = e.node(back.inputs[0]!);
  if (nhwc.op !== "reshape") return undefined;
  const mm = e.node(nhwc.inputs[0]!);
  if (mm.op !== "matmul" || mm.type.dtype !== "f32") return undefined;
  const rows = e.node(mm.inputs[0]!);
  const win = rows.op === "reshape" ? e.node(rows.inputs[0]!) : undefined;
  const xp = win?.op === "window" ? e.node(win.inputs[0]!) : undefined;
  if (!win || !xp || xp.op !== "pad") return undefined;
  const wa = win.attrs as AttrsOf["window"], pa = xp.attrs as AttrsOf["pad"];
  if (wa.stride[0] !== 1 || wa.stride[1] !== 1 || pa.value !== 0 || pa.pads.some((p) => p[2] !== 0) || pa.pads.slice(0, 2).some((p) => p[0] !== 0 || p[1] !== 0)) return undefined;
  // New padding per spatial axis: the conv's own less the pad's crop at each end.
  const np = [2, 3].map((k) => [pa.pads[k]![0] - pads[k]![0], pa.pads[k]![1] - pads[k]![1], 0] as [number, number, number]);
  if (np.some(([lo, hi]) => lo < 0 || hi < 0)) return undefined;
  const img = xp.inputs[0]!;
  const x2 = np.every(([lo, hi]) => lo === 0 && hi === 0) ? img : e.emit("pad", [img], { pads: [[0, 0, 0], [0, 0, 0], np[0]!, np[1]!], value: 0 });
  const cols = e.emit("window", [x2], wa);
  const [N, OH, OW] = e.type(cols).shape;
  const k = rows.type.shape[rows.type.shape.length - 1]!;
  const O = mm.type.shape[mm.type.shape.length - 1]!;
  if (typeof OH !== "number" || typeof OW !== "number") return undefined;
  const rs = rows.type.shape.length === 2 && typeof N === "number" ? [N * OH * OW, k] : [N!, OH * OW, k];
  const y = e.emit("matmul", [e.emit("reshape", [cols], { shape: rs }), mm.inputs[1]!], {});
  return e.emit("permute", [e.emit("reshape", [y], { shape: [N!, OH, OW, O] })], { perm: [0, 3, 1, 2] });
}
