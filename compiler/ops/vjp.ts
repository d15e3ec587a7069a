// Op registry, gradients: the vector-Jacobian rule of every primitive, written as graph-building code over
// primitives (so gradients are themselves differentiable: second derivatives come for free). The table is a
// mapped type over PrimOp; ops without a derivative say so explicitly (`NO_GRAD`), with the reason.

import type { Node } from "../ir/graph.js";
import { sameShape, type Dim, type DType, type Shape, type TensorType } from "../ir/types.js";
import type { AttrsOf, PrimOp } from "./types.js";
import { MATH_VJP_RULES } from "./vjp-math.js";
import { depthwiseConv2dVjp } from "./depthwise.js";
import { croppedConvGrad, transposedConvGrad } from "./conv-backward.js";
import { phaseConvGrad } from "./conv-backward-phase.js";
import { unbroadcast, zerosLike, type GradEmitter, type VjpRule } from "./vjp-core.js";

export { unbroadcast, zerosLike, type GradEmitter, type VjpRule };
import { addDim, dimDiff, mulDims } from "../ir/dim-expr.js";



/** An op with no derivative; `why` appears in the diagnostic when a gradient would have to pass through it. */
export interface NoGrad {
  readonly noGrad: string;
}

const none = (why: string): NoGrad => ({ noGrad: why });

export function isNoGrad(x: unknown): x is NoGrad {
  return typeof x === "object" && x !== null && "noGrad" in x;
}

// ---- helpers ----

const bin = (e: GradEmitter, op: "add" | "sub" | "mul" | "div", a: number, b: number) => e.emit(op, [a, b], {});
const c = (e: GradEmitter, v: number, like: number) => e.constant(v, e.type(like).dtype);



/** where(cond, g, 0) in g's shape. */
function mask(e: GradEmitter, cond: number, g: number): number {
  return e.emit("where", [cond, g, c(e, 0, g)], {});
}

/** Inputs to an elementwise node, the node's output, and the cotangent unbroadcast to each input. */
function ew(e: GradEmitter, n: Node, ...gs: (number | undefined)[]): (number | undefined)[] {
  return gs.map((g, i) => (g === undefined ? undefined : unbroadcast(e, g, e.type(n.inputs[i]).shape)));
}

/** Puts the reduced axes back (size 1) so the cotangent broadcasts against the input. */
function keepdims(e: GradEmitter, n: Node<"sum" | "mean" | "max" | "min">, g: number): number {
  if (n.attrs.keepdims) return g;
  const x = e.type(n.inputs[0]);
  return e.emit("reshape", [g], { shape: x.shape.map((d, k) => (n.attrs.axes.includes(k) ? 1 : d)) });
}

/**
 * Number of reduced elements as a scalar of the input's dtype: a constant, or with symbolic dims a dim_size the
 * runtime writes from the call's dims (a sum over a broadcast of ones wrote and read a full-size tensor).
 */
function reducedCount(e: GradEmitter, n: Node<"mean">): number {
  const x = e.type(n.inputs[0]);
  const dims = n.attrs.axes.map((k) => x.shape[k]);
  const known = dims.reduce<number>((a, d) => (typeof d === "number" ? a * d : a), 1);
  const syms = dims.filter((d): d is string => typeof d === "string");
  if (syms.length === 0) return e.constant(known, x.dtype);
  return e.emit("dim_size", [], { dims: known === 1 ? syms : [known, ...syms], dtype: x.dtype });
}

/**
 * max/min: the cotangent goes to the elements equal to the result, split evenly between ties; with `first`, to
 * the first of them alone (its index from argmax, of -x for min; NaN counts as the extreme).
 */
