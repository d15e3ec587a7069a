// ONNX import, the helpers op rules share: operand access, numpy broadcasting over symbolic dims, folding constants
// (shape arithmetic included: products of dim names), and the elementwise, reshape and slice emitters.

import type { OnnxNs } from "../../export/onnx/proto.js";
import { dimDiv, dimMul, dimProd, type Dim } from "./dims.js";
import type { ConstVal, TensorVal, Val } from "./values.js";

export interface OpCtx {
  node: OnnxNs.INodeProto;
  /** The i-th input; undefined when absent (an empty name). */
  input(i: number): Val | undefined;
  attr<T>(name: string, dflt: T): T;
  /**
   * A Kiln expression for a value a run-time op reads (an initializer becomes a param; a scalar, a literal);
   * `init` is the param's initialiser in the program (the weights file holds the real values).
   */
  expr(v: Val, init?: string): string;
  /** Binds `expr` to a new variable with this shape (and dtype, f32 when absent). */
  emit(expr: string, shape: Dim[], dtype?: TensorVal["dtype"]): TensorVal;
  fail(msg: string): never;
}

export type Rule = (c: OpCtx) => Val[];

export const isConst = (v: Val | undefined): v is ConstVal => v?.kind === "const";
export const shapeOf = (v: Val): Dim[] => (v.kind === "const" ? v.dims : v.shape);
export const dtypeOf = (v: Val): "f32" | "i32" | "bool" => (v.kind === "const" ? (v.bool ? "bool" : v.float ? "f32" : "i32") : (v.dtype ?? "f32"));
export const prod = (ds: number[]) => ds.reduce((a, b) => a * b, 1);
export const list = (ds: readonly Dim[]) => `[${ds.join(", ")}]`;
/** A constant that folding may read: anything but a float initializer, which stays a param (a weight). */
export const foldable = (v: Val | undefined): v is ConstVal => isConst(v) && !(v.init && v.float);
export const ints = (c: OpCtx, v: Val | undefined, what: string): Dim[] => {
  if (!isConst(v) || v.float) c.fail(`${what} must be a constant integer tensor (kiln import folds shape arithmetic, but this one depends on run-time values)`);
  return [...(v.data as Dim[])];
};
export const num = (c: OpCtx, d: Dim, what: string): number => (typeof d === "number" ? d : c.fail(`${what} is the symbolic dim '${d}'; it must be a known size`));
export const axisOf = (c: OpCtx, a: number, rank: number) => (a < -rank || a >= rank ? c.fail(`axis ${a} is out of range for rank ${rank}`) : a < 0 ? a + rank : a);
export const req = (c: OpCtx, i: number): Val => c.input(i) ?? c.fail(`input ${i} is missing`);
/** Constant integer axes from input `i` (opset 13+) or the `axes` attribute (older ops). */
export const axesOf = (c: OpCtx, i: number, rank: number): number[] | undefined => {
  const v = c.input(i);
  const raw = v ? ints(c, v, "the axes").map((a) => num(c, a, "an axis")) : c.attr<number[] | undefined>("axes", undefined);
  return raw?.map((a) => axisOf(c, a, rank));
};

/** numpy broadcasting over possibly symbolic dims. */
export function broadcast(c: OpCtx, a: Dim[], b: Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, k) => {
    const x = a[a.length - n + k] ?? 1, y = b[b.length - n + k] ?? 1;
    if (x === y || y === 1) return x;
    if (x === 1) return y;
    return c.fail(`shapes ${list(a)} and ${list(b)} do not broadcast`);
  });
}

/** Element `i` of a constant broadcast to `shape` (right-aligned). */
export function constAt(v: ConstVal, shape: number[], i: number): Dim {
  let idx = 0, stride = 1, rest = i;
  const off = shape.length - v.dims.length;
  const coord: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) { coord[k] = rest % shape[k]!; rest = Math.floor(rest / shape[k]!); }
  for (let k = v.dims.length - 1; k >= 0; k--) { idx += (v.dims[k] === 1 ? 0 : coord[k + off]!) * stride; stride *= v.dims[k]!; }
  return v.data[idx]!;
}

export function constOf(dims: number[], data: Dim[], kind: "f32" | "i32" | "bool"): ConstVal {
  return kind === "f32" ? { kind: "const", dims, data: Float32Array.from(data as number[]), float: true } : { kind: "const", dims, data, float: false, ...(kind === "bool" ? { bool: true } : {}) };
}

type Fold = (x: Dim, y: Dim, c: OpCtx) => Dim;
const numeric = (f: (x: number, y: number) => number): Fold => (x, y, c) => (typeof x === "number" && typeof y === "number" ? f(x, y) : c.fail(`shape arithmetic on the symbolic dims '${x}' and '${y}' is not folded (only products and exact quotients are)`));

export const FOLD: Record<string, Fold> = {
  "+": numeric((x, y) => x + y),
  "-": numeric((x, y) => x - y),
  "*": (x, y) => dimMul(x, y),
  "/": (x, y, c) => (typeof x === "number" && typeof y === "number" ? (Number.isInteger(x) && Number.isInteger(y) ? Math.trunc(x / y) : x / y) : dimDiv(x, y) ?? c.fail(`${x} / ${y} is not an exact quotient of dims`)),
  "==": (x, y) => (x === y ? 1 : typeof x === "number" && typeof y === "number" ? 0 : NaN),
  "<": numeric((x, y) => +(x < y)),
  ">": numeric((x, y) => +(x > y)),
  "<=": numeric((x, y) => +(x <= y)),
  ">=": numeric((x, y) => +(x >= y)),
};
const COMPARE = new Set(["==", "!=", "<", ">", "<=", ">="]);

