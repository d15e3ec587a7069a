// ONNX export, the op table: one entry per IR primitive, each writing the standard ONNX ops that compute it.
// A mapped type over PrimOp, so a new primitive without an entry fails the type check, and an entry that has
// no ONNX equivalent says why (the writer turns it into an error at the op's source line).

import type { Node } from "../../ir/graph.js";
import type { AttrsOf, PrimOp } from "../../ops/types.js";
import type { OnnxGraphContext } from "./context.js";
import { ELEM_OF } from "./proto.js";

/**
 * Writes the ONNX nodes that compute `n` into `out`, reading its inputs by name; an entry that needs no node
 * (a constant becomes an initializer) returns the name that holds the value instead.
 */
type Emit<P extends PrimOp> = (cx: OnnxGraphContext, n: Node<P>, ins: string[], out: string) => void | string;
/** An op ONNX cannot express: what it is and what to do instead. */
export interface NoMapping {
  readonly unsupported: string;
  readonly hint: string;
}
export type OpMapping<P extends PrimOp> = Emit<P> | NoMapping;

/** Thrown by an entry for a use of its op that ONNX cannot express (the writer adds the source line). */
export class Unmappable extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

const simple = (op: string) => (cx: OnnxGraphContext, _n: Node, ins: string[], out: string) => cx.add(op, ins, [out]);

function reduce(op: string, axesAsInput: boolean): Emit<"sum" | "mean" | "max" | "min"> {
  return (cx, n, [x], out) => {
    const { axes, keepdims } = n.attrs as AttrsOf["sum"];
    if (axes.length === 0) return cx.add("Identity", [x], [out]);
    const k = keepdims ? 1 : 0;
    if (axesAsInput) cx.add(op, [x, cx.i64(axes)], [out], { keepdims: k });
    else cx.add(op, [x], [out], { axes: [...axes], keepdims: k });
  };
}

/**
 * window as a grouped Conv whose kernels each pick one element (weights 0/1, exact for finite values): the
 * general form; conv2d and pooling windows are written as Conv/MaxPool/AveragePool by patterns.ts instead.
 */
const windowAsConv: Emit<"window"> = (cx, n, [x], out) => {
  const [KH, KW] = n.attrs.kernel;
  // The output is [N, OH, OW, C, KH, KW]: C is the input's axis 1.
  const inC = cx.g.nodes[n.inputs[0]].type.shape[1] as number;
  const C = inC;
  const eye = new Float32Array(inC * KH * KW * KH * KW);
  for (let c = 0; c < inC; c++) for (let k = 0; k < KH * KW; k++) eye[(c * KH * KW + k) * KH * KW + k] = 1;
  const w = cx.constant("f32", [inC * KH * KW, 1, KH, KW], eye);
  const cols = cx.tmp("Conv", [x, w], { group: inC, kernel_shape: [KH, KW], strides: [...n.attrs.stride], dilations: [...n.attrs.dilation] });
  // [N, C*KH*KW, OH, OW] -> [N, C, KH, KW, OH, OW] -> [N, OH, OW, C, KH, KW]
  const [N, OH, OW] = n.type.shape;
  const split = cx.tmp("Reshape", [cols, cx.shape([N, C, KH, KW, OH, OW], true)]);
  cx.add("Transpose", [split], [out], { perm: [0, 4, 5, 1, 2, 3] });
};

