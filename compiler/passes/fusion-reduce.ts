// Fusion of elementwise producers into reductions (the reduce prologue), including the recomputation of a
// cheap shared producer so that neither its reduction nor its other consumers have to store and reload it.
import type { Graph, Node } from "../ir/graph.js";
import { guardKey } from "../ir/graph.js";
import { sameShape } from "../ir/types.js";
import { REDUCE_OPS, type PrimOp } from "../ops/types.js";
import { groupReads, isScalarConst, MAX_FUSED_OPS, narrowsToHalf } from "./fusion-groups.js";

const REDUCE = new Set<PrimOp>(REDUCE_OPS);

export function isReduction(op: PrimOp): boolean {
  return REDUCE.has(op);
}

/**
 * Buffers a prologue may read: with the output, the 8 storage buffers of a compatibility-mode WebGPU device
 * (the reduce shader has no packed-input form).
 */
export const MAX_PROLOGUE_INPUTS = 7;

/**
 * At most this many shared producers are recomputed per reduction, and never a transcendental one. Measured
 * (256x1024, one thread, interleaved runs of both builds on the 2-core dev machine, medians):
 * layer_norm recomputing `x - mean` in the variance's prologue went 0.42 -> 0.35 ms (one kernel and one
 * stored tensor fewer), while softmax recomputing `exp(x - max)` in its sum went 1.1 -> 3.2 ms: an f32x4 exp
 * costs more than storing and reloading the row.
 */
export const RECOMPUTE_MAX_OPS = 4;
const NOT_RECOMPUTED = new Set<PrimOp>(["exp", "log", "tanh", "sigmoid", "pow", "erf", "sin", "cos", "log1p", "expm1"]);


/**
 * Grows the prologue of reduction `r` (whose root is already set): its input and that input's elementwise
 * producers of the same shape and guards whose every consumer is in the group join it, up to
 * MAX_PROLOGUE_INPUTS distinct buffers read.
 */
export function growReduction(g: Graph, r: number, root: (number | undefined)[], canJoin: (p: number) => boolean, consumers: readonly number[][]): void {
  const n = g.nodes[r];
  const x = g.nodes[n.inputs[0]];
  const members = new Set<number>([r]);
  const reads = new Set<number>([x.id]);
  const work = [r];
  while (work.length) {
    const m = g.nodes[work.pop()!];
    for (const p of m.inputs) {
      const pn = g.nodes[p];
      if (root[p] !== undefined || !canJoin(p) || members.size >= MAX_FUSED_OPS) continue;
      if (!sameShape(pn.type.shape, x.type.shape) || guardKey(pn.guard) !== guardKey(n.guard)) continue;
      if (!consumers[p].every((c) => members.has(c))) continue;
      const after = new Set(reads);
      after.delete(p);
      for (const i of pn.inputs) if (!members.has(i) && i !== p && !isScalarConst(g.nodes[i])) after.add(i);
      if (after.size > MAX_PROLOGUE_INPUTS) continue;
      reads.clear();
      after.forEach((i) => reads.add(i));
      root[p] = r;
      members.add(p);
      work.push(p);
    }
  }
  // A chain that takes the whole output of a matmul is left to be its epilogue (fuseMatmulEpilogues, and the
  // int8 variants fuse bias + relu from there): same kernel count, and the reduction reads the chain's value.
  // Except a 16-bit result (mixed precision's `cast(cast(mm, f16), f32)`, e.g. conv's per-batch weight gradient
  // summed over the batch): the epilogue stores it in 16 bits and the widening stays in the prologue, so the value
  // exists only in 16 bits and is rounded once, as the precision pass means.
  const taker = [...members].find((id) => id !== r && g.nodes[id].inputs.some((i) => g.nodes[i].op === "matmul" && consumers[i].every((c) => members.has(c))));
  if (taker === undefined) return;
  if (narrowsToHalf(g, taker) && consumers[taker]!.every((c) => members.has(c) && g.nodes[c].op === "cast" && g.nodes[c].type.dtype === "f32")) {
    root[taker] = undefined;
    return;
  }
  for (const id of members) if (id !== r) root[id] = undefined;
}


/**
 * Duplicates cheap elementwise producers shared between a reduction's prologue and other elementwise consumers
 * (softmax's exp(x - max) feeds its sum and its divide; layer_norm's x - mean feeds the variance and the
 * output), so the reduction recomputes them and the originals fuse into their other consumers: the value is
 * never stored. A copy goes right after its original (topological order holds); ids are renumbered and
 * originals left without consumers are dropped.
 */
