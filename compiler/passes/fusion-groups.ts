// Fusion, shared vocabulary of its steps: what a fused group (a kernel's root and its members) reads.
import type { Graph, Node } from "../ir/graph.js";

/**
 * Most ops one fused group may hold. The planner, the kernel-table key and both renderers walk a group's
 * expression recursively, and a loop of 1,024 iterations made one chain of thousands of ops (a stack overflow,
 * or minutes in Binaryen); a longer chain is split into several kernels instead.
 */
export const MAX_FUSED_OPS = 128;

/** A scalar constant: inlined into the kernel's expression, so no buffer. */
export const isScalarConst = (n: Node): boolean => n.op === "const" && n.type.shape.length === 0;

/** The buffers a group with these member ids reads: stored values outside it (scalar constants are inlined). */
export function groupReads(g: Graph, members: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  for (const id of members) for (const i of g.nodes[id].inputs) if (!members.has(i) && !isScalarConst(g.nodes[i])) out.add(i);
  return out;
}

/** A cast of an f32 value to f16 or bf16 (mixed precision's rounding of a matmul result, say). */
export function narrowsToHalf(g: Graph, id: number): boolean {
  const n = g.nodes[id];
  return n.op === "cast" && (n.type.dtype === "f16" || n.type.dtype === "bf16") && g.nodes[n.inputs[0]].type.dtype === "f32";
}
