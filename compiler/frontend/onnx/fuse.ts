// ONNX import, fusion: the layers that exporters spell out op by op become one node again before import, so the
// program reads `layer_norm(x, w, b)` and `gelu(x)` rather than nine and five lines of arithmetic (and compiles to
// Kiln's fused composites). torch 1.13 below opset 17 writes LayerNorm as ReduceMean, Sub, Pow, ReduceMean, Add,
// Sqrt, Div, Mul, Add; GELU as Div by sqrt(2), Erf, Add 1, Mul, Mul 0.5 (or the tanh form). A match needs every
// inner value used only inside the pattern; anything else is left as it was.

import type { OnnxNs } from "../../export/onnx/proto.js";
import { onnx } from "../../export/onnx/proto.js";
import { readTensor } from "./values.js";

type Node = OnnxNs.INodeProto;

class Graph {
  readonly producer = new Map<string, Node>();
  readonly uses = new Map<string, number>();
  private readonly scalars = new Map<string, number>();
  private readonly initDims = new Map<string, number[]>();
  constructor(g: OnnxNs.IGraphProto) {
    for (const t of g.initializer ?? []) this.initDims.set(t.name!, (t.dims ?? []).map(Number));
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
      const t = n.opType === "Constant" ? n.attribute?.find((a) => a.name === "value")?.t : undefined;
      if (t) this.noteScalar(n.output![0]!, t);
    }
    for (const o of g.output ?? []) this.uses.set(o.name!, (this.uses.get(o.name!) ?? 0) + 1);
    for (const t of g.initializer ?? []) this.noteScalar(t.name!, t);
  }
  private noteScalar(name: string, t: OnnxNs.ITensorProto): void {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT && t.dataType !== onnx.TensorProto.DataType.DOUBLE) return;
    try {
      const v = readTensor(t, "");
      if (v.data.length === 1) this.scalars.set(name, Number(v.data[0]));
    } catch {
      // A damaged tensor is reported by the importer proper.
    }
  }
  /** The node of type `op` making `name`, when nothing outside the pattern reads `name` (`uses` reads in all). */
  inner(name: string | undefined, op: string, uses = 1): Node | undefined {
    const n = name === undefined ? undefined : this.producer.get(name);
    return n?.opType === op && this.uses.get(name!) === uses ? n : undefined;
  }
  /** Whether `name` is a float constant within 1e-6 (relative) of `v`. */
  is(name: string | undefined, v: number): boolean {
    const x = name === undefined ? undefined : this.scalars.get(name);
    return x !== undefined && Math.abs(x - v) <= 1e-6 * Math.abs(v);
  }
  /** An initializer's dims, looking through the Identity nodes torch shares equal initializers with. */
  dims(name: string): number[] | undefined {
    const n = this.producer.get(name);
    return n?.opType === "Identity" && n.input?.[0] ? this.dims(n.input[0]) : this.initDims.get(name);
  }
  scalar(name: string): number | undefined {
    return this.scalars.get(name);
  }
}

/** The input of binary node `n` that is not `name` (either order), or undefined when `name` is not an input. */
function other(n: Node, name: string): string | undefined {
  const [a, b] = n.input ?? [];
  return a === name ? b : b === name ? a : undefined;
}
/** The operands of a commutative node as [the one matching `pick`, the other]. */
function split(n: Node, pick: (name: string) => boolean): [string, string] | undefined {
  const [a, b] = n.input ?? [];
  if (a === undefined || b === undefined) return undefined;
  return pick(a) ? [a, b] : pick(b) ? [b, a] : undefined;
}
const lastAxis = (n: Node) => {
  const axes = n.attribute?.find((a) => a.name === "axes")?.ints?.map(Number);
  return axes?.length === 1 && axes[0] === -1;
};