const chooser: VjpRule<"max" | "min"> = (e, n, ct) => {
  const x = n.inputs[0];
  if (n.attrs.first) {
    const axis = n.attrs.axes[0]!;
    const t = e.type(x);
    const size = t.shape[axis] as number;
    const at = e.emit("argmax", [n.op === "min" ? e.emit("neg", [x], {}) : x], { axis, keepdims: true });
    const pos = e.emit("reshape", [e.emit("iota", [], { n: size, dtype: "i32" })], { shape: t.shape.map((_, k) => (k === axis ? size : 1)) });
    const g = e.emit("broadcast_to", [keepdims(e, n, ct)], { shape: t.shape });
    return [mask(e, e.emit("eq", [pos, at], {}), g)];
  }
  const outK = keepdims(e, n, n.id);
  const hit = e.emit("cast", [e.emit("eq", [x, outK], {})], { to: e.type(x).dtype });
  const ties = e.emit("sum", [hit], { axes: n.attrs.axes, keepdims: true });
  return [bin(e, "mul", hit, bin(e, "div", keepdims(e, n, ct), ties))];
};

/**
 * maximum/minimum as PyTorch differentiates them: the winner takes the cotangent, a tie splits it evenly, and
 * when either operand is NaN (the result is NaN) both get all of it.
 */
function splitTies(e: GradEmitter, n: Node, ct: number, wins: "gt" | "lt", loses: "gt" | "lt"): (number | undefined)[] {
  const [a, b] = n.inputs;
  const tie = e.emit("eq", [a, b], {});
  const half = bin(e, "mul", ct, c(e, 0.5, ct));
  const side = (win: number, lose: number) => e.emit("where", [win, ct, e.emit("where", [tie, half, e.emit("where", [lose, c(e, 0, ct), ct], {})], {})], {});
  const aWins = e.emit(wins, [a, b], {}), bWins = e.emit(loses, [a, b], {});
  return ew(e, n, side(aWins, bWins), side(bWins, aWins));
}

function swapLast(e: GradEmitter, x: number): number {
  const r = e.type(x).shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return e.emit("permute", [x], { perm });
}

/** matmul: dA = G @ Bᵀ, dB = Aᵀ @ G, with 1-D operands promoted and broadcast batch dims summed away. */
const matmulVjp: VjpRule<"matmul"> = (e, n, ct) => {
  const [a, b] = n.inputs;
  const at = e.type(a).shape, bt = e.type(b).shape;
  const a2 = at.length === 1 ? e.emit("reshape", [a], { shape: [1, at[0]] }) : a;
  const b2 = bt.length === 1 ? e.emit("reshape", [b], { shape: [bt[0], 1] }) : b;
  const os = e.type(n.id).shape;
  const g2Shape: Shape = [...os.slice(0, os.length - (at.length > 1 ? 1 : 0) - (bt.length > 1 ? 1 : 0)), at.length > 1 ? at[at.length - 2] : 1, bt.length > 1 ? bt[bt.length - 1] : 1];
  // f16/bf16 operands (an f32 result): the cotangent is rounded to the operands' dtype so the backward matmuls
  // are mixed-precision too, and each gradient is rounded back to its operand's dtype.
  const low = e.type(a).dtype;
  const mixed = low !== e.type(n.id).dtype;
  const g2 = e.emit("reshape", [mixed ? e.emit("cast", [ct], { to: low }) : ct], { shape: g2Shape });
  const da = e.emit("matmul", [g2, swapLast(e, b2)], {});
  const db = e.emit("matmul", [swapLast(e, a2), g2], {});
  return [unbroadcast(e, da, at.length === 1 ? [1, at[0]] : at), unbroadcast(e, db, bt.length === 1 ? [bt[0], 1] : bt)].map((g, i) => {
    const r = e.emit("reshape", [g], { shape: i === 0 ? at : bt });
    return mixed ? e.emit("cast", [r], { to: low }) : r;
  });
};

/** Slice attrs with `step` only when it is not 1 (unit slices keep their IR text and CSE keys). */
export function sliceAttrs(axis: number, start: number, end: Dim, step = 1): AttrsOf["slice"] {
  return step === 1 ? { axis, start, end } : { axis, start, end, step };
}