export const ONNX_OPS: { [P in PrimOp]: OpMapping<P> } = {
  neg: simple("Neg"),
  exp: simple("Exp"),
  log: simple("Log"),
  sqrt: simple("Sqrt"),
  rsqrt: (cx, _n, [x], out) => cx.add("Reciprocal", [cx.tmp("Sqrt", [x])], [out]),
  abs: simple("Abs"),
  tanh: simple("Tanh"),
  sigmoid: simple("Sigmoid"),
  relu: simple("Relu"),
  erf: simple("Erf"),
  sin: simple("Sin"),
  cos: simple("Cos"),
  // ONNX has no log1p/expm1: the plain forms lose Kiln's accuracy near 0 (documented in docs/deploy.md).
  log1p: (cx, n, [x], out) => cx.add("Log", [cx.tmp("Add", [x, cx.constant(n.type.dtype, [], [1])])], [out]),
  expm1: (cx, n, [x], out) => cx.add("Sub", [cx.tmp("Exp", [x]), cx.constant(n.type.dtype, [], [1])], [out]),
  sign: simple("Sign"),
  floor: simple("Floor"),
  ceil: simple("Ceil"),
  round: simple("Round"),
  // torch.remainder (the divisor's sign): ONNX Mod takes fmod=0 only for integers, so a - floor(a / b) * b.
  remainder: (cx, n, [a, b], out) =>
    n.type.dtype.startsWith("i") || n.type.dtype === "u8"
      ? cx.add("Mod", [a, b], [out], { fmod: 0 })
      : cx.add("Sub", [a, cx.tmp("Mul", [cx.tmp("Floor", [cx.tmp("Div", [a, b])]), b])], [out]),
  add: simple("Add"),
  sub: simple("Sub"),
  mul: simple("Mul"),
  div: simple("Div"),
  pow: simple("Pow"),
  maximum: simple("Max"),
  minimum: simple("Min"),
  eq: simple("Equal"),
  ne: (cx, _n, ins, out) => cx.add("Not", [cx.tmp("Equal", ins)], [out]),
  lt: simple("Less"),
  le: simple("LessOrEqual"),
  gt: simple("Greater"),
  ge: simple("GreaterOrEqual"),
  // Opset 17: ReduceSum takes its axes as an input, the others as an attribute (until opset 18).
  sum: reduce("ReduceSum", true),
  mean: reduce("ReduceMean", false),
  max: reduce("ReduceMax", false),
  min: reduce("ReduceMin", false),
  reshape: (cx, n, [x], out) => cx.add("Reshape", [x, cx.shape(n.attrs.shape, true)], [out]),
  permute: (cx, n, [x], out) => cx.add("Transpose", [x], [out], { perm: [...n.attrs.perm] }),
  broadcast_to: (cx, n, [x], out) => cx.add("Expand", [x, cx.shape(n.attrs.shape)], [out]),
  // A symbolic end (x[:, 1:] of a T axis ends at T) is the input axis's run-time size.
  slice: (cx, n, [x], out) => {
    const { axis, start, end, step } = n.attrs;
    cx.add("Slice", [x, cx.i64([start]), typeof end === "number" ? cx.i64([end]) : cx.dim(end), cx.i64([axis]), cx.i64([step ?? 1])], [out]);
  },
  concat: (cx, n, ins, out) => cx.add("Concat", ins, [out], { axis: n.attrs.axis }),
  pad: (cx, n, [x], out) => {
    const { pads, value } = n.attrs;
    const v = cx.constant(n.type.dtype, [], [value]);
    // Interior padding (conv_transpose2d's zero insertion), one axis k at a time: Unsqueeze a new axis after k,
    // Pad it to interior + 1 wide, Reshape it into k, Slice off the fill after the last element.
    const cur = [...cx.g.nodes[n.inputs[0]].type.shape];
    let y = x;
    pads.forEach(([, , it], k) => {
      if (it === 0) return;
      const d = cur[k];
      if (typeof d !== "number") throw new Unmappable("interior padding of a symbolic dim", "pad only known sizes");
      const rank = cur.length + 1;
      const ends = Array<number>(rank).fill(0);
      ends[k + 1] = it;
      const padded = cx.tmp("Pad", [cx.tmp("Unsqueeze", [y, cx.i64([k + 1])]), cx.i64([...Array<number>(rank).fill(0), ...ends]), v], { mode: "constant" });
      const merged = cx.tmp("Reshape", [padded, cx.shape(cur.map((dim, j) => (j === k ? d * (it + 1) : dim)), true)]);
      cur[k] = (d - 1) * (it + 1) + 1;
      y = cx.tmp("Slice", [merged, cx.i64([0]), cx.i64([cur[k] as number]), cx.i64([k])]);
    });
    cx.add("Pad", [y, cx.i64([...pads.map((p) => p[0]), ...pads.map((p) => p[1])]), v], [out], { mode: "constant" });
  },
  window: windowAsConv,
  depthwise_conv2d: (cx, n, ins, out) => {
    const { stride, dilation, pads } = n.attrs;
    if (pads.some((p) => p.some((v) => v < 0))) throw new Unmappable("a depthwise convolution with negative padding (part of a gradient)", "export the model's forward functions");
    const [C, , KH, KW] = cx.g.nodes[n.inputs[1]].type.shape as number[];
    cx.add("Conv", ins, [out], { kernel_shape: [KH!, KW!], strides: [...stride], dilations: [...dilation], pads: [pads[0]![0], pads[1]![0], pads[0]![1], pads[1]![1]], group: C! });
  },
  where: simple("Where"),
  cast: (cx, n, [x], out) => cx.add("Cast", [x], [out], { to: ELEM_OF[n.attrs.to] }),
  matmul: (cx, n, ins, out) => {
    // Mixed precision: f16/bf16 operands give an f32 result in Kiln; ONNX MatMul keeps the operands' type.
    const a = cx.g.nodes[n.inputs[0]].type.dtype;
    if (a === n.type.dtype) return cx.add("MatMul", ins, [out]);
    cx.add("Cast", [cx.tmp("MatMul", ins)], [out], { to: ELEM_OF[n.type.dtype] });
  },
  iota: (cx, n, _ins, out) => {
    const len = n.attrs.n;
    if (typeof len === "number") return cx.constant("i32", [len], Array.from({ length: len }, (_, i) => i));
    // A symbolic length: Range over the run-time size (int64 scalars), cast to Kiln's i32.
    const limit = cx.tmp("Reshape", [cx.dim(len), cx.i64([])]);
    const scalar = (v: number) => cx.tmp("Reshape", [cx.i64([v]), cx.i64([])]);
    cx.add("Cast", [cx.tmp("Range", [scalar(0), limit, scalar(1)])], [out], { to: ELEM_OF.i32 });
  },
  // The product of the dims read from the inputs' shapes (int64 [1] each; a derived dim by its arithmetic).
  dim_size: (cx, n, _ins, out) => {
    let k = 1;
    const parts: string[] = [];
    for (const d of n.attrs.dims) typeof d === "number" ? (k *= d) : parts.push(cx.dim(d));
    const prod = parts.reduce((a, b) => cx.tmp("Mul", [a, b]), cx.i64([k]));
    cx.add("Cast", [cx.tmp("Reshape", [prod, cx.i64([])])], [out], { to: ELEM_OF[n.type.dtype] });
  },
  argmax: (cx, n, [x], out) => cx.add("Cast", [cx.tmp("ArgMax", [x], { axis: n.attrs.axis, keepdims: n.attrs.keepdims ? 1 : 0, select_last_index: 0 })], [out], { to: ELEM_OF.i32 }),
  stop_gradient: simple("Identity"),
  random_uniform: { unsupported: "random_uniform (dropout or a random draw) reads Kiln's seeded per-call streams, which no ONNX op reproduces", hint: "export an inference function (dropout is off outside the train block), or pass the random values in as an input" },
  all_finite: { unsupported: "all_finite is the loss scaler's overflow check, part of Kiln's mixed-precision training step", hint: "export the model's forward functions, or use --format torch for training" },
  // Sources are written by the graph writer (inputs, initializers), meta ops never survive autodiff.
  input: simple("Identity"),
  param: simple("Identity"),
  // A symbolic shape (zeros([B * T, D])) is the scalar expanded to the run-time shape.
  const: (cx, n, _ins, out) => {
    const shape = n.type.shape;
    if (shape.every((d) => typeof d === "number")) return cx.constant(n.type.dtype, shape as number[], new Array((shape as number[]).reduce((a, b) => a * b, 1)).fill(n.attrs.value));
    cx.add("Expand", [cx.constant(n.type.dtype, [], [n.attrs.value]), cx.shape(shape)], [out]);
  },
  gradient: { unsupported: "an unresolved gradient marker", hint: "this is a compiler bug: please report it" },
  // Row lookup (embedding, take): ONNX Gather along axis 0 takes i32 indices as they are.
  gather: (cx, _n, ins, out) => cx.add("Gather", ins, [out], { axis: 0 }),
  scatter_add: { unsupported: "scatter_add is gather's gradient, part of a training step", hint: "export the model's forward functions, or use --format torch for training" },
  all_reduce: { unsupported: "all_reduce (sync_batch_norm inside a data-parallel grad function)", hint: "export the model's forward functions, where sync_batch_norm is batch_norm" },
  cotangent: { unsupported: "an unresolved backward-rule placeholder", hint: "this is a compiler bug: please report it" },
};
