// Op registry, composites: softmax, log_softmax, cross_entropy, one_hot, linear, layer_norm, clamp, transpose,
// built from primitives so they get reference semantics, gradients and codegen (and fusion) for free.

import type { DType, Shape, TensorType } from "../ir/types.js";
import type { AttrsOf, PrimOp } from "./types.js";

/** What composites need from lowering: emit a checked primitive (undefined after a reported error). */
export interface PrimEmitter {
  emit<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P]): number | undefined;
  constant(value: number, dtype: DType): number;
  type(id: number): TensorType;
}

type Id = number | undefined;

function all(ids: readonly Id[]): ids is number[] {
  return ids.every((i) => i !== undefined);
}

function reduce(e: PrimEmitter, op: "sum" | "mean" | "max", x: Id, axis: number): Id {
  return x === undefined ? undefined : e.emit(op, [x], { axes: [axis], keepdims: true });
}

function bin(e: PrimEmitter, op: "add" | "sub" | "mul" | "div", a: Id, b: Id): Id {
  return a === undefined || b === undefined ? undefined : e.emit(op, [a, b], {});
}

function un(e: PrimEmitter, op: "exp" | "log" | "neg" | "rsqrt", a: Id): Id {
  return a === undefined ? undefined : e.emit(op, [a], {});
}

/** softmax along `axis` (normalised), shifted by the row max for stability. */
/** The row max that keeps exp() in range; softmax does not depend on it, so no gradient goes through it. */
function stableShift(e: PrimEmitter, x: number, axis: number): Id {
  const m = reduce(e, "max", x, axis);
  return m === undefined ? undefined : e.emit("stop_gradient", [m], {});
}

export function softmax(e: PrimEmitter, x: number, axis: number): Id {
  const m = stableShift(e, x, axis);
  const ex = un(e, "exp", bin(e, "sub", x, m));
  return bin(e, "div", ex, reduce(e, "sum", ex, axis));
}

export function logSoftmax(e: PrimEmitter, x: number, axis: number): Id {
  const shifted = bin(e, "sub", x, stableShift(e, x, axis));
  const lse = un(e, "log", reduce(e, "sum", un(e, "exp", shifted), axis));
  return bin(e, "sub", shifted, lse);
}

/** labels (integer, any shape S) -> f32[S..., n] with ones at the label positions. */
export function oneHot(e: PrimEmitter, labels: number, n: number): Id {
  const shape: Shape = [...e.type(labels).shape, 1];
  const col = e.emit("reshape", [labels], { shape });
  const iota = e.emit("iota", [], { n, dtype: "i32" });
  const lab = col === undefined ? undefined : e.type(col).dtype === "i32" ? col : e.emit("cast", [col], { to: "i32" });
  if (!all([lab, iota])) return undefined;
  const hit = e.emit("eq", [lab!, iota!], {});
  return hit === undefined ? undefined : e.emit("cast", [hit], { to: "f32" });
}

/** Mean over the batch of -log_softmax(logits)[label]; logits [N, C] with C known at compile time. */
export function crossEntropy(e: PrimEmitter, logits: number, labels: number, classes: number): Id {
  const lsm = logSoftmax(e, logits, e.type(logits).shape.length - 1);
  const oh = oneHot(e, labels, classes);
  const picked = bin(e, "mul", oh, lsm);
  const perRow = picked === undefined ? undefined : e.emit("sum", [picked], { axes: [e.type(picked).shape.length - 1], keepdims: false });
  const mean = perRow === undefined ? undefined : e.emit("mean", [perRow], { axes: e.type(perRow).shape.map((_, k) => k), keepdims: false });
  return un(e, "neg", mean);
}

export function linear(e: PrimEmitter, x: number, w: number, b: number | undefined): Id {
  const y = e.emit("matmul", [x, w], {});
  return b === undefined ? y : bin(e, "add", y, b);
}

/** Normalises over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta (biased variance, like PyTorch). */
export function layerNorm(e: PrimEmitter, x: number, gamma: number | undefined, beta: number | undefined, eps: number): Id {
  const axis = e.type(x).shape.length - 1;
  const dt = e.type(x).dtype;
  const xc = bin(e, "sub", x, reduce(e, "mean", x, axis));
  const variance = reduce(e, "mean", bin(e, "mul", xc, xc), axis);
  const inv = un(e, "rsqrt", bin(e, "add", variance, e.constant(eps, dt)));
  let y = bin(e, "mul", xc, inv);
  if (gamma !== undefined) y = bin(e, "mul", y, gamma);
  if (beta !== undefined) y = bin(e, "add", y, beta);
  return y;
}

/**
 * torch.clamp: lo where x < lo, then hi where above hi; either bound may be absent (one-sided clamp). Selects,
 * not maximum/minimum, so at x == bound the whole gradient goes to x, as torch gives it (maximum splits ties).
 */
export function clamp(e: PrimEmitter, x: number, lo: number | undefined, hi: number | undefined): Id {
  const below = lo === undefined ? undefined : e.emit("lt", [x, lo], {});
  const a = lo === undefined ? x : below === undefined ? undefined : e.emit("where", [below, lo, x], {});
  if (a === undefined || hi === undefined) return a;
  const above = e.emit("gt", [a, hi], {});
  return above === undefined ? undefined : e.emit("where", [above, hi, a], {});
}
