// Op registry, math composites of issue 16 (gelu, silu, softplus, logsumexp, var/std, tril/triu, cumsum, prod,
// arange, topk), built from primitives so they get reference semantics, gradients, codegen and fusion for free.
// Each follows PyTorch's definition, including its numerically stable form; the lowering checks arguments.

import type { Dim, DType, Shape } from "../ir/types.js";
import { addDim } from "../ir/dim-expr.js";
import type { PrimEmitter } from "./composites.js";
import type { AttrsOf, PrimOp } from "./types.js";
import { sliceAttrs } from "./vjp.js";

type Id = number | undefined;

/** Emits op when every input exists (an earlier error leaves undefined, and one error gives one diagnostic). */
function op<P extends PrimOp>(e: PrimEmitter, p: P, ins: readonly Id[], attrs: AttrsOf[P]): Id {
  return ins.every((i) => i !== undefined) ? e.emit(p, ins as number[], attrs) : undefined;
}

const k = (e: PrimEmitter, v: number, like: number): number => e.constant(v, e.type(like).dtype);

/** gelu(x) = x/2 * (1 + erf(x / sqrt 2)); approximate: 0.5x(1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch's 'tanh'. */
export function gelu(e: PrimEmitter, x: number, approximate: boolean): Id {
  let inner: Id;
  if (approximate) {
    const x3 = op(e, "mul", [op(e, "mul", [x, x], {}), x], {});
    const arg = op(e, "mul", [k(e, Math.sqrt(2 / Math.PI), x), op(e, "add", [x, op(e, "mul", [k(e, 0.044715, x), x3], {})], {})], {});
    inner = op(e, "tanh", [arg], {});
  } else {
    inner = op(e, "erf", [op(e, "mul", [x, k(e, Math.SQRT1_2, x)], {})], {});
  }
  return op(e, "mul", [op(e, "mul", [x, k(e, 0.5, x)], {}), op(e, "add", [k(e, 1, x), inner], {})], {});
}

export function silu(e: PrimEmitter, x: number): Id {
  return op(e, "mul", [x, op(e, "sigmoid", [x], {})], {});
}

/**
 * torch's softplus: log1p(exp(beta x)) / beta, and x itself where beta x > threshold. exp's argument is clamped
 * at the threshold so the branch not taken never overflows (its inf would turn a zero gradient into NaN).
 */
export function softplus(e: PrimEmitter, x: number, beta: number, threshold: number): Id {
  const bx = beta === 1 ? x : op(e, "mul", [x, k(e, beta, x)], {});
  const safe = op(e, "minimum", [bx, k(e, threshold, x)], {});
  let soft = op(e, "log1p", [op(e, "exp", [safe], {})], {});
  if (beta !== 1) soft = op(e, "div", [soft, k(e, beta, x)], {});
  return op(e, "where", [op(e, "gt", [bx, k(e, threshold, x)], {}), x, soft], {});
}

/**
 * log(sum(exp(x))) over `axes`, shifted by the max (with no gradient: the result does not depend on it). An
 * infinite max is replaced by 0, as torch does, so a row of -inf gives -inf and a row with +inf gives +inf.
 */
export function logsumexp(e: PrimEmitter, x: number, axes: readonly number[], keepdims: boolean): Id {
  const m = op(e, "stop_gradient", [op(e, "max", [x], { axes, keepdims: true })], {});
  const inf = op(e, "eq", [op(e, "abs", [m], {}), k(e, Infinity, x)], {});
  const shift = op(e, "where", [inf, k(e, 0, x), m], {});
  const s = op(e, "sum", [op(e, "exp", [op(e, "sub", [x, shift], {})], {})], { axes, keepdims: true });
  const r = op(e, "add", [op(e, "log", [s], {}), shift], {});
  if (keepdims || r === undefined) return r;
  return op(e, "reshape", [r], { shape: e.type(r).shape.filter((_, a) => !axes.includes(a)) });
}

/** Number of elements reduced over `axes`, as a scalar of x's dtype (a sum of ones when sizes are symbolic). */
function countOf(e: PrimEmitter, x: number, axes: readonly number[]): Id {
  const t = e.type(x);
  const dims = axes.map((a) => t.shape[a]);
  if (dims.every((d) => typeof d === "number")) return e.constant((dims as number[]).reduce((p, q) => p * q, 1), t.dtype);
  const ones = op(e, "broadcast_to", [e.constant(1, t.dtype)], { shape: t.shape });
  return op(e, "sum", [ones], { axes, keepdims: true });
}

