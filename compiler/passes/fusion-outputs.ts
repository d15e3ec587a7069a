// Multi-output elementwise kernels: a value that must be stored anyway (a function output or a param update)
// keeps its kernel, and elementwise consumers of it with its shape join that kernel as extra outputs, so
// e.g. the f16 copy `cast(W_new, f16)` of an updated master weight costs no kernel and no reload of W_new.
import type { Graph } from "../ir/graph.js";
import { guardKey } from "../ir/graph.js";
import { sameShape } from "../ir/types.js";
import type { PrimOp } from "../ops/types.js";
import { groupReads } from "./fusion-groups.js";

/** Inputs plus outputs of one kernel: the 8 storage buffers of a compatibility-mode WebGPU device. */
export const MAX_KERNEL_BUFFERS = 8;


/**
 * Marks `storedBy: P` on the root Y of each elementwise group that consumes a pinned, unguarded elementwise
 * root P when: Y has P's shape and no guard, Y is not an update reading its own param (in place instead), every buffer Y's group reads exists before P's kernel runs
 * (defined earlier than P, or P itself), neither group holds a matmul (an epilogue) and the joint kernel stays
 * within MAX_KERNEL_BUFFERS. Runs after the grouping (fused marks are final).
 */
export function fuseExtraOutputs(g: Graph, isElementwise: (op: PrimOp) => boolean): Graph {
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  const members = new Map<number, number[]>();
  for (const n of g.nodes) {
    const r = n.fused ?? n.id;
    members.set(r, [...(members.get(r) ?? []), n.id]);
  }
  const rootOf = (id: number) => g.nodes[id].fused ?? id;
  const plainGroup = (r: number) => (members.get(r) ?? [r]).every((id) => isElementwise(g.nodes[id].op));
  /** Buffers a group reads (stored values outside it; scalar constants are inlined). */
  const reads = (r: number): Set<number> => groupReads(g, new Set(members.get(r) ?? [r]));
  const updated = new Map((g.updates ?? []).map((u) => [u.node, u.param]));
  const storedBy = new Map<number, number>();
  const hosts = new Set<number>();
  for (const p of g.nodes) {
    if (!pinned.has(p.id) || p.fused !== undefined || !isElementwise(p.op) || p.guard?.length) continue;
    if (storedBy.has(p.id) || p.storedBy !== undefined || !plainGroup(p.id)) continue;
    const ins = reads(p.id);
    let outs = 1;
    const consumers = g.nodes.filter((c) => c.inputs.includes(p.id)).map((c) => rootOf(c.id));
    for (const y of [...new Set(consumers)].sort((a, b) => a - b)) {
      const yn = g.nodes[y];
      if (y === p.id || storedBy.has(y) || yn.storedBy !== undefined || hosts.has(y) || !isElementwise(yn.op) || !plainGroup(y)) continue;
      if (!sameShape(yn.type.shape, p.type.shape) || guardKey(yn.guard) !== "") continue;
      const yReads = reads(y);
      // An update that reads its param's old value keeps its own kernel, which writes it into the param in
      // place (runtime/wasm/memory-plan.ts); an extra output would take scratch and a copy back instead.
      const param = updated.get(y);
      if (param !== undefined && [...yReads].some((i) => g.nodes[i].op === "param" && (g.nodes[i].attrs as { name: string }).name === param)) continue;
      yReads.delete(p.id);
      // A value stored by a reduction's kernel (fusion-reduce.ts) exists from that reduction on.
      if ([...yReads].some((i) => Math.max(i, g.nodes[i].storedBy ?? i) > p.id)) continue;
      const joint = new Set([...ins, ...yReads]);
      if (joint.size + outs + 1 > MAX_KERNEL_BUFFERS) continue;
      joint.forEach((i) => ins.add(i));
      outs++;
      storedBy.set(y, p.id);
      hosts.add(p.id);
    }
  }
  if (storedBy.size === 0) return g;
  return { ...g, nodes: g.nodes.map((n) => (storedBy.has(n.id) ? { ...n, storedBy: storedBy.get(n.id)! } : n)) };
}