/** Cuts axes 2 and 3 of g back to H and W where g's size there differs (a strided symbolic window's padding). */
function fitSymbolic(e: GradEmitter, g: number, H: Dim, W: Dim): number {
  let r = g;
  ([[2, H], [3, W]] as const).forEach(([axis, size]) => {
    if (e.type(r).shape[axis] !== size) r = e.emit("slice", [r], sliceAttrs(axis, 0, size));
  });
  return r;
}

/**
 * col2im: tap (p, q) of the window read x[n, c, i*sh + p*dh, j*sw + q*dw], so its cotangent slice (permuted to
 * [N, C, OH, OW]) goes back by padding: p*dh zeros before, sh - 1 between neighbours, the rest after. Built from
 * primitives only, so gradients of gradients exist.
 */
const windowVjp: VjpRule<"window"> = (e, n, ct) => {
  const [N, C, H, W] = e.type(n.inputs[0]).shape;
  const [, OH, OW, , KH, KW] = e.type(n.id).shape as [Dim, Dim, Dim, Dim, number, number];
  const { stride: [sh, sw], dilation: [dh, dw] } = n.attrs;
  // Windows that tile x without overlap (stride = kernel, pooling's default) touch each pixel at most once: the
  // cotangent goes back by one permute to [N, C, OH, KH, OW, KW] = [N, C, OH*KH, OW*KW], zeros for the rows and
  // columns no window covers. One copy instead of a slice, a pad and an add per tap.
  if (sh === KH && sw === KW && dh === 1 && dw === 1) {
    const back = e.emit("reshape", [e.emit("permute", [ct], { perm: [0, 3, 1, 4, 2, 5] })], { shape: [N, C, mulDims(OH, KH), mulDims(OW, KW)] });
    // A symbolic axis (OH = "H/2") gets K - 1 zeros, at least the rest, and is cut back to H (fitSymbolic).
    const rest = (size: Dim, out: Dim, K: number) => (typeof size === "number" && typeof out === "number" ? size - out * K : K - 1);
    const [restH, restW] = [rest(H!, OH, KH), rest(W!, OW, KW)];
    const g = restH === 0 && restW === 0 ? back : e.emit("pad", [back], { pads: [[0, 0, 0], [0, 0, 0], [0, restH, 0], [0, restW, 0]], value: 0 });
    return [fitSymbolic(e, g, H!, W!)];
  }
  // conv2d's d(rows) at stride 1: one transposed convolution instead of the per-tap pads below.
  const tc = transposedConvGrad(e, n, ct);
  if (tc !== undefined) return [tc];
  // At stride > 1: s*s stride-1 convolutions, one per output phase. Behind a spatial pad (conv2d's padding) the
  // gradient of the pad's input is computed and handed back padded, which the pad's rule takes apart again.
  const src = e.node(n.inputs[0]);
  const pa = src.op === "pad" ? (src.attrs as AttrsOf["pad"]).pads : undefined;
  const convPad = pa !== undefined && pa.every((p) => p[2] === 0) && pa.slice(0, 2).every((p) => p[0] === 0 && p[1] === 0);
  const inner = convPad ? e.type(src.inputs[0]).shape : [N, C, H, W];
  if (typeof inner[2] === "number" && typeof inner[3] === "number") {
    const ph = phaseConvGrad(e, n, ct, convPad ? [pa[2][0], pa[3][0]] : [0, 0], inner[2], inner[3]);
    if (ph !== undefined) return [convPad ? e.emit("pad", [ph], { pads: pa, value: 0 }) : ph];
  }
  // Taps first: each tap's cotangent is then one contiguous block.
  const taps = e.emit("reshape", [e.emit("permute", [ct], { perm: [4, 5, 0, 3, 1, 2] })], { shape: [KH * KW, N, C, OH, OW] });
  let acc: number | undefined;
  for (let p = 0; p < KH; p++) {
    for (let q = 0; q < KW; q++) {
      const k = p * KW + q;
      const one = KH * KW === 1 ? taps : e.emit("slice", [taps], sliceAttrs(0, k, k + 1));
      const tap = e.emit("reshape", [one], { shape: [N, C, OH, OW] });
      // A symbolic axis at stride 1: the zeros after are size - out - lo. At stride s > 1 the rest after the last
      // tap is 0 .. s - 1 (floor division), so pad span - lo + s - 1, enough for every size, and cut back to size.
      const back = (lo: number, size: Dim, out: Dim, s: number, span: number): [number, number, number] =>
        typeof size === "number" && typeof out === "number" ? [lo, size - lo - (out - 1) * s - 1, s - 1] : s === 1 ? [lo, dimDiff(size, out)! - lo, 0] : [lo, span - lo + s - 1, s - 1];
      const padded = e.emit("pad", [tap], { pads: [[0, 0, 0], [0, 0, 0], back(p * dh, H, OH, sh, dh * (KH - 1)), back(q * dw, W, OW, sw, dw * (KW - 1))], value: 0 });
      const g = fitSymbolic(e, padded, H!, W!);
      acc = acc === undefined ? g : bin(e, "add", acc, g);
    }
  }
  return [acc!];
};