/** torch.var: sum((x - mean)^2) / (N - correction); N - correction <= 0 gives inf or NaN, as in torch. */
export function variance(e: PrimEmitter, x: number, axes: readonly number[], correction: number, keepdims: boolean): Id {
  const xc = op(e, "sub", [x, op(e, "mean", [x], { axes, keepdims: true })], {});
  const ss = op(e, "sum", [op(e, "mul", [xc, xc], {})], { axes, keepdims });
  const n = countOf(e, x, axes);
  const denom = correction === 0 ? n : op(e, "sub", [n, k(e, correction, x)], {});
  const v = op(e, "div", [ss, denom], {});
  // A symbolic count was kept with reduced axes of size 1; drop them again when keepdims is false.
  if (v === undefined || keepdims) return v;
  const want = e.type(x).shape.filter((_, a) => !axes.includes(a));
  return e.type(v).shape.length === want.length ? v : op(e, "reshape", [v], { shape: want });
}

/** tril (lower: keep j - i <= diagonal) or triu (upper: keep j - i >= diagonal) over the last two axes. */
export function triangle(e: PrimEmitter, x: number, upper: boolean, diagonal: number): Id {
  const s = e.type(x).shape;
  // Symbolic sizes too (a causal mask over a sequence of length T): iota takes a symbolic count.
  const [rows, cols] = [s[s.length - 2]!, s[s.length - 1]!];
  const i = op(e, "reshape", [e.emit("iota", [], { n: rows, dtype: "i32" })], { shape: [rows, 1] });
  const j = e.emit("iota", [], { n: cols, dtype: "i32" });
  const d = op(e, "sub", [j, i], {});
  const keep = op(e, upper ? "ge" : "le", [d, e.constant(diagonal, "i32")], {});
  return op(e, "where", [keep, x, e.constant(0, e.type(x).dtype)], {});
}

/**
 * Inclusive prefix sum along `axis` in ceil(log2 n) steps (Hillis-Steele): y += y shifted by 1, 2, 4, ...
 * Only adds and zero padding, so an Inf or NaN reaches exactly the later positions, as in torch.cumsum.
 */
export function cumsum(e: PrimEmitter, x: number, axis: number): Id {
  const s = e.type(x).shape;
  const n = s[axis] as number;
  let y: Id = x;
  for (let d = 1; d < n; d *= 2) {
    const head: Id = op(e, "slice", [y], sliceAttrs(axis, 0, n - d));
    const shifted: Id = op(e, "pad", [head], { pads: s.map((_, a) => (a === axis ? [d, 0, 0] : [0, 0, 0]) as [number, number, number]), value: 0 });
    y = op(e, "add", [y, shifted], {});
  }
  return y;
}

/**
 * Product along one axis by pairwise halving (even and odd elements multiplied, an odd length padded with a 1),
 * so the gradient comes from the product rule through the tree: exact with zeros, no division.
 */
function prodAxis(e: PrimEmitter, x: Id, axis: number): Id {
  if (x === undefined) return undefined;
  let y: Id = x;
  let n = e.type(x).shape[axis] as number;
  if (n === 0) return op(e, "add", [op(e, "sum", [x], { axes: [axis], keepdims: true }), k(e, 1, x)], {});
  while (n > 1 && y !== undefined) {
    const rank: number = e.type(y).shape.length;
    if (n % 2 === 1) {
      y = op(e, "pad", [y], { pads: [...Array(rank).keys()].map((a) => (a === axis ? [0, 1, 0] : [0, 0, 0]) as [number, number, number]), value: 1 });
      n += 1;
    }
    const even: Id = op(e, "slice", [y], sliceAttrs(axis, 0, n - 1, 2));
    const odd: Id = op(e, "slice", [y], sliceAttrs(axis, 1, n, 2));
    y = op(e, "mul", [even, odd], {});
    n /= 2;
  }
  return y;
}

/** torch.prod over `axes` (each reduced in turn, kept as size 1 until the end). */
export function prod(e: PrimEmitter, x: number, axes: readonly number[], keepdims: boolean): Id {
  let y: Id = x;
  for (const a of axes) y = prodAxis(e, y, a);
  if (y === undefined || keepdims) return y;
  return op(e, "reshape", [y], { shape: e.type(x).shape.filter((_, a) => !axes.includes(a)) });
}

