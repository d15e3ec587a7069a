// Codegen stage, planner for convolutions (implicit GEMM): a matmul whose left operand is conv2d's im2col rows,
// reshape(window(pad(x))), reads x itself and gathers each patch while packing (kernel.ts ConvGather), so the
// padded copy and the patch matrix are never stored. Only when the rows feed that one matmul (inference; in
// training the weight gradient reads the patches again and they stay a copy).
import type { Graph, Node } from "../ir/graph.js";
import type { ConvGather } from "./kernel.js";
import type { AttrsOf } from "../ops/types.js";

export interface ConvGathers {
  /** matmul node -> the convolution input it reads and how. */
  readonly of: ReadonlyMap<number, { readonly x: number; readonly conv: ConvGather; readonly ops: readonly string[] }>;
  /** The reshape, window and pad nodes read through a gather: no value, no step. */
  readonly nodes: ReadonlySet<number>;
}

/**
 * Finds the gathers. `ok(p, user)`: p may disappear into user (no output, guard or fused root, same guards);
 * `uses`: use counts; `rowsMerge(mm)`: the matmul runs as one gemm over all rows (plan-matmul.ts `merge`).
 */
export function convGathers(g: Graph, uses: readonly number[], ok: (p: Node, user: Node) => boolean, rowsMerge: (mm: Node) => boolean): ConvGathers {
  const of = new Map<number, { x: number; conv: ConvGather; ops: string[] }>();
  const nodes = new Set<number>();
  for (const mm of g.nodes) {
    if (mm.op !== "matmul" || mm.type.dtype !== "f32") continue;
    const rows = g.nodes[mm.inputs[0]];
    if (rows.op !== "reshape" || uses[rows.id] !== 1 || !ok(rows, mm)) continue;
    const win = g.nodes[rows.inputs[0]];
    if (win.op !== "window" || uses[win.id] !== 1 || !ok(win, rows)) continue;
    let x = g.nodes[win.inputs[0]];
    let pad: readonly [number, number] = [0, 0];
    const chain = [rows.id, win.id];
    if (x.op === "pad") {
      const a = x.attrs as AttrsOf["pad"];
      const [, , ph, pw] = a.pads;
      const flat = a.pads.slice(0, 2).every((p) => p.every((v) => v === 0));
      if (!flat || a.value !== 0 || ph[2] !== 0 || pw[2] !== 0 || uses[x.id] !== 1 || !ok(x, win)) continue;
      pad = [ph[0], pw[0]];
      chain.push(x.id);
      x = g.nodes[x.inputs[0]];
    }
    if (x.type.dtype !== "f32") continue;
    const [, C, H, W] = x.type.shape;
    const [, OH, OW, , KH, KW] = win.type.shape;
    const dims = [C, H, W, OH, OW, KH, KW];
    if (!dims.every((d) => typeof d === "number")) continue;
    // Rows [N*OH*OW, k] or [N, OH*OW, k] against a 2-D right operand: one gemm over every row.
    const k = (C as number) * (KH as number) * (KW as number);
    const rs = rows.type.shape;
    if (rs[rs.length - 1] !== k || (rs.length !== 2 && rs.length !== 3) || g.nodes[mm.inputs[1]].type.shape.length !== 2) continue;
    if (rs.length === 3 && (rs[1] !== (OH as number) * (OW as number) || !rowsMerge(mm))) continue;
    const a = win.attrs as AttrsOf["window"];
    of.set(mm.id, {
      x: x.id,
      ops: chain.length === 3 ? ["pad", "window"] : ["window"],
      conv: {
        C: C as number, H: H as number, W: W as number, KH: KH as number, KW: KW as number, OH: OH as number, OW: OW as number,
        stride: [a.stride[0], a.stride[1]], pad, dilation: [a.dilation[0], a.dilation[1]],
      },
    });
    for (const id of chain) nodes.add(id);
  }
  return { of, nodes };
}