export const VJP_RULES: { readonly [P in PrimOp]: VjpRule<P> | NoGrad } = {
  neg: (e, _n, ct) => [e.emit("neg", [ct], {})],
  exp: (e, n, ct) => [bin(e, "mul", ct, n.id)],
  log: (e, n, ct) => [bin(e, "div", ct, n.inputs[0])],
  sqrt: (e, n, ct) => [bin(e, "div", ct, bin(e, "mul", c(e, 2, ct), n.id))],
  // d/dx x^(-1/2) = -1/2 * y^3 (PyTorch's form: at x = -0, y = -inf and the gradient is +inf, not -inf)
  rsqrt: (e, n, ct) => [bin(e, "mul", ct, bin(e, "mul", c(e, -0.5, ct), bin(e, "mul", bin(e, "mul", n.id, n.id), n.id)))],
  abs: (e, n, ct) => {
    const x = n.inputs[0];
    const pos = e.emit("cast", [e.emit("gt", [x, c(e, 0, x)], {})], { to: e.type(x).dtype });
    const neg = e.emit("cast", [e.emit("lt", [x, c(e, 0, x)], {})], { to: e.type(x).dtype });
    return [bin(e, "mul", ct, bin(e, "sub", pos, neg))];
  },
  tanh: (e, n, ct) => [bin(e, "mul", ct, bin(e, "sub", c(e, 1, ct), bin(e, "mul", n.id, n.id)))],
  sigmoid: (e, n, ct) => [bin(e, "mul", ct, bin(e, "mul", n.id, bin(e, "sub", c(e, 1, ct), n.id)))],
  // Zero where x <= 0, so a NaN input passes its gradient through (PyTorch's threshold_backward).
  relu: (e, n, ct) => [e.emit("where", [e.emit("le", [n.inputs[0], c(e, 0, ct)], {}), c(e, 0, ct), ct], {})],
  add: (e, n, ct) => ew(e, n, ct, ct),
  sub: (e, n, ct) => ew(e, n, ct, e.emit("neg", [ct], {})),
  mul: (e, n, ct) => ew(e, n, bin(e, "mul", ct, n.inputs[1]), bin(e, "mul", ct, n.inputs[0])),
  div: (e, n, ct) => {
    const ga = bin(e, "div", ct, n.inputs[1]);
    return ew(e, n, ga, e.emit("neg", [bin(e, "mul", ga, n.id)], {}));
  },
  // PyTorch's pow_backward: d/da = b a^(b-1), 0 where b == 0 (so 0^0 has gradient 0, not NaN); d/db = a^b log a,
  // 0 where a == 0 and b >= 0 (the limit), -inf for 0^(b<0).
  pow: (e, n, ct) => {
    const [a, b] = n.inputs;
    const zero = (x: number) => e.emit("eq", [x, c(e, 0, x)], {});
    const slope = bin(e, "mul", b, e.emit("pow", [a, bin(e, "sub", b, c(e, 1, b))], {}));
    const da = bin(e, "mul", ct, e.emit("where", [zero(b), c(e, 0, b), slope], {}));
    const logArg = e.emit("where", [zero(a), e.emit("where", [e.emit("ge", [b, c(e, 0, b)], {}), c(e, 1, a), a], {}), a], {});
    const db = bin(e, "mul", ct, bin(e, "mul", n.id, e.emit("log", [logArg], {})));
    return ew(e, n, da, db);
  },
  maximum: (e, n, ct) => splitTies(e, n, ct, "gt", "lt"),
  minimum: (e, n, ct) => splitTies(e, n, ct, "lt", "gt"),
  ...MATH_VJP_RULES,
  eq: none("a comparison is piecewise constant"),
  ne: none("a comparison is piecewise constant"),
  lt: none("a comparison is piecewise constant"),
  le: none("a comparison is piecewise constant"),
  gt: none("a comparison is piecewise constant"),
  ge: none("a comparison is piecewise constant"),
  where: (e, n, ct) => {
    const cond = n.inputs[0];
    return ew(e, n, undefined, mask(e, cond, ct), e.emit("where", [cond, c(e, 0, ct), ct], {}));
  },
  // Float-to-float casts pass the gradient through; the autodiff pass rejects casts to integer types on a
  // differentiated path before this rule is reached.
  cast: (e, n, ct) => [e.emit("cast", [ct], { to: e.type(n.inputs[0]).dtype })],
  sum: (e, n, ct) => [e.emit("broadcast_to", [keepdims(e, n, ct)], { shape: e.type(n.inputs[0]).shape })],
  mean: (e, n, ct) => [bin(e, "div", e.emit("broadcast_to", [keepdims(e, n, ct)], { shape: e.type(n.inputs[0]).shape }), reducedCount(e, n))],
  max: chooser as VjpRule<"max">,
  min: chooser as VjpRule<"min">,
  matmul: matmulVjp,
  reshape: (e, n, ct) => [e.emit("reshape", [ct], { shape: e.type(n.inputs[0]).shape })],
  permute: (e, n, ct) => {
    const inv: number[] = [];
    n.attrs.perm.forEach((p, k) => (inv[p] = k));
    return [e.emit("permute", [ct], { perm: inv })];
  },
  broadcast_to: (e, n, ct) => [unbroadcast(e, ct, e.type(n.inputs[0]).shape)],
  slice: (e, n, ct) => {
    const x = e.type(n.inputs[0]);
    const { axis, start, end } = n.attrs;
    const step = n.attrs.step ?? 1;
    if (typeof x.shape[axis] === "number" && typeof end !== "number") {
      // A known axis cut to a symbolic end (pos[0:T]): the cotangent's rows added at positions start.. of `size`
      // zero rows (scatter_add along axis 0, so the axis goes to the front and back), as an embedding's gradient.
      // The call's check that T fits the axis keeps every position inside; its own gradient is a gather.
      const size = x.shape[axis] as number;
      const r = x.shape.length;
      const toFront = [axis, ...[...Array(r).keys()].filter((k) => k !== axis)];
      const back = toFront.map((_, k) => toFront.indexOf(k));
      const rows = axis === 0 ? ct : e.emit("permute", [ct], { perm: toFront });
      const iota = e.emit("iota", [], { n: e.type(n.id).shape[axis]!, dtype: "i32" });
      const ids = start === 0 ? iota : e.emit("add", [iota, e.constant(start, "i32")], {});
      const g = e.emit("scatter_add", [ids, rows], { n: size });
      return [axis === 0 ? g : e.emit("permute", [g], { perm: back })];
    }
    if (typeof x.shape[axis] !== "number" || typeof end !== "number") {
      // A symbolic axis: back into place with zeros before and after (pad's sizes add to the axis').
      const after = dimDiff(x.shape[axis]!, end)!;
      return [e.emit("pad", [ct], { pads: x.shape.map((_, k) => (k === axis ? [start, after, 0] : [0, 0, 0])), value: 0 })];
    }
    const size = x.shape[axis] as number;
    if (step > 1) {
      // The picked elements go back to their places with step - 1 zeros between them.
      const last = start + ((e.type(n.id).shape[axis] as number) - 1) * step;
      return [e.emit("pad", [ct], { pads: x.shape.map((_, k) => (k === axis ? [start, size - last - 1, step - 1] : [0, 0, 0])), value: 0 })];
    }
    const parts: number[] = [];
    const zeros = (len: number) => e.emit("broadcast_to", [e.constant(0, x.dtype)], { shape: x.shape.map((d, k) => (k === axis ? len : d)) });
    if (start > 0) parts.push(zeros(start));
    parts.push(ct);
    if (end < size) parts.push(zeros(size - end));
    return [parts.length === 1 ? ct : e.emit("concat", parts, { axis })];
  },
  concat: (e, n, ct) => {
    let off = 0;
    return n.inputs.map((id) => {
      const len = e.type(id).shape[n.attrs.axis] as number;
      const g = e.emit("slice", [ct], { axis: n.attrs.axis, start: off, end: off + len });
      off += len;
      return g;
    });
  },
  pad: (e, n, ct) => {
    // The cotangent of conv2d's padded input is a transposed convolution: computed cropped, not sliced.
    const cropped = croppedConvGrad(e, n, ct);
    if (cropped !== undefined) return [cropped];
    // The window's rule handed back the gradient of x padded (conv-backward-phase.ts): the slice would undo the pad.
    const back = e.node(ct);
    if (back.op === "pad" && JSON.stringify((back.attrs as AttrsOf["pad"]).pads) === JSON.stringify(n.attrs.pads) && sameShape(e.type(back.inputs[0]).shape, e.type(n.inputs[0]).shape)) return [back.inputs[0]];
    const x = e.type(n.inputs[0]);
    let g = ct;
    n.attrs.pads.forEach(([lo, hi, interior], axis) => {
      if (lo === 0 && hi === 0 && interior === 0) return;
      const d = x.shape[axis]!;
      // A symbolic axis is padded without interior (pad's rule): its elements are [lo, lo + d).
      const end = typeof d === "number" ? lo + (d - 1) * (interior + 1) + 1 : addDim(d, lo)!;
      g = e.emit("slice", [g], sliceAttrs(axis, lo, end, interior + 1));
    });
    return [g];
  },
  window: windowVjp,
  depthwise_conv2d: depthwiseConv2dVjp,
  // The table's gradient scatters the output rows back to the ids they came from (only those rows); ids have none.
  gather: (e, n, ct) => [e.emit("scatter_add", [n.inputs[1]!, ct], { n: e.type(n.inputs[0]!).shape[0]! }), undefined],
  scatter_add: (e, n, ct) => [undefined, e.emit("gather", [ct, n.inputs[0]!], {})],
  // Every replica's sum depends on every replica's x: x_r's gradient is the sum of the cotangents of all copies.
  all_reduce: (e, _n, ct) => [e.emit("all_reduce", [ct], {})],
  iota: none("iota has no inputs"),
  random_uniform: none("random values do not depend on any input"),
  dim_size: none("a size has no inputs"),
  stop_gradient: none("stop_gradient blocks gradients by definition"),
  argmax: none("argmax is piecewise constant: its integer result has no derivative"),
  all_finite: none("all_finite's bool result has no derivative"),
  input: none("inputs are leaves"),
  param: none("params are leaves"),
  const: none("constants are leaves"),
  gradient: none("gradient markers are expanded before differentiation"),
  cotangent: none("placeholders are leaves"),
};