export function recomputeIntoReductions(g: Graph, pinned: ReadonlySet<number>, canJoin: (op: PrimOp) => boolean): Graph {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  const copies = new Map<number, ReadonlySet<number>>(); // reduction -> the producers it recomputes
  const via = new Map<number, number>(); // node -> the reduction whose copies it reads
  const copiedFor = new Map<number, number[]>(); // producer -> reductions with a copy of it
  for (const r of g.nodes) {
    if (!isReduction(r.op)) continue;
    const x = g.nodes[r.inputs[0]];
    const fusable = (c: Node) => canJoin(c.op) && sameShape(c.type.shape, x.type.shape) && guardKey(c.guard) === guardKey(r.guard);
    // The same-shape elementwise region above r whose outside consumers could take the originals.
    const region = new Set<number>();
    const work = [x.id];
    while (work.length && region.size < 64) {
      const q = g.nodes[work.pop()!];
      if (region.has(q.id) || pinned.has(q.id) || !fusable(q) || via.has(q.id)) continue;
      if (!consumers[q.id].every((c) => c === r.id || fusable(g.nodes[c]))) continue;
      region.add(q.id);
      work.push(...q.inputs);
    }
    // A member needs a copy when a consumer outside r's chain (or the original of such a member) reads it.
    const needs = new Set<number>();
    for (const q of [...region].sort((a, b) => b - a)) {
      if (consumers[q].some((c) => (c !== r.id && !region.has(c)) || needs.has(c))) needs.add(q);
    }
    if (needs.size === 0 || needs.size > RECOMPUTE_MAX_OPS || [...needs].some((q) => NOT_RECOMPUTED.has(g.nodes[q].op))) continue;
    // A copy reading a matmul would give the matmul two consumer groups, so no epilogue: one more kernel.
    if ([...needs].some((q) => g.nodes[q].inputs.some((i) => g.nodes[i].op === "matmul"))) continue;
    copies.set(r.id, needs);
    for (const q of needs) copiedFor.set(q, [...(copiedFor.get(q) ?? []), r.id]);
    for (const q of [...region, r.id]) if (!needs.has(q)) via.set(q, r.id);
  }
  if (copies.size === 0) return g;
  const id = new Array<number>(g.nodes.length);
  const copyId = new Map<string, number>();
  const nodes: Node[] = [];
  const mapIn = (i: number, r: number | undefined) => (r !== undefined && copies.get(r)!.has(i) ? copyId.get(`${i}:${r}`)! : id[i]);
  const guardOf = (n: Node) => (n.guard?.length ? { guard: n.guard.map((x) => ({ cond: id[x.cond], when: x.when })) } : {});
  for (const n of g.nodes) {
    id[n.id] = nodes.length;
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => mapIn(i, via.get(n.id))), ...guardOf(n) });
    for (const r of copiedFor.get(n.id) ?? []) {
      copyId.set(`${n.id}:${r}`, nodes.length);
      nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => mapIn(i, r)), ...guardOf(n) });
    }
  }
  return dropDead(renumbered(g, nodes, id), new Set([...pinned].map((p) => id[p])), canJoin);
}

function renumbered(g: Graph, nodes: Node[], id: readonly number[]): Graph {
  return {
    ...g,
    nodes,
    inputs: g.inputs.map((io) => ({ ...io, node: id[io.node] })),
    outputs: g.outputs.map((io) => ({ ...io, node: id[io.node] })),
    ...(g.updates ? { updates: g.updates.map((u) => ({ ...u, node: id[u.node] })) } : {}),
  };
}

/** Removes the elementwise nodes nobody reads any more (an original whose every consumer took a copy). */
function dropDead(g: Graph, pinned: ReadonlySet<number>, canJoin: (op: PrimOp) => boolean): Graph {
  const used = new Array<boolean>(g.nodes.length).fill(false);
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k];
    const live = used[k] || pinned.has(k) || !canJoin(n.op);
    if (!live) continue;
    used[k] = true;
    n.inputs.forEach((i) => (used[i] = true));
    n.guard?.forEach((x) => (used[x.cond] = true));
  }
  if (used.every(Boolean)) return g;
  const id = new Array<number>(g.nodes.length);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!used[n.id]) continue;
    id[n.id] = nodes.length;
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => id[i]), ...(n.guard?.length ? { guard: n.guard.map((x) => ({ cond: id[x.cond], when: x.when })) } : {}) });
  }
  return renumbered(g, nodes, id);
}

/**
 * A reduction whose input x is an elementwise root with other consumers (softmax's exp(x - max) feeds the sum
 * and the divide) computes x's group in its prologue and stores x as well (`x.storedBy = r`): one pass instead
 * of a kernel storing x and a reduction reading it back. Only when x and r are f32 and unguarded, x is not an
 * update (that keeps its in-place kernel), x's group holds no matmul, every other consumer of x comes after r
 * (x is written when r runs), and the kernel stays within MAX_PROLOGUE_INPUTS buffers read.
 */
export function fuseReduceStores(g: Graph, canJoin: (op: PrimOp) => boolean): Graph {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  const updates = new Set((g.updates ?? []).map((u) => u.node));
  const members = new Map<number, number[]>();
  for (const n of g.nodes) if (n.fused !== undefined) members.set(n.fused, [...(members.get(n.fused) ?? []), n.id]);
  const marks = new Map<number, number>();
  for (const r of g.nodes) {
    if (!isReduction(r.op) || r.guard?.length || r.type.dtype !== "f32") continue;
    const x = g.nodes[r.inputs[0]];
    if (x.fused !== undefined || x.storedBy !== undefined || marks.has(x.id) || !canJoin(x.op) || x.guard?.length) continue;
    if (x.type.dtype !== "f32" || updates.has(x.id) || !consumers[x.id].every((c) => c === r.id || c > r.id)) continue;
    const group = new Set([x.id, ...(members.get(x.id) ?? [])]);
    if ([...group].some((id) => !canJoin(g.nodes[id].op))) continue;
    if (groupReads(g, group).size > MAX_PROLOGUE_INPUTS - 1) continue;
    marks.set(x.id, r.id);
  }
  if (marks.size === 0) return g;
  return { ...g, nodes: g.nodes.map((n) => (marks.has(n.id) ? { ...n, storedBy: marks.get(n.id)! } : n)) };
}
