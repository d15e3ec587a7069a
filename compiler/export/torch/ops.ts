// Torch export, the op table: one entry per IR primitive, each a Python expression over its inputs' names with
// torch's functional ops. A mapped type over PrimOp, so a new primitive without an entry fails the type check.

import type { Node } from "../../ir/graph.js";
import type { DType, Shape } from "../../ir/types.js";
import type { AttrsOf, PrimOp } from "../../ops/types.js";

export const TORCH_DTYPE: Record<DType, string> = { f32: "torch.float32", f16: "torch.float16", bf16: "torch.bfloat16", f64: "torch.float64", i32: "torch.int32", i8: "torch.int8", u8: "torch.uint8", bool: "torch.bool" };

/**
 * How the expression reads named dims and the device: `dim(d)` is a Python int expression, a derived dim ("3*B",
 * "(H+1)/2") int arithmetic over the inputs' shapes (compiler/export/dim-expr.ts).
 */
export interface PyScope {
  dim(d: string): string;
  /** A Python expression for a float/int literal (inf and nan spelled for Python). */
  num(v: number): string;
}

export class TorchUnmappable extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

type Expr<P extends PrimOp> = (n: Node<P>, ins: string[], s: PyScope) => string;

export function pyNum(v: number): string {
  if (Number.isNaN(v)) return "math.nan";
  if (v === Infinity) return "math.inf";
  if (v === -Infinity) return "-math.inf";
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

export function pyShape(shape: Shape, s: PyScope): string {
  return `(${shape.map((d) => (typeof d === "number" ? String(d) : s.dim(d))).join(", ")}${shape.length === 1 ? "," : ""})`;
}

const fn = (name: string): Expr<PrimOp> => (_n, ins) => `${name}(${ins.join(", ")})`;
const infix = (op: string): Expr<PrimOp> => (_n, [a, b]) => `(${a} ${op} ${b})`;
function reduce(name: string): Expr<"sum" | "mean" | "max" | "min"> {
  return (n, [x]) => {
    const { axes, keepdims } = n.attrs as AttrsOf["sum"];
    return axes.length === 0 ? x : `${name}(${x}, dim=(${axes.join(", ")},), keepdim=${keepdims ? "True" : "False"})`;
  };
}

export const TORCH_OPS: { [P in PrimOp]: Expr<P> } = {
  neg: (_n, [a]) => `(-${a})`,
  exp: fn("torch.exp"),
  log: fn("torch.log"),
  sqrt: fn("torch.sqrt"),
  rsqrt: fn("torch.rsqrt"),
  abs: fn("torch.abs"),
  tanh: fn("torch.tanh"),
  sigmoid: fn("torch.sigmoid"),
  relu: fn("torch.relu"),
  erf: fn("torch.erf"),
  sin: fn("torch.sin"),
  cos: fn("torch.cos"),
  log1p: fn("torch.log1p"),
  expm1: fn("torch.expm1"),
  sign: fn("torch.sign"),
  floor: fn("torch.floor"),
  ceil: fn("torch.ceil"),
  round: fn("torch.round"),
  remainder: fn("torch.remainder"),
  add: infix("+"),
  sub: infix("-"),
  mul: infix("*"),
  // Kiln's integer division truncates toward zero (and x / 0 is 0 there: not reproduced).
  div: (n, [a, b]) => (n.type.dtype.startsWith("f") || n.type.dtype === "bf16" ? `(${a} / ${b})` : `torch.div(${a}, ${b}, rounding_mode="trunc")`),
  pow: fn("torch.pow"),
  maximum: fn("torch.maximum"),
  minimum: fn("torch.minimum"),
  eq: infix("=="),
  ne: infix("!="),
  lt: infix("<"),
  le: infix("<="),
  gt: infix(">"),
  ge: infix(">="),
  sum: reduce("torch.sum"),
  mean: reduce("torch.mean"),
  max: reduce("torch.amax"),
  min: reduce("torch.amin"),
  reshape: (n, [x], s) => `${x}.reshape(${pyShape(n.attrs.shape, s)})`,
  permute: (n, [x]) => `${x}.permute(${n.attrs.perm.join(", ")})`,
  broadcast_to: (n, [x], s) => `${x}.expand(${pyShape(n.attrs.shape, s)})`,
  // A symbolic end (pos[0:T]) is the size of the input axis it names.
  slice: (n, [x], s) => `${x}[${"(slice(None),) * " + n.attrs.axis} + (slice(${n.attrs.start}, ${typeof n.attrs.end === "number" ? n.attrs.end : s.dim(n.attrs.end)}, ${n.attrs.step ?? 1}),)]`,
  concat: (n, ins) => `torch.cat([${ins.join(", ")}], dim=${n.attrs.axis})`,
  pad: (n, [x]) => {
    const { pads, value } = n.attrs;
    const rank = pads.length;
    let y = x;
    // Interior padding (conv_transpose2d's zero insertion), one axis k at a time: a new axis after k padded to
    // interior + 1 wide, merged into k, the fill after the last element cut off. The input's size d along k
    // (known: Kiln pads only known sizes inside) is recovered from the output's.
    pads.forEach(([lo, hi, it], k) => {
      if (it === 0) return;
      const d = ((n.type.shape[k] as number) - lo - hi + it) / (it + 1);
      const pairs = [...Array<number>(2 * (rank - k - 1)).fill(0), 0, it];
      y = `F.pad(${y}.unsqueeze(${k + 1}), (${pairs.join(", ")}), value=${pyNum(value)}).flatten(${k}, ${k + 1}).narrow(${k}, 0, ${(d - 1) * (it + 1) + 1})`;
    });
    if (pads.every((p) => p[0] === 0 && p[1] === 0)) return y;
    // F.pad lists (lo, hi) pairs from the last axis backwards.
    const pairs = [...pads].reverse().flatMap((p) => [p[0], p[1]]);
    return `F.pad(${y}, (${pairs.join(", ")}), value=${pyNum(value)})`;
  },
  window: (n, [x], s) => {
    // im2col as a view: F.unfold gives [N, C*KH*KW, OH*OW]; Kiln's layout is [N, OH, OW, C, KH, KW].
    const [N, OH, OW, C, KH, KW] = n.type.shape;
    const a = n.attrs;
    const cols = `F.unfold(${x}, kernel_size=(${a.kernel.join(", ")}), dilation=(${a.dilation.join(", ")}), stride=(${a.stride.join(", ")}))`;
    return `${cols}.reshape(${pyShape([N, C, KH, KW, OH, OW], s)}).permute(0, 4, 5, 1, 2, 3)`;
  },
  depthwise_conv2d: (n, [x, w]) => {
    // F.pad takes (left, right, top, bottom) and crops where they are negative.
    const [[t, b], [l, r]] = n.attrs.pads;
    const xp = [t, b, l, r].every((v) => v === 0) ? x : `F.pad(${x}, (${l}, ${r}, ${t}, ${b}))`;
    return `F.conv2d(${xp}, ${w}, stride=(${n.attrs.stride.join(", ")}), dilation=(${n.attrs.dilation.join(", ")}), groups=${n.type.shape[1]})`;
  },
  where: fn("torch.where"),
  cast: (n, [x]) => `${x}.to(${TORCH_DTYPE[n.attrs.to]})`,
  matmul: fn("torch.matmul"),
  iota: (n, _ins, s) => `torch.arange(${typeof n.attrs.n === "number" ? n.attrs.n : s.dim(n.attrs.n)}, dtype=torch.int32, device=dev)`,
  dim_size: (n, _ins, s) => `torch.tensor(${n.attrs.dims.map((d) => (typeof d === "number" ? String(d) : s.dim(d))).join(" * ") || "1"}, dtype=${TORCH_DTYPE[n.type.dtype]}, device=dev)`,
  argmax: (n, [x]) => `torch.argmax(${x}, dim=${n.attrs.axis}, keepdim=${n.attrs.keepdims ? "True" : "False"}).to(torch.int32)`,
  stop_gradient: (_n, [x]) => `${x}.detach()`,
  // Dropout's mask: torch's generator, not Kiln's seeded streams (the same distribution, other values).
  random_uniform: (n, _ins, s) => `torch.rand(${pyShape(n.attrs.shape, s)}, device=dev)`,
  all_finite: (_n, ins) => `torch.stack([torch.isfinite(t).all() for t in (${ins.join(", ")},)]).all()`,
  input: (n) => (n.attrs as { name: string }).name,
  param: () => {
    throw new Error("internal: params are read by the writer");
  },
  const: (n, _ins, s) => {
    const shape = n.type.shape;
    const v = n.type.dtype === "bool" ? (n.attrs.value ? "True" : "False") : n.type.dtype.startsWith("i") || n.type.dtype === "u8" ? String(n.attrs.value) : s.num(n.attrs.value);
    return shape.length === 0 ? `torch.tensor(${v}, dtype=${TORCH_DTYPE[n.type.dtype]}, device=dev)` : `torch.full(${pyShape(shape, s)}, ${v}, dtype=${TORCH_DTYPE[n.type.dtype]}, device=dev)`;
  },
  gradient: () => {
    throw new TorchUnmappable("an unresolved gradient marker", "this is a compiler bug: please report it");
  },
  gather: (_n, [table, ids]) => `${table}[${ids}.long()]`,
  scatter_add: () => {
    throw new TorchUnmappable("scatter_add (gather's gradient) outside a gradient", "this is a compiler bug: please report it");
  },
  // Only a data-parallel grad function has one (sync_batch_norm); exports read the step, where it is batch_norm.
  all_reduce: () => {
    throw new TorchUnmappable("all_reduce (sync_batch_norm inside a data-parallel grad function)", "export the model's forward or its train step, where sync_batch_norm is batch_norm");
  },
  cotangent: () => {
    throw new TorchUnmappable("an unresolved backward-rule placeholder", "this is a compiler bug: please report it");
  },
};