/**
 * start, start + step, ... below end (above, for step < 0): torch.arange; i32 for integer arguments. A symbolic
 * end (arange(T), step 1) has T - start elements, a derived dim the call checks is at least 1.
 */
export function arange(e: PrimEmitter, start: number, end: Dim, step: number, dtype: DType): Id {
  const n = typeof end === "number" ? Math.max(0, Math.ceil((end - start) / step)) : addDim(end, -start)!;
  const idx = e.emit("iota", [], { n, dtype: "i32" });
  const v = dtype === "i32" ? idx : op(e, "cast", [idx], { to: dtype });
  if (v === undefined) return undefined;
  const scaled = step === 1 ? v : op(e, "mul", [v, e.constant(step, dtype)], {});
  return start === 0 ? scaled : op(e, "add", [scaled, e.constant(start, dtype)], {});
}

/**
 * The k largest values along `axis` (descending) and their indices, as torch.topk: k rounds of argmax over the
 * elements not yet picked (the first maximum; NaN counts as the largest). Picked elements become -inf; when
 * only -inf remains, the first unpicked index is taken, so an index never repeats. Values are read through a
 * one-hot mask, so the gradient goes to exactly the picked elements.
 */
export function topk(e: PrimEmitter, x: number, kk: number, axis: number): { values: Id; indices: Id } {
  const s: Shape = e.type(x).shape;
  const n = s[axis] as number;
  const pos = op(e, "reshape", [e.emit("iota", [], { n, dtype: "i32" })], { shape: s.map((_, a) => (a === axis ? n : 1)).slice(axis) });
  let free: Id = op(e, "broadcast_to", [k(e, 1, x)], { shape: s });
  const vals: Id[] = [], idxs: Id[] = [];
  for (let r = 0; r < kk; r++) {
    // The choice of indices carries no gradient (argmax has none); values get theirs through `hit` below.
    const cur = op(e, "stop_gradient", [r === 0 ? x : op(e, "where", [op(e, "gt", [free, k(e, 0, x)], {}), x, k(e, -Infinity, x)], {})], {});
    const best = op(e, "argmax", [cur], { axis, keepdims: true });
    const onlyInf = op(e, "eq", [op(e, "max", [cur], { axes: [axis], keepdims: true }), k(e, -Infinity, x)], {});
    const firstFree = op(e, "argmax", [op(e, "stop_gradient", [free], {})], { axis, keepdims: true });
    const i = op(e, "where", [onlyInf, firstFree, best], {});
    const hit = op(e, "eq", [pos, i], {});
    vals.push(op(e, "sum", [op(e, "where", [hit, x, k(e, 0, x)], {})], { axes: [axis], keepdims: true }));
    idxs.push(i);
    if (r + 1 < kk) free = op(e, "where", [hit, k(e, 0, x), free], {});
  }
  const join = (xs: Id[]): Id => (xs.length === 1 ? xs[0] : op(e, "concat", xs, { axis }));
  return { values: join(vals), indices: join(idxs) };
}

/**
 * torch.max(x, dim) / torch.min(x, dim): the value and the index of the first maximum (minimum) along `axis`,
 * NaN counting as the extreme. The value is read at that index, so its gradient goes there alone (the plain
 * `max` reduction splits it between equal values, as torch.amax does).
 */
export function extremeWithIndex(e: PrimEmitter, x: number, axis: number, keepdims: boolean, min: boolean): { values: Id; indices: Id } {
  const s = e.type(x).shape;
  const n = s[axis] as number;
  const key = op(e, "stop_gradient", [min ? op(e, "neg", [x], {}) : x], {});
  const at = op(e, "argmax", [key], { axis, keepdims: true });
  const pos = op(e, "reshape", [e.emit("iota", [], { n, dtype: "i32" })], { shape: s.map((_, a) => (a === axis ? n : 1)).slice(axis) });
  const v = op(e, "sum", [op(e, "where", [op(e, "eq", [pos, at], {}), x, k(e, 0, x)], {})], { axes: [axis], keepdims: true });
  if (keepdims) return { values: v, indices: at };
  const shape = s.filter((_, a) => a !== axis);
  return { values: op(e, "reshape", [v], { shape }), indices: op(e, "reshape", [at], { shape }) };
}
