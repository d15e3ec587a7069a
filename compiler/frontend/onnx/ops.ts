// ONNX import, the op table: one entry per ONNX op, each mapping a node onto Kiln builtins (run-time tensors) or
// folding it at import time (the shape arithmetic exporters emit: Shape -> Gather -> Concat -> Reshape, Constant).

import type { OnnxNs } from "../../export/onnx/proto.js";
import { readTensor, type ConstVal, type Dim, type TensorVal, type Val } from "./values.js";

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
  /** Binds `expr` to a new variable with this shape. */
  emit(expr: string, shape: Dim[]): TensorVal;
  fail(msg: string): never;
}

type Rule = (c: OpCtx) => Val[];

const isConst = (v: Val | undefined): v is ConstVal => v?.kind === "const";
const shapeOf = (v: Val): Dim[] => (v.kind === "const" ? v.dims : v.shape);
const prod = (ds: number[]) => ds.reduce((a, b) => a * b, 1);
const list = (ds: readonly Dim[]) => `[${ds.join(", ")}]`;
const ints = (c: OpCtx, v: Val | undefined, what: string): Dim[] => {
  if (!isConst(v) || v.float) c.fail(`${what} must be a constant integer tensor (kiln import folds shape arithmetic, but this one depends on run-time values)`);
  return [...(v.data as Dim[])];
};
const num = (c: OpCtx, d: Dim, what: string): number => (typeof d === "number" ? d : c.fail(`${what} is the symbolic dim '${d}'; it must be a known size`));
const axisOf = (c: OpCtx, a: number, rank: number) => (a < -rank || a >= rank ? c.fail(`axis ${a} is out of range for rank ${rank}`) : a < 0 ? a + rank : a);
const req = (c: OpCtx, i: number): Val => c.input(i) ?? c.fail(`input ${i} is missing`);

/** numpy broadcasting over possibly symbolic dims. */
function broadcast(c: OpCtx, a: Dim[], b: Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, k) => {
    const x = a[a.length - n + k] ?? 1, y = b[b.length - n + k] ?? 1;
    if (x === y || y === 1) return x;
    if (x === 1) return y;
    return c.fail(`shapes ${list(a)} and ${list(b)} do not broadcast`);
  });
}

function foldBinary(a: ConstVal, b: ConstVal, f: (x: number, y: number) => number, c: OpCtx): ConstVal {
  const shape = broadcast(c, a.dims, b.dims) as number[];
  const n = prod(shape);
  const at = (v: ConstVal, i: number) => {
    // Index of output element i in a broadcast operand (right-aligned).
    let idx = 0, stride = 1, rest = i;
    const off = shape.length - v.dims.length;
    const coord: number[] = [];
    for (let k = shape.length - 1; k >= 0; k--) { coord[k] = rest % shape[k]!; rest = Math.floor(rest / shape[k]!); }
    for (let k = v.dims.length - 1; k >= 0; k--) { idx += (v.dims[k] === 1 ? 0 : coord[k + off]!) * stride; stride *= v.dims[k]!; }
    const d = v.data[idx]!;
    return typeof d === "number" ? d : c.fail(`shape arithmetic on the symbolic dim '${d}' is not folded yet`);
  };
  const out = Array.from({ length: n }, (_, i) => f(at(a, i), at(b, i)));
  const float = a.float || b.float;
  return { kind: "const", dims: shape, data: float ? Float32Array.from(out) : out.map(Math.trunc), float };
}

function binary(op: string, f: (x: number, y: number) => number): Rule {
  return (c) => {
    const a = req(c, 0), b = req(c, 1);
    if (isConst(a) && isConst(b) && !a.init && !b.init) return [foldBinary(a, b, f, c)];
    return [c.emit(`${c.expr(a)} ${op} ${c.expr(b)}`, broadcast(c, shapeOf(a), shapeOf(b)))];
  };
}

function unary(fn: string): Rule {
  return (c) => {
    const x = req(c, 0);
    return [c.emit(`${fn}(${c.expr(x)})`, shapeOf(x))];
  };
}

function softmaxLike(fn: string): Rule {
  return (c) => {
    const x = req(c, 0);
    const rank = shapeOf(x).length;
    const axis = axisOf(c, c.attr("axis", -1), rank);
    return [c.emit(axis === rank - 1 ? `${fn}(${c.expr(x)})` : `${fn}(${c.expr(x)}, axis: ${axis})`, shapeOf(x))];
  };
}

/** A Kiln int-or-pair argument: `2` when both sides agree. */
const pair = (v: number[]) => (v[0] === v[1] ? `${v[0]}` : list(v));

