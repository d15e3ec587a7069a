// Fusion of `all_finite` (the loss scaler's overflow check) into the kernels that produce its inputs: each such
// kernel also clears the all_finite node's one-element flag when a value it stores is not finite (`finiteInto`
// on the kernel's root), so the check reads no memory of its own. An input whose kernel cannot do it (a copy, a
// guarded or value-less node, a kernel at its buffer limit) keeps a standalone `finite` kernel (codegen/plan.ts).
import type { Graph, Node } from "../ir/graph.js";
import { isFloat } from "../ir/types.js";
import type { PrimOp } from "../ops/types.js";
import { MAX_KERNEL_BUFFERS } from "./fusion-outputs.js";
import { isReduction } from "./fusion-reduce.js";
import { groupReads } from "./fusion-groups.js";

/** Ops whose result is finite exactly when their input is: the check may look through them to the producer. */
const SAME_FINITENESS = new Set<PrimOp>(["reshape", "stop_gradient", "permute"]);

/** A widening float cast (f16/bf16 -> f32) keeps every value, Inf and NaN included. */
function widens(g: Graph, n: Node): boolean {
  if (n.op !== "cast" || n.type.dtype !== "f32") return false;
  const from = g.nodes[n.inputs[0]].type.dtype;
  return from === "f16" || from === "bf16";
}

/**
 * The nodes an all_finite input may be checked at, outermost first: the input, then through reshapes, permutes
 * and widening casts to the value they were made from. The planner walks the same chain to find the kernel
 * marked for it.
 */
export function finiteChain(g: Graph, x: number): number[] {
  const chain: number[] = [];
  for (let n = g.nodes[x]; ; n = g.nodes[n.inputs[0]]) {
    chain.push(n.id);
    if (!SAME_FINITENESS.has(n.op) && !widens(g, n)) return chain;
  }
}

/** A view of a finite constant (a zero gradient is `broadcast_to(0)`): finite without a check. */
export function finiteConstant(g: Graph, x: number): boolean {
  let n = g.nodes[x];
  while (SAME_FINITENESS.has(n.op) || n.op === "broadcast_to") n = g.nodes[n.inputs[0]];
  return n.op === "const" && Number.isFinite((n.attrs as { value: number }).value);
}

/**
 * Buffers the kernel rooted at `r` binds (reads plus outputs; a matmul's packing scratch is wasm working space),
 * or undefined when it is not an unguarded elementwise, reduce or matmul kernel storing a float value.
 */
function kernelBuffers(g: Graph, r: Node, members: readonly Node[], isElementwise: (op: PrimOp) => boolean): number | undefined {
  if (r.guard?.length || r.finiteInto !== undefined || !isFloat(r.type.dtype)) return undefined;
  if (!isElementwise(r.op) && !isReduction(r.op) && r.op !== "matmul") return undefined;
  if (!members.every((m) => m === r || m.op === "matmul" || isElementwise(m.op))) return undefined;
  // Extra outputs (fusion-outputs.ts) and a reduction's stored prologue value are written by the same kernel.
  return groupReads(g, new Set(members.map((m) => m.id))).size + 1 + g.nodes.filter((n) => n.storedBy === r.id).length;
}

/**
 * Marks `finiteInto: F` on the kernel root that produces each input of every unguarded all_finite node F (found
 * through finiteChain), when that kernel is an elementwise, reduce or matmul kernel with room for one more
 * buffer. Runs after every other fusion step (the groups and their buffers are final).
 */
export function fuseFiniteChecks(g: Graph, isElementwise: (op: PrimOp) => boolean): Graph {
  const members = new Map<number, Node[]>();
  for (const n of g.nodes) {
    const r = n.fused ?? n.id;
    members.set(r, [...(members.get(r) ?? []), n]);
  }
  const marks = new Map<number, number>();
  for (const f of g.nodes) {
    if (f.op !== "all_finite" || f.guard?.length) continue;
    for (const x of f.inputs) {
      for (const c of finiteChain(g, x)) {
        const n = g.nodes[c];
        if (marks.has(c) || n.fused !== undefined || n.storedBy !== undefined) continue;
        const bufs = kernelBuffers(g, n, members.get(c) ?? [n], isElementwise);
        if (bufs === undefined || bufs + 1 > MAX_KERNEL_BUFFERS) continue;
        marks.set(c, f.id);
        break;
      }
    }
  }
  if (marks.size === 0) return g;
  return { ...g, nodes: g.nodes.map((n) => (marks.has(n.id) ? { ...n, finiteInto: marks.get(n.id)! } : n)) };
}