/** y = Add(Mul(Div(Sub(x, mean), Sqrt(Add(mean((x - mean)^2), eps))), gamma), beta) -> LayerNormalization. */
function layerNorm(g: Graph, add: Node): { node: Node; drop: Node[] } | undefined {
  for (const [mulOut, beta] of [[add.input?.[0], add.input?.[1]], [add.input?.[1], add.input?.[0]]]) {
    const mul = g.inner(mulOut, "Mul");
    if (!mul || !beta) continue;
    const s = split(mul, (i) => !!g.inner(i, "Div"));
    if (!s) continue;
    const [divOut, gamma] = s;
    const div = g.inner(divOut, "Div")!;
    const [dOut, sqrtOut] = div.input ?? [];
    const sqrt = g.inner(sqrtOut, "Sqrt"), sub = g.inner(dOut, "Sub", 2);
    const epsAdd = g.inner(sqrt?.input?.[0], "Add");
    const eps = epsAdd && split(epsAdd, (i) => !!g.inner(i, "ReduceMean"));
    const varMean = eps && g.inner(eps[0], "ReduceMean");
    const pow = g.inner(varMean?.input?.[0], "Pow");
    const [x, meanOut] = sub?.input ?? [];
    const mean = g.inner(meanOut, "ReduceMean");
    if (!sqrt || !sub || !epsAdd || !eps || !varMean || !pow || !mean || pow.input?.[0] !== dOut || !g.is(pow.input?.[1], 2) || mean.input?.[0] !== x) continue;
    if (!lastAxis(mean) || !lastAxis(varMean) || g.scalar(eps[1]) === undefined) continue;
    // layer_norm's weight and bias are vectors over the last axis: anything else stays spelled out.
    const [gd, bd] = [g.dims(gamma), g.dims(beta)];
    if (gd?.length !== 1 || bd?.length !== 1 || gd[0] !== bd[0]) continue;
    const epsilon = g.scalar(eps[1])!;
    const node: Node = { opType: "LayerNormalization", name: add.name, input: [x!, gamma, beta], output: [...(add.output ?? [])],
      attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }, { name: "epsilon", type: onnx.AttributeProto.AttributeType.FLOAT, f: epsilon }] };
    return { node, drop: [mul, div, sqrt, sub, epsAdd, varMean, pow, mean] };
  }
  return undefined;
}

/** y = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), or the tanh form, -> Gelu (ONNX opset 20's op). */
function gelu(g: Graph, last: Node): { node: Node; drop: Node[] } | undefined {
  const half = split(last, (i) => g.is(i, 0.5));
  const inner = half && g.inner(half[1], "Mul");
  if (!inner) return undefined;
  for (const [x, addOut] of [[inner.input?.[0], inner.input?.[1]], [inner.input?.[1], inner.input?.[0]]]) {
    const add = g.inner(addOut, "Add");
    const one = add && split(add, (i) => g.is(i, 1));
    if (!one || !x) continue;
    const erf = g.inner(one[1], "Erf"), tanh = g.inner(one[1], "Tanh");
    const make = (approximate: string, drop: Node[]) => ({
      node: { opType: "Gelu", name: last.name, input: [x], output: [...(last.output ?? [])], attribute: [{ name: "approximate", type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(approximate) }] },
      drop,
    });
    if (erf) {
      const div = g.inner(erf.input?.[0], "Div");
      if (div && div.input?.[0] === x && g.is(div.input?.[1], Math.SQRT2)) return make("none", [inner, add!, erf, div]);
    }
    if (tanh) {
      // tanh(0.7978846 * (x + 0.044715 * (x * (x * x))))
      const scale = g.inner(tanh.input?.[0], "Mul");
      const k = scale && split(scale, (i) => g.is(i, Math.sqrt(2 / Math.PI)));
      const sum = k && g.inner(k[1], "Add");
      const cubic = sum && other(sum, x);
      const c3 = cubic !== undefined ? g.inner(cubic, "Mul") : undefined;
      const k3 = c3 && split(c3, (i) => g.is(i, 0.044715));
      const x3 = k3 && g.inner(k3[1], "Mul");
      const x2 = x3 && other(x3, x);
      const sq = x2 !== undefined ? g.inner(x2, "Mul") : undefined;
      if (sq && sq.input?.[0] === x && sq.input?.[1] === x) return make("tanh", [inner, add!, tanh, scale!, sum!, c3!, x3!, sq]);
    }
  }
  return undefined;
}

/** The graph's nodes with every LayerNorm and GELU pattern replaced by one node, in the original order. */
export function fuse(graph: OnnxNs.IGraphProto): Node[] {
  const g = new Graph(graph);
  const nodes = graph.node ?? [];
  const replaced = new Map<Node, Node>();
  const dropped = new Set<Node>();
  for (const n of nodes) {
    const m = n.opType === "Add" ? layerNorm(g, n) : n.opType === "Mul" ? gelu(g, n) : undefined;
    if (!m || m.drop.some((d) => dropped.has(d))) continue;
    replaced.set(n, m.node);
    for (const d of m.drop) dropped.add(d);
  }
  return nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
}