function pads2d(c: OpCtx): number[] {
  if (c.attr("auto_pad", "NOTSET") !== "NOTSET") c.fail(`auto_pad is not supported; re-export with explicit pads`);
  const p = c.attr<number[]>("pads", [0, 0, 0, 0]);
  if (p.length !== 4 || p[0] !== p[2] || p[1] !== p[3]) c.fail(`pads [${p.join(", ")}] are not symmetric; Kiln pads both sides of each axis equally`);
  return [p[0]!, p[1]!];
}

const outSize = (c: OpCtx, h: Dim, k: number, s: number, p: number, d: number) => Math.floor((num(c, h, "a spatial dim") + 2 * p - d * (k - 1) - 1) / s) + 1;

function reshapeTo(c: OpCtx, x: Val, target: Dim[]): Val[] {
  const from = shapeOf(x);
  const dims = target.map((d, k) => (d === 0 ? (from[k] ?? c.fail(`shape 0 at axis ${k} has no input dim to copy`)) : d));
  const infer = dims.indexOf(-1);
  if (infer >= 0) {
    const symOut = dims.filter((d) => typeof d === "string");
    const left = from.filter((d) => typeof d === "string");
    for (const d of symOut) left.splice(left.indexOf(d) >>> 0, left.includes(d) ? 1 : 0);
    const ratio = prod(from.filter((d): d is number => typeof d === "number")) / prod(dims.filter((d): d is number => typeof d === "number" && d !== -1));
    // The -1 is a known size, or exactly one symbolic dim of the input (a batch flattened with a constant row size).
    if (left.length + symOut.length !== from.filter((d) => typeof d === "string").length || left.length > 1 || (left.length === 1 && ratio !== 1) || !Number.isInteger(ratio)) {
      c.fail(`cannot infer the -1 dim of ${list(dims)} from ${list(from)}`);
    }
    dims[infer] = left.length ? left[0]! : ratio;
  }
  if (isConst(x) && !x.init) return [{ ...x, dims: dims.map((d) => num(c, d, "a folded reshape")) }];
  const rank = dims.length;
  if (rank === 2 && dims[0] === from[0] && from.length > 2) return [c.emit(`flatten(${c.expr(x)})`, dims)];
  return [c.emit(`reshape(${c.expr(x)}, ${list(dims)})`, dims)];
}

