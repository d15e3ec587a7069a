// Codegen stage, planner helper: the scalar expression of a fused group (passes/fusion.ts) and the broadcast
// flags of the buffers it reads; shared by elementwise, reduce-prologue and matmul-epilogue planning (and the
// `flag` of a kernel that clears an all_finite flag).
import type { Graph, Node } from "../ir/graph.js";
import type { Dim } from "../ir/types.js";
import type { EwExpr } from "./kernel.js";

/**
 * The expression of the group rooted at `root` (passes/fusion.ts): members (the root and nodes fused into it)
 * become shared sub-expressions, scalar constants are inlined, everything else is a buffer input (`bufs`).
 * With `leaf` (a matmul whose epilogue the group is), that node reads as input 0 and the buffers follow it.
 */
export function groupExpr(g: Graph, root: number, extraRoots: readonly number[] = [], leaf?: number): { exprOf: (id: number) => EwExpr; bufs: number[]; ops: string[] } {
  const roots = new Set([root, ...extraRoots]);
  const first = leaf === undefined ? 0 : 1;
  const bufs: number[] = [];
  const memo = new Map<number, EwExpr>();
  const ops: string[] = [];
  const exprOf = (id: number): EwExpr => {
    const src = g.nodes[id];
    if (id === leaf) return { t: "in", index: 0 };
    if (src.op === "const" && src.type.shape.length === 0) return { t: "const", value: (src.attrs as { value: number }).value, dtype: src.type.dtype };
    if (roots.has(id) || (src.fused !== undefined && roots.has(src.fused))) {
      let e = memo.get(id);
      if (!e) {
        e = { t: "op", op: src.op, attrs: src.attrs, dtype: src.type.dtype, args: src.inputs.map(exprOf) };
        memo.set(id, e);
        ops.push(src.op);
      }
      return e;
    }
    const at = bufs.indexOf(id);
    if (at >= 0) return { t: "in", index: first + at };
    bufs.push(id);
    return { t: "in", index: first + bufs.length - 1 };
  };
  return { exprOf, bufs, ops };
}

/** Per buffer, per axis of `out`: true where the buffer lacks the axis or has extent 1 there (broadcast). */
export function bcastFlags(g: Graph, bufs: readonly number[], out: readonly Dim[]): boolean[][] {
  return bufs.map((id) => {
    const s = g.nodes[id].type.shape;
    const pad = out.length - s.length;
    return out.map((d, k) => k < pad || (s[k - pad] === 1 && d !== 1));
  });
}

/** `flag: true` for the spec of a kernel rooted at `n` that clears an all_finite flag (kernel.ts "flag outputs"). */
export const flagOf = (n: Node): { flag?: true } => (n.finiteInto !== undefined ? { flag: true } : {});
