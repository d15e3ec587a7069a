// ONNX import, the op table: one entry per ONNX op, each mapping a node onto Kiln builtins (run-time tensors) or
// folding it at import time (the shape arithmetic exporters emit: Shape -> Gather -> Concat -> Reshape, Constant).

import type { OnnxNs } from "../../export/onnx/proto.js";
import { readTensor, type Dim } from "./values.js";
import { axisOf, binary, broadcast, dtypeOf, ints, isConst, list, num, outSize, pads2d, pair, prod, req, reshapeTo, shapeOf, unary, type OpCtx, type Rule } from "./ops-util.js";
import { TENSOR_OPS } from "./ops-tensor.js";
import { NN_OPS } from "./ops-nn.js";

export type { OpCtx } from "./ops-util.js";

function softmaxLike(fn: string): Rule {
  return (c) => {
    const x = req(c, 0);
    const rank = shapeOf(x).length;
    const axis = axisOf(c, c.attr("axis", -1), rank);
    return [c.emit(axis === rank - 1 ? `${fn}(${c.expr(x)})` : `${fn}(${c.expr(x)}, axis: ${axis})`, shapeOf(x))];
  };
}

export const OPS: Record<string, Rule> = {
  ...TENSOR_OPS,
  ...NN_OPS,
  Add: binary("+"),
  Sub: binary("-"),
  Mul: binary("*"),
  Div: binary("/"),
  Relu: unary("relu"),
  Sigmoid: unary("sigmoid"),
  Tanh: unary("tanh"),
  Exp: unary("exp"),
  Log: unary("log"),
  Sqrt: unary("sqrt"),
  Abs: unary("abs"),
  Neg: (c) => {
    const x = req(c, 0);
    return [c.emit(`-${c.expr(x)}`, shapeOf(x), dtypeOf(x))];
  },
  Reciprocal: (c) => {
    const x = req(c, 0);
    return [c.emit(`1 / ${c.expr(x)}`, shapeOf(x))];
  },
  // torch.onnx.export shares equal initializers (every LayerNorm's ones) through Identity: each stays its own
  // param, as it was in the model, so fine-tuning can move them apart.
  Identity: (c) => {
    const x = req(c, 0);
    return [isConst(x) && x.init && c.node.output?.[0] ? { ...x, init: c.node.output[0] } : x];
  },
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
    return [c.emit(swapLast ? `transpose(${c.expr(x)})` : `permute(${c.expr(x)}, ${list(perm)})`, shape, dtypeOf(x))];
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
};
