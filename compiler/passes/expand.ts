// Pass "expand": rewrites ops that exist for the front end and autodiff but have no kernel of their own into
// primitives the backends implement. Today: argmax(x, axis) = min over axis of where(x == max(x), iota, n).

import { GraphBuilder, withNodes, remapGuard, type Graph, type IRModule, type Node } from "../ir/graph.js";
import type { Dim } from "../ir/types.js";

function expandArgmax(b: GraphBuilder, n: Node<"argmax">, x: number): number {
  const xt = b.type(x);
  const { axis, keepdims } = n.attrs;
  const size = xt.shape[axis] as number;
  const keep: Dim[] = xt.shape.map((d, k) => (k === axis ? 1 : d));
  const m = b.add("max", [x], { axes: [axis], keepdims: true }, { dtype: xt.dtype, shape: keep });
  const hit = b.add("eq", [x, m], {}, { dtype: "bool", shape: xt.shape });
  const iota = b.add("iota", [], { n: size, dtype: "i32" }, { dtype: "i32", shape: [size] });
  const along: Dim[] = xt.shape.map((_, k) => (k === axis ? size : 1));
  const pos = b.add("reshape", [iota], { shape: along }, { dtype: "i32", shape: along });
  const none = b.add("const", [], { value: size }, { dtype: "i32", shape: [] });
  const idx = b.add("where", [hit, pos, none], {}, { dtype: "i32", shape: xt.shape });
  return b.add("min", [idx], { axes: [axis], keepdims }, n.type);
}

export function expandGraph(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === "argmax")) return g;
  const b = new GraphBuilder();
  const map: number[] = [];
  for (const n of g.nodes) {
    const guard = remapGuard(n.guard, (c) => map[c]);
    b.precision = n.precision; // the autocast region survives the rebuild
    if (n.op === "argmax") {
      b.guards = guard;
      map[n.id] = expandArgmax(b, n as Node<"argmax">, map[n.inputs[0]]);
      b.guards = [];
    } else map[n.id] = b.add(n.op, n.inputs.map((i) => map[i]), n.attrs, n.type, n.span, guard);
  }
  return withNodes(g, b.nodes, map);
}

export function expand(m: IRModule): IRModule {
  return { ...m, functions: m.functions.map(expandGraph) };
}
