// Pass "fusion": groups elementwise nodes into single kernels. A producer joins its consumer's group when every
// one of its consumers is in that group, it has the group's shape (no recomputation under broadcasting), the
// same guards, and it is not a function output or update. Members are marked `fused: root`; the planner builds
// one expression (a DAG when a member is used twice) per group, so no fused intermediate is ever materialised.

import type { Graph, IRModule, Node } from "../ir/graph.js";
import { guardKey } from "../ir/graph.js";
import { sameShape } from "../ir/types.js";
import { BINARY_OPS, COMPARE_OPS, UNARY_OPS, type PrimOp } from "../ops/types.js";

const ELEMENTWISE = new Set<PrimOp>([...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, "where", "cast"]);

export function isElementwise(op: PrimOp): boolean {
  return ELEMENTWISE.has(op);
}

export function fuseGraph(g: Graph): Graph {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  const root = new Array<number | undefined>(g.nodes.length);
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const n = g.nodes[id];
    if (!isElementwise(n.op) || root[id] !== undefined) continue;
    root[id] = id;
    const members = new Set<number>([id]);
    const work = [id];
    while (work.length) {
      const m = g.nodes[work.pop()!];
      for (const p of m.inputs) {
        const pn = g.nodes[p];
        if (root[p] !== undefined || pinned.has(p) || !isElementwise(pn.op)) continue;
        if (!sameShape(pn.type.shape, n.type.shape) || guardKey(pn.guard) !== guardKey(n.guard)) continue;
        if (!consumers[p].every((c) => members.has(c))) continue;
        root[p] = id;
        members.add(p);
        work.push(p);
      }
    }
  }
  const nodes: Node[] = g.nodes.map((n) => (root[n.id] !== undefined && root[n.id] !== n.id ? { ...n, fused: root[n.id] } : n));
  return { ...g, nodes };
}

export function fusion(m: IRModule): IRModule {
  return { ...m, functions: m.functions.map(fuseGraph) };
}