export function foldBinary(c: OpCtx, a: ConstVal, b: ConstVal, op: string): ConstVal {
  const shape = broadcast(c, a.dims, b.dims) as number[];
  const out = Array.from({ length: prod(shape) }, (_, i) => {
    const r = FOLD[op]!(constAt(a, shape, i), constAt(b, shape, i), c);
    return Number.isNaN(r) && op === "==" ? c.fail(`cannot tell whether the dims ${constAt(a, shape, i)} and ${constAt(b, shape, i)} are equal`) : r;
  });
  if (COMPARE.has(op)) return constOf(shape, out, "bool");
  const float = a.float || b.float;
  return constOf(shape, float ? out : out.map((d) => (typeof d === "number" ? Math.trunc(d) : d)), float ? "f32" : "i32");
}

export function binary(op: string): Rule {
  return (c) => {
    const a = req(c, 0), b = req(c, 1);
    if (foldable(a) && foldable(b) && FOLD[op]) return [foldBinary(c, a, b, op)];
    const dtype = COMPARE.has(op) ? "bool" : dtypeOf(a) === "f32" || dtypeOf(b) === "f32" ? "f32" : dtypeOf(a.kind === "tensor" ? a : b);
    return [c.emit(`${c.expr(a)} ${op} ${c.expr(b)}`, broadcast(c, shapeOf(a), shapeOf(b)), dtype)];
  };
}

export function unary(fn: string): Rule {
  return (c) => {
    const x = req(c, 0);
    return [c.emit(`${fn}(${c.expr(x)})`, shapeOf(x), dtypeOf(x))];
  };
}

/** Reshape to ONNX's target (0 copies the input dim, one -1 is inferred, over symbolic products too). */
export function reshapeTo(c: OpCtx, x: Val, target: Dim[]): Val[] {
  const from = shapeOf(x);
  const dims = target.map((d, k) => (d === 0 ? (from[k] ?? c.fail(`shape 0 at axis ${k} has no input dim to copy`)) : d));
  const infer = dims.indexOf(-1);
  if (infer >= 0) {
    const rest = dimProd(dims.filter((_, k) => k !== infer));
    dims[infer] = dimDiv(dimProd(from), rest) ?? c.fail(`cannot infer the -1 dim of ${list(dims)} from ${list(from)}`);
  }
  if (isConst(x) && !(x.init && x.float)) return [{ ...x, dims: dims.map((d) => num(c, d, "a folded reshape")) }];
  // Positions (an unsqueezed Range over the sequence) stay unwritten until something other than a Gather reads them.
  if (x.kind === "tensor" && x.iota && dimProd(dims) === dimProd(from)) return [{ ...x, expr: `reshape(${x.expr}, ${list(dims)})`, shape: dims }];
  if (dims.length === from.length && dims.every((d, k) => d === from[k])) return [x.kind === "tensor" ? x : c.emit(c.expr(x), dims)];
  const rank = dims.length;
  if (rank === 2 && dims[0] === from[0] && from.length > 2 && dtypeOf(x) === "f32") return [c.emit(`flatten(${c.expr(x)})`, dims)];
  return [c.emit(`reshape(${c.expr(x)}, ${list(dims)})`, dims, dtypeOf(x))];
}

export interface Range {
  axis: number;
  start: number;
  /** A symbolic end (a sequence length) only from 0 along a known axis: `pos[:, :seq]`, which the call bounds. */
  end: Dim;
  step: number;
}

/** Python-style indexing, `x[:, 1:4, :, ::2]`, for ranges along known axes; x itself when every range is whole. */
export function sliceExpr(xe: string, shape: Dim[], ranges: Range[]): { expr: string; shape: Dim[] } {
  const cut = ranges.filter((r) => !(r.start === 0 && r.step === 1 && r.end === shape[r.axis]));
  if (!cut.length) return { expr: xe, shape };
  const out = [...shape];
  const last = Math.max(...cut.map((r) => r.axis));
  const items = shape.slice(0, last + 1).map((_, k) => {
    const r = cut.find((q) => q.axis === k);
    if (!r) return ":";
    out[k] = typeof r.end === "number" ? Math.max(0, Math.ceil((r.end - r.start) / r.step)) : r.end;
    return `${r.start || ""}:${r.end === shape[k] ? "" : r.end}${r.step !== 1 ? `:${r.step}` : ""}`;
  });
  return { expr: `${xe}[${items.join(", ")}]`, shape: out };
}

/** A Kiln int-or-pair argument: `2` when both sides agree. */
export const pair = (v: number[]) => (v[0] === v[1] ? `${v[0]}` : list(v));

export function pads2d(c: OpCtx): number[] {
  if (c.attr("auto_pad", "NOTSET") !== "NOTSET") c.fail(`auto_pad is not supported; re-export with explicit pads`);
  const p = c.attr<number[]>("pads", [0, 0, 0, 0]);
  if (p.length !== 4 || p[0] !== p[2] || p[1] !== p[3]) c.fail(`pads [${p.join(", ")}] are not symmetric; Kiln pads both sides of each axis equally`);
  return [p[0]!, p[1]!];
}

export const outSize = (c: OpCtx, h: Dim, k: number, s: number, p: number, d: number) => Math.floor((num(c, h, "a spatial dim") + 2 * p - d * (k - 1) - 1) / s) + 1;

