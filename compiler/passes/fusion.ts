// Pass "fusion": groups elementwise nodes into single kernels. A producer joins its consumer's group when every
// one of its consumers is in that group, it has the group's shape (no recomputation under broadcasting), the
// same guards, and it is not a function output or update. Members are marked `fused: root`; the planner builds
// one expression (a DAG when a member is used twice) per group, so no fused intermediate is ever materialised.
// A reduction is a group root too: its input's elementwise producers (of the input's shape) form its prologue
// (fusion-reduce.ts; cheap producers shared with other consumers are first duplicated so both sides fuse, and
// an expensive one is computed by the reduction and stored from there, `storedBy: reduction`);
// a matmul joins the elementwise group consuming it as an epilogue (fuseMatmulEpilogues); and elementwise
// consumers of a stored value join its kernel as extra outputs (`storedBy: root`, fusion-outputs.ts); and the
// kernels producing the inputs of an `all_finite` clear its flag themselves (`finiteInto`, fusion-finite.ts).
// `--dump-after fusion` shows every mark: "(fused into %r)" and "(stored by the kernel of %r)".

import type { Graph, IRModule, Node } from "../ir/graph.js";
import { guardKey } from "../ir/graph.js";
import { sameShape } from "../ir/types.js";
import { BINARY_OPS, COMPARE_OPS, UNARY_OPS, type PrimOp } from "../ops/types.js";
import { fuseReduceStores, growReduction, isReduction, recomputeIntoReductions } from "./fusion-reduce.js";
import { fuseExtraOutputs } from "./fusion-outputs.js";
import { fuseFiniteChecks } from "./fusion-finite.js";
import { MAX_FUSED_OPS, narrowsToHalf } from "./fusion-groups.js";

const ELEMENTWISE = new Set<PrimOp>([...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, "where", "cast"]);

export function isElementwise(op: PrimOp): boolean {
  return ELEMENTWISE.has(op);
}

/** Function outputs, updates and guard conditions: values that must be stored, so never fused away. */
function pinnedOf(g: Graph): Set<number> {
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  return pinned;
}

export function fuseGraph(g0: Graph): Graph {
  const g = recomputeIntoReductions(g0, pinnedOf(g0), isElementwise);
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  const pinned = pinnedOf(g);
  const root = new Array<number | undefined>(g.nodes.length);
  const updates = new Set<number>((g.updates ?? []).map((u) => u.node));
  // A matmul result rounded to 16 bits stays the root of its own group when the consumer is an update (which takes
  // no epilogue): the matmul then stores the 16-bit value instead of its f32 sums (mixed precision's weight
  // gradients, half the memory).
  const narrowedMatmul = (p: Node): boolean => narrowsToHalf(g, p.id) && g.nodes[p.inputs[0]].op === "matmul";
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const n = g.nodes[id];
    if (isReduction(n.op)) {
      root[id] = id;
      growReduction(g, id, root, (p) => !pinned.has(p) && isElementwise(g.nodes[p].op), consumers);
      continue;
    }
    if (!isElementwise(n.op) || root[id] !== undefined) continue;
    root[id] = id;
    const members = new Set<number>([id]);
    const work = [id];
    while (work.length) {
      const m = g.nodes[work.pop()!];
      for (const p of m.inputs) {
        const pn = g.nodes[p];
        if (root[p] !== undefined || pinned.has(p) || !isElementwise(pn.op) || members.size >= MAX_FUSED_OPS) continue;
        if (updates.has(id) && narrowedMatmul(pn)) continue;
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

/** What an epilogue may store: the f32 sums' own dtype, or f16/bf16 (a `cast` on store). */
const EPILOGUE_OUT = new Set(["f32", "f16", "bf16"]);

/** Most extra buffers an epilogue reads: a, b, these and out fit the 8 storage buffers of a WebGPU compat device. */
export const MAX_EPILOGUE_INPUTS = 4;

/**
 * Matmul epilogues: a matmul whose every consumer lies in one elementwise group of the matmul's shape and guards
 * joins that group (`fused: root`), so the planner emits one matmul kernel that applies the group's expression
 * to each finished sum and stores only the root. The matmul itself must not be pinned (an output, update or
 * guard) — the root may be an output, not an update; the matmul f32 and the root f32, f16 or bf16, operands of
 * rank >= 2 (the output is [batch..., M, N]); one matmul per group, and at most MAX_EPILOGUE_INPUTS other buffers
 * read by the group.
 */
export function fuseMatmulEpilogues(g: Graph): Graph {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  const rootOf = (id: number) => g.nodes[id].fused ?? id;
  const taken = new Set<number>();
  const updates = new Set<number>((g.updates ?? []).map((u) => u.node));
  const fusedInto = new Map<number, number>();
  for (const n of g.nodes) {
    if (n.op !== "matmul" || n.fused !== undefined || pinned.has(n.id) || n.type.dtype !== "f32") continue;
    if (n.inputs.some((i) => g.nodes[i].type.shape.length < 2) || consumers[n.id].length === 0) continue;
    const r = rootOf(consumers[n.id][0]);
    const root = g.nodes[r];
    // An update root keeps its elementwise kernel: that one may write into the param in place, which an epilogue
    // may not (sums of earlier K blocks are stored in the output before the epilogue reads its inputs).
    if (taken.has(r) || updates.has(r) || !isElementwise(root.op) || !EPILOGUE_OUT.has(root.type.dtype)) continue;
    if (!consumers[n.id].every((c) => isElementwise(g.nodes[c].op) && rootOf(c) === r)) continue;
    if (!sameShape(root.type.shape, n.type.shape) || guardKey(root.guard) !== guardKey(n.guard)) continue;
    const members = g.nodes.filter((m) => m.id === r || m.fused === r);
    if (members.some((m) => !isElementwise(m.op))) continue;
    const ids = new Set(members.map((m) => m.id));
    const extra = new Set<number>();
    for (const m of members) {
      for (const i of m.inputs) {
        const p = g.nodes[i];
        if (i !== n.id && !ids.has(i) && !(p.op === "const" && p.type.shape.length === 0)) extra.add(i);
      }
    }
    if (extra.size > MAX_EPILOGUE_INPUTS) continue;
    taken.add(r);
    fusedInto.set(n.id, r);
  }
  if (fusedInto.size === 0) return g;
  return { ...g, nodes: g.nodes.map((n) => (fusedInto.has(n.id) ? { ...n, fused: fusedInto.get(n.id)! } : n)) };
}

export function fusion(m: IRModule): IRModule {
  return {
    ...m,
    functions: m.functions.map((g) => fuseFiniteChecks(fuseExtraOutputs(fuseReduceStores(fuseMatmulEpilogues(fuseGraph(g)), isElementwise), isElementwise), isElementwise)),
  };
}
