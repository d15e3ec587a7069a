// Codegen stage, planner for convolutions (implicit GEMM): a matmul whose left operand is conv2d's im2col rows,
// reshape(window(pad(x))), reads x itself and gathers each patch while packing (kernel.ts ConvGather), so the
// padded copy and the patch matrix are never stored. Only when the rows feed that one matmul (inference; in
// training the weight gradient reads the patches again and they stay a copy). Kernels larger than 1x1 only.
import { guardKey, type Graph, type Node } from "../ir/graph.js";
import type { ConvGather } from "./kernel.js";
import type { AttrsOf } from "../ops/types.js";

export interface Gather {
  readonly x: number;
  readonly conv: ConvGather;
  readonly ops: readonly string[];
  /**
   * The product (or its epilogue's root, `root`) only goes back to NCHW, reshape [N, OH, OW, O] then permute
   * [0, 3, 1, 2], and every epilogue input is per channel: the matmul writes the permute's value directly
   * (kernel.ts convOut), as out[n] = w x patches(n)ᵀ.
   */
  readonly nchw?: { readonly root: number; readonly permute: number; readonly ops: readonly string[] };
}

export interface ConvGathers {
  /** matmul node -> the convolution input it reads and how. */
  readonly of: ReadonlyMap<number, Gather>;
  /** The reshape, window and pad nodes read through a gather, and the reshape to NHWC of an `nchw` one: no value, no step. */
  readonly nodes: ReadonlySet<number>;
  /** Root (or matmul) of an `nchw` gather -> the matmul: its step is planned there, its value is never stored. */
  readonly nchwRoots: ReadonlyMap<number, number>;
  /** The permutes an `nchw` gather writes: a value, no step of their own. */
  readonly written: ReadonlySet<number>;
}

/**
 * Finds the gathers. `ok(p, user)`: p may disappear into user (no output, guard or fused root, same guards);
 * `uses`: use counts; `rowsMerge(mm)`: the matmul runs as one gemm over all rows (plan-matmul.ts `merge`); `perChannel(mm)`: its
 * right operand is a plain f32 transposed w and every epilogue input reads the same along the rows (for `nchw`).
 */
export function convGathers(
  g: Graph, uses: readonly number[], ok: (p: Node, user: Node) => boolean, rowsMerge: (mm: Node) => boolean, perChannel: (mm: Node) => boolean,
): ConvGathers {
  const of = new Map<number, Gather>();
  const nodes = new Set<number>();
  const nchwRoots = new Map<number, number>();
  const written = new Set<number>();
  const userOf = new Map<number, Node>();
  for (const n of g.nodes) for (const i of n.inputs) userOf.set(i, n);
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
    // Kernels over 1x1 only: a 1x1 convolution's patches are x itself, a case of its own (no gather needed).
    if (!dims.every((d) => typeof d === "number") || (KH === 1 && KW === 1)) continue;
    // Rows [N*OH*OW, k] or [N, OH*OW, k] against a 2-D right operand: one gemm over every row.
    const k = (C as number) * (KH as number) * (KW as number);
    const rs = rows.type.shape;
    if (rs[rs.length - 1] !== k || (rs.length !== 2 && rs.length !== 3) || g.nodes[mm.inputs[1]].type.shape.length !== 2) continue;
    if (rs.length === 3 && (rs[1] !== (OH as number) * (OW as number) || !rowsMerge(mm))) continue;
    const a = win.attrs as AttrsOf["window"];
    const nchw = backToNchw(g, mm, uses, userOf, ok, perChannel, OH as number, OW as number);
    if (nchw) {
      nodes.add(nchw.reshape);
      nchwRoots.set(nchw.root, mm.id);
      written.add(nchw.permute);
    }
    of.set(mm.id, {
      ...(nchw ? { nchw: { root: nchw.root, permute: nchw.permute, ops: nchw.ops } } : {}),
      x: x.id,
      ops: chain.length === 3 ? ["pad", "window"] : ["window"],
      conv: {
        C: C as number, H: H as number, W: W as number, KH: KH as number, KW: KW as number, OH: OH as number, OW: OW as number,
        stride: [a.stride[0], a.stride[1]], pad, dilation: [a.dilation[0], a.dilation[1]],
      },
    });
    for (const id of chain) nodes.add(id);
  }
  return { of, nodes, nchwRoots, written };
}

/** The reshape to [N, OH, OW, O] and permute to NCHW after the matmul (or its epilogue's root), when only they follow. */
function backToNchw(
  g: Graph, mm: Node, uses: readonly number[], userOf: ReadonlyMap<number, Node>, ok: (p: Node, user: Node) => boolean, perChannel: (mm: Node) => boolean,
  OH: number, OW: number,
): { root: number; reshape: number; permute: number; ops: string[] } | undefined {
  const root = mm.fused !== undefined ? g.nodes[mm.fused] : mm;
  const r = userOf.get(root.id);
  if (uses[root.id] !== 1 || !r || r.op !== "reshape" || r.type.shape.length !== 4 || uses[r.id] !== 1 || !ok(r, mm)) return undefined;
  const p = userOf.get(r.id);
  const perm = p?.op === "permute" ? (p.attrs as AttrsOf["permute"]).perm : [];
  if (!p || perm.join() !== "0,3,1,2" || root.type.dtype !== "f32" || p.type.dtype !== "f32" || root.finiteInto !== undefined || !perChannel(mm)) return undefined;
  // The root is a fused group's root (movable would refuse it): only its single use and guards matter.
  if (guardKey(root.guard) !== guardKey(p.guard) || guardKey(r.guard) !== guardKey(p.guard)) return undefined;
  if ((g.updates ?? []).some((u) => u.node === root.id)) return undefined;
  const [, oh, ow, o] = r.type.shape;
  if (oh !== OH || ow !== OW || o !== root.type.shape[root.type.shape.length - 1]) return undefined;
  return { root: root.id, reshape: r.id, permute: p.id, ops: ["reshape", "permute"] };
}
