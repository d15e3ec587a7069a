// Pass "nchw-grad": a convolution's output gradient dY [N, C, H, W] reaches its weight gradient and bias sum as
// reshape(permute(dY, [0, 2, 3, 1]), [N, H*W, C]), an NHWC copy (issue 19 item 1). The same value is
// permute(reshape(dY, [N, C, H*W]), [0, 2, 1]): a view and a swap the matmul folds into its operand loading
// (codegen/plan-matmul.ts), and a sum over (N, H*W) of it is dY's per-channel sum over (N, H, W). Rewritten so,
// no copy is left. `KILN_CONV_DY_NCHW=0` keeps the copy (A/B measurements; compiler/cache.ts keys on it).

import { GraphBuilder, withNodes, guardKey, remapGuard, type Graph, type IRModule, type Node } from "../ir/graph.js";
import type { AttrsOf } from "../ops/types.js";
import type { Dim } from "../ir/types.js";
import { mulDims } from "../ir/dim-expr.js";

export function nchwGradEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CONV_DY_NCHW;
  return env !== "0";
}

const same = (a: Dim | undefined, b: Dim | undefined): boolean => a === b;

/** The reshapes R = reshape(permute(X [N, C, H, W], [0, 2, 3, 1]), [N, H*W, C]) whose every user is a matmul reading it as its right operand or a sum over axes 0 and 1 (a sum alone too). */
function candidates(g: Graph): Set<number> {
  const users = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) users.set(i, [...(users.get(i) ?? []), n]);
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  const out = new Set<number>();
  for (const r of g.nodes) {
    if (r.op !== "reshape" || pinned.has(r.id)) continue;
    const p = g.nodes[r.inputs[0]];
    if (p.op !== "permute" || (p.attrs as AttrsOf["permute"]).perm.join() !== "0,2,3,1" || pinned.has(p.id)) continue;
    const x = g.nodes[p.inputs[0]];
    const [N, C, H, W] = x.type.shape;
    const rs = r.type.shape;
    // H and W may be symbolic: the rows' middle dim is then their product as the lowering wrote it.
    if (typeof C !== "number" || H === undefined || W === undefined || rs.length !== 3) continue;
    if (!same(rs[0], N) || !same(rs[1], mulDims(H, W)) || rs[2] !== C || guardKey(r.guard) !== guardKey(p.guard)) continue;
    const us = users.get(r.id) ?? [];
    const fine = (u: Node): boolean =>
      // As a right operand only: a left one read transposed would split the gemm over all rows into one per image.
      (u.op === "matmul" && u.inputs[1] === r.id && u.inputs[0] !== r.id) ||
      (u.op === "sum" && (u.attrs as AttrsOf["sum"]).axes.slice().sort().join() === "0,1");
    // A sum may read its own copy of R (autodiff's simplify folds broadcasts and does not always merge the two).
    if (us.length > 0 && us.every(fine)) out.add(r.id);
  }
  return out;
}

export function nchwGradGraph(g: Graph): Graph {
  const rs = candidates(g);
  if (rs.size === 0) return g;
  const b = new GraphBuilder();
  const map: number[] = [];
  for (const n of g.nodes) {
    const guard = remapGuard(n.guard, (c) => map[c]);
    b.precision = n.precision; // the autocast region survives the rebuild
    const add = (op: Parameters<GraphBuilder["add"]>[0], inputs: number[], attrs: unknown, type: Node["type"]): number =>
      b.add(op, inputs, attrs as never, type, n.span, guard);
    if (rs.has(n.id)) {
      // R = permute(reshape(X, [N, C, H*W]), [0, 2, 1]); the old permute and reshape become dead (simplify).
      const x = g.nodes[g.nodes[n.inputs[0]].inputs[0]];
      const [N, P, C] = n.type.shape;
      const v = add("reshape", [map[x.id]], { shape: [N, C, P] }, { dtype: x.type.dtype, shape: [N!, C!, P!] });
      map[n.id] = add("permute", [v], { perm: [0, 2, 1] }, n.type);
    } else if (n.op === "sum" && n.inputs.length === 1 && rs.has(n.inputs[0])) {
      // sum over (N, H*W) of R = dY's per-channel sum over (N, H, W), as [1, C, 1, 1] and then n's shape.
      const x = g.nodes[g.nodes[g.nodes[n.inputs[0]].inputs[0]].inputs[0]];
      const C = x.type.shape[1]!;
      const s = add("sum", [map[x.id]], { axes: [0, 2, 3], keepdims: true }, { dtype: n.type.dtype, shape: [1, C, 1, 1] });
      map[n.id] = add("reshape", [s], { shape: n.type.shape }, n.type);
    } else map[n.id] = b.add(n.op, n.inputs.map((i) => map[i]), n.attrs, n.type, n.span, guard);
  }
  return withNodes(g, b.nodes, map);
}

export function nchwGrad(m: IRModule): IRModule {
  if (!nchwGradEnabled()) return m;
  return { ...m, functions: m.functions.map(nchwGradGraph) };
}