export const OPS: Record<string, Rule> = {
  Add: binary("+", (x, y) => x + y),
  Sub: binary("-", (x, y) => x - y),
  Mul: binary("*", (x, y) => x * y),
  Div: binary("/", (x, y) => (Number.isInteger(x) && Number.isInteger(y) ? Math.trunc(x / y) : x / y)),
  Relu: unary("relu"),
  Sigmoid: unary("sigmoid"),
  Tanh: unary("tanh"),
  Exp: unary("exp"),
  Log: unary("log"),
  Sqrt: unary("sqrt"),
  Abs: unary("abs"),
  Neg: (c) => {
    const x = req(c, 0);
    return [c.emit(`-${c.expr(x)}`, shapeOf(x))];
  },
  Reciprocal: (c) => {
    const x = req(c, 0);
    return [c.emit(`1 / ${c.expr(x)}`, shapeOf(x))];
  },
  Identity: (c) => [req(c, 0)],
  // In eval mode (the exported graph's) dropout is the identity; kept as a call so a train block drops again.
  Dropout: (c) => {
    const x = req(c, 0);
    const r = c.input(1);
    const p = isConst(r) ? Number(r.data[0]) : c.attr("ratio", 0.5);
    return [c.emit(`dropout(${c.expr(x)}, p: ${+p.toPrecision(6)})`, shapeOf(x))];
  },
  Softmax: softmaxLike("softmax"),
  LogSoftmax: softmaxLike("log_softmax"),
  MatMul: (c) => {
    const a = req(c, 0), b = req(c, 1);
    const sa = shapeOf(a), sb = shapeOf(b);
    if (sa.length < 2 || sb.length < 2) c.fail(`MatMul of rank ${sa.length} by rank ${sb.length}: only matrices (and batches of them) are imported`);
    const batch = broadcast(c, sa.slice(0, -2), sb.slice(0, -2));
    if (sa[sa.length - 1] !== sb[sb.length - 2]) c.fail(`MatMul inner dims ${list(sa)} @ ${list(sb)} disagree`);
    return [c.emit(`${c.expr(a)} @ ${c.expr(b)}`, [...batch, sa[sa.length - 2]!, sb[sb.length - 1]!])];
  },
  Gemm: (c) => {
    const a = req(c, 0), b = req(c, 1), bias = c.input(2);
    const ta = c.attr("transA", 0), tb = c.attr("transB", 0), alpha = c.attr("alpha", 1), beta = c.attr("beta", 1);
    const sa = shapeOf(a), sb = shapeOf(b);
    const A = ta ? `transpose(${c.expr(a)})` : c.expr(a), B = tb ? `transpose(${c.expr(b)})` : c.expr(b);
    const m = ta ? sa[1]! : sa[0]!, n = tb ? sb[0]! : sb[1]!;
    let e = alpha === 1 ? `${A} @ ${B}` : `${alpha} * (${A} @ ${B})`;
    if (bias) e = beta === 1 && alpha === 1 ? `linear(${A}, ${B}, ${c.expr(bias)})` : `${e} + ${beta === 1 ? "" : `${beta} * `}${c.expr(bias)}`;
    return [c.emit(e, [m, n])];
  },
  Conv: (c) => {
    const x = req(c, 0), w = req(c, 1), b = c.input(2);
    const xs = shapeOf(x), ws = shapeOf(w);
    if (xs.length !== 4) c.fail(`only 2-D convolutions (input [N, C, H, W]) are imported, got rank ${xs.length}`);
    const k = ws.slice(2).map((d) => num(c, d, "the kernel size"));
    const s = c.attr<number[]>("strides", [1, 1]), d = c.attr<number[]>("dilations", [1, 1]), g = c.attr("group", 1);
    const p = pads2d(c);
    const args = [c.expr(x), c.expr(w), ...(b ? [c.expr(b)] : [])];
    if (s.some((v) => v !== 1)) args.push(`stride: ${pair(s)}`);
    if (p.some((v) => v !== 0)) args.push(`padding: ${pair(p)}`);
    if (d.some((v) => v !== 1)) args.push(`dilation: ${pair(d)}`);
    if (g !== 1) args.push(`groups: ${g}`);
    return [c.emit(`conv2d(${args.join(", ")})`, [xs[0]!, ws[0]!, outSize(c, xs[2]!, k[0]!, s[0]!, p[0]!, d[0]!), outSize(c, xs[3]!, k[1]!, s[1]!, p[1]!, d[1]!)])];
  },
  MaxPool: (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    if (xs.length !== 4) c.fail(`only 2-D pooling (input [N, C, H, W]) is imported, got rank ${xs.length}`);
    if (c.node.output!.length > 1 && c.node.output![1]) c.fail(`MaxPool's indices output is not supported`);
    if (c.attr("ceil_mode", 0)) c.fail(`ceil_mode=1 is not supported; Kiln rounds pooled sizes down`);
    if (c.attr<number[]>("dilations", [1, 1]).some((v) => v !== 1)) c.fail(`dilated pooling is not supported`);
    const k = c.attr<number[]>("kernel_shape", []), s = c.attr<number[]>("strides", [1, 1]), p = pads2d(c);
    if (k.length !== 2) c.fail(`kernel_shape must have 2 entries`);
    const args = [c.expr(x), pair(k)];
    if (s[0] !== k[0] || s[1] !== k[1]) args.push(`stride: ${pair(s)}`);
    if (p.some((v) => v !== 0)) args.push(`padding: ${pair(p)}`);
    return [c.emit(`max_pool2d(${args.join(", ")})`, [xs[0]!, xs[1]!, outSize(c, xs[2]!, k[0]!, s[0]!, p[0]!, 1), outSize(c, xs[3]!, k[1]!, s[1]!, p[1]!, 1)])];
  },
  BatchNormalization: (c) => {
    if (c.attr("training_mode", 0)) c.fail(`training_mode=1 is not supported; export the model in eval mode`);
    const [x, g, b, m, v] = [0, 1, 2, 3, 4].map((i) => req(c, i));
    // ONNX's momentum weighs the old running value; Kiln's (PyTorch's) weighs the batch statistic.
    const momentum = +(1 - c.attr("momentum", 0.9)).toPrecision(6), eps = c.attr("epsilon", 1e-5);
    const inits = ["ones()", "zeros()", "zeros()", "ones()"];
    return [c.emit(`batch_norm(${c.expr(x!)}, ${[g, b, m, v].map((t, i) => c.expr(t!, inits[i])).join(", ")}, momentum: ${momentum}, eps: ${+eps.toPrecision(6)})`, shapeOf(x!))];
  },
  Flatten: (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    const axis = c.attr("axis", 1);
    const a = axis < 0 ? axis + xs.length : axis;
    const head = xs.slice(0, a), tail = xs.slice(a);
    const merge = (ds: Dim[]): Dim => (ds.length === 1 ? ds[0]! : ds.every((d) => typeof d === "number") ? prod(ds as number[]) : c.fail(`Flatten over the symbolic dims ${list(ds)}`));
    return reshapeTo(c, x, [merge(head), merge(tail)]);
  },
  Reshape: (c) => reshapeTo(c, req(c, 0), ints(c, c.input(1), "Reshape's shape")),
  Transpose: (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    const perm = c.attr<number[]>("perm", xs.map((_, k) => xs.length - 1 - k));
    const shape = perm.map((p) => xs[p]!);
    const swapLast = perm.every((p, k) => (k < perm.length - 2 ? p === k : p === (k === perm.length - 1 ? perm.length - 2 : perm.length - 1)));
    return [c.emit(swapLast ? `transpose(${c.expr(x)})` : `permute(${c.expr(x)}, ${list(perm)})`, shape)];
  },
  // Folded at import time: constants and shape arithmetic.
  Constant: (c) => {
    const t = c.attr<OnnxNs.ITensorProto | undefined>("value", undefined);
    if (t) return [readTensor(t, `node '${c.node.name}'`)];
    const f = c.attr<number | undefined>("value_float", undefined), i = c.attr<number | undefined>("value_int", undefined);
    const fs = c.attr<number[] | undefined>("value_floats", undefined), is = c.attr<number[] | undefined>("value_ints", undefined);
    if (f !== undefined) return [{ kind: "const", dims: [], data: Float32Array.of(f), float: true }];
    if (i !== undefined) return [{ kind: "const", dims: [], data: [i], float: false }];
    if (fs) return [{ kind: "const", dims: [fs.length], data: Float32Array.from(fs), float: true }];
    if (is) return [{ kind: "const", dims: [is.length], data: is, float: false }];
    return c.fail(`a Constant without a value, value_float(s) or value_int(s) attribute`);
  },
  Shape: (c) => {
    let s = shapeOf(req(c, 0));
    const rank = s.length;
    const start = c.attr("start", 0), end = c.attr("end", rank);
    s = s.slice(start < 0 ? start + rank : start, end < 0 ? end + rank : end);
    return [{ kind: "const", dims: [s.length], data: s, float: false }];
  },
  Gather: (c) => {
    const x = c.input(0), idx = c.input(1);
    if (!isConst(x) || !isConst(idx) || x.dims.length !== 1) return c.fail(`Gather is imported only as shape arithmetic (a constant 1-D tensor indexed by constants)`);
    const n = x.dims[0]!;
    const pick = (i: Dim) => x.data[(num(c, i, "an index") + n) % n]!;
    const data = Array.from(idx.data as ArrayLike<Dim>, pick);
    return [{ kind: "const", dims: idx.dims, data: x.float ? Float32Array.from(data as number[]) : (data as Dim[]), float: x.float }];
  },
  Unsqueeze: (c) => {
    const x = req(c, 0);
    const axes = c.input(1) ? ints(c, c.input(1), "Unsqueeze's axes").map((a) => num(c, a, "an axis")) : c.attr<number[]>("axes", []);
    const rank = shapeOf(x).length + axes.length;
    const shape = [...shapeOf(x)];
    for (const a of axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return reshapeTo(c, x, shape);
  },
  Squeeze: (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    const axes = c.input(1) ? ints(c, c.input(1), "Squeeze's axes").map((a) => num(c, a, "an axis")) : c.attr<number[]>("axes", xs.flatMap((d, k) => (d === 1 ? [k] : [])));
    const drop = new Set(axes.map((a) => axisOf(c, a, xs.length)));
    return reshapeTo(c, x, xs.filter((_, k) => !drop.has(k)));
  },
  Concat: (c) => {
    const vs = (c.node.input ?? []).map((_, i) => c.input(i)).filter((v): v is Val => v !== undefined);
    if (!vs.every(isConst) || vs.some((v) => v.dims.length !== 1)) return c.fail(`Concat is imported only as shape arithmetic (constant 1-D tensors)`);
    const data = vs.flatMap((v) => Array.from(v.data as ArrayLike<Dim>));
    const float = vs.some((v) => v.float);
    return [{ kind: "const", dims: [data.length], data: float ? Float32Array.from(data as number[]) : data, float }];
  },
  Cast: (c) => {
    const x = c.input(0);
    if (!isConst(x)) return c.fail(`Cast of a run-time tensor is not imported yet (only f32 tensors are)`);
    const to = c.attr("to", 1);
    const float = to === 1 || to === 11 || to === 10;
    const data = Array.from(x.data as ArrayLike<Dim>);
    return [{ kind: "const", dims: x.dims, data: float ? Float32Array.from(data as number[]) : data.map((d) => (typeof d === "number" ? Math.trunc(d) : d)), float }];
  },
};
