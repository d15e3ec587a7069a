// Pass "simplify": common-subexpression elimination (same op, inputs and attrs, incl. duplicate constants) and
// dead-node elimination, rebuilding each graph with dense ids in topological order.

import { GraphBuilder, type Graph, type IRModule } from "../ir/graph.js";
import { formatType } from "../ir/types.js";

export function simplifyGraph(g: Graph): Graph {
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (const o of g.outputs) live[o.node] = true;
  for (const i of g.inputs) live[i.node] = true; // inputs stay even when unused: they are the signature
  for (let i = g.nodes.length - 1; i >= 0; i--) if (live[i]) for (const x of g.nodes[i].inputs) live[x] = true;
  const b = new GraphBuilder();
  const remap = new Map<number, number>();
  const seen = new Map<string, number>();
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    const inputs = n.inputs.map((x) => remap.get(x)!);
    const key = n.op === "input" ? undefined : `${n.op}|${inputs.join(",")}|${JSON.stringify(n.attrs)}|${formatType(n.type)}`;
    const prev = key === undefined ? undefined : seen.get(key);
    if (prev !== undefined) {
      remap.set(n.id, prev);
      continue;
    }
    const id = b.add(n.op, inputs, n.attrs, n.type, n.span);
    if (key !== undefined) seen.set(key, id);
    remap.set(n.id, id);
  }
  return {
    ...g,
    nodes: b.nodes,
    inputs: g.inputs.map((i) => ({ ...i, node: remap.get(i.node)! })),
    outputs: g.outputs.map((o) => ({ ...o, node: remap.get(o.node)! })),
  };
}

export function simplify(m: IRModule): IRModule {
  return { ...m, functions: m.functions.map(simplifyGraph) };
}
