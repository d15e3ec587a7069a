// Codegen stage, planner for convolutions (implicit GEMM): a matmul whose left operand is conv2d's im2col rows,
// reshape(window(pad(x))), reads x itself and gathers each patch while packing (kernel.ts ConvGather), so the
// padded copy and the patch matrix are never stored. Only when the rows feed that one matmul, or besides it only
// weight gradients, which gather them too (plan-conv-wgrad.ts). Kernels larger than 1x1 only. Under mixed precision
// x may be f16/bf16 or the rows cast to them before the matmul (plan-conv-gather-half.ts).
import { guardKey, type Graph, type Node } from "../ir/graph.js";
import type { ConvGather } from "./kernel.js";
import type { AttrsOf } from "../ops/types.js";
import type { DType } from "../ir/types.js";
import { gatherableDtype, roundOf, throughCast } from "./plan-conv-gather-half.js";
import { wgradGatherEnabled, wgradReaders } from "./plan-conv-wgrad.js";

export interface Gather {
  readonly x: number;
  /** How the packer reads x: its storage dtype and the rounding of a folded cast of the rows (mixed precision). */
  readonly dtype: "f32" | "f16" | "bf16";
  readonly round?: "f16" | "bf16";
  readonly conv: ConvGather;
  readonly ops: readonly string[];
  /**
   * The product (or its epilogue's root, `root`) only goes back to NCHW, reshape [N, OH, OW, O] then permute
   * [0, 3, 1, 2], and every epilogue input is per channel: the matmul writes the permute's value directly
   * (kernel.ts convOut), as out[n] = w x patches(n)ᵀ.
   */
  readonly nchw?: { readonly root: number; readonly permute: number; readonly ops: readonly string[] };
  /** A weight gradient: the left operand is the patches transposed, [k, pixels] (plan-conv-wgrad.ts). */
  readonly trans?: true;
}

export interface ConvGathers {
  /** matmul node -> the convolution input it reads and how. */
  readonly of: ReadonlyMap<number, Gather>;
  /**
   * The reshape, window and pad nodes read through a gather, the reshape to NHWC of an `nchw` one and the
   * transposes of weight gradients: no value, no step.
   */
  readonly nodes: ReadonlySet<number>;
  /** Root (or matmul) of an `nchw` gather -> the matmul: its step is planned there, its value is never stored. */
  readonly nchwRoots: ReadonlyMap<number, number>;
  /** The permutes an `nchw` gather writes: a value, no step of their own. */
  readonly written: ReadonlySet<number>;
}

/**
 * Finds the gathers. `ok(p, user)`: p may disappear into user (no output, guard or fused root, same guards);
 * `uses`: use counts; `rowsMerge(mm)`: the matmul runs as one gemm over all rows (plan-matmul.ts `merge`); `perChannel(mm)`: its
 * right operand is a plain f32 transposed w and every epilogue input reads the same along the rows (for `nchw`);
 * `folded(id)`: that transpose is read by its matmul (plan-matmul.ts), for weight gradients; `castFolded(id)`: that
 * float cast is folded into its matmul's operand loading (mixed precision's rounding of the rows).
 */
export function convGathers(
  g: Graph, uses: readonly number[], ok: (p: Node, user: Node) => boolean, rowsMerge: (mm: Node) => boolean, perChannel: (mm: Node) => boolean,
  folded: (id: number) => boolean, castFolded: (id: number) => boolean = () => false,
): ConvGathers {
  const of = new Map<number, Gather>();
  const nodes = new Set<number>();
  const nchwRoots = new Map<number, number>();
  const written = new Set<number>();
  const userOf = new Map<number, Node>();
  const usersOf = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) {
    userOf.set(i, n);
    usersOf.set(i, [...(usersOf.get(i) ?? []), n]);
  }
  const wgrad = wgradGatherEnabled();
  for (const rows of g.nodes) {
    if (rows.op !== "reshape") continue;
    // The forward's matmul, and (training) weight gradients, which gather the patches as well; a weight gradient
    // alone gathers them too (a gradient whose loss value is unused).
    const users = usersOf.get(rows.id) ?? [];
    // Several products of the same patches (a strided conv's input gradient phases with the same taps and padding,
    // ops/conv-backward-phase.ts, share them) each gather them, when nothing else reads them. A product may read
    // the rows through a cast it folds (mixed precision); all of them the same way.
    const seen = users.map((u) => throughCast(u, usersOf, uses, castFolded));
    const reads = seen.filter(({ node: u, cast }) => u.op === "matmul" && u.inputs[0] === (cast ?? rows).id && u.inputs[1] !== (cast ?? rows).id && u.type.dtype === "f32");
    const fwds = reads.map((r) => r.node);
    const mm = fwds[0];
    const castOf = reads[0]?.cast;
    if (reads.some((r) => (r.cast ? !ok(rows, r.cast) || !ok(r.cast, r.node) : !ok(rows, r.node)) || (r.cast?.attrs as { to?: DType } | undefined)?.to !== (castOf?.attrs as { to?: DType } | undefined)?.to)) continue;
    if (fwds.length > 1 && fwds.length !== uses[rows.id]) continue;
    const readers = mm && uses[rows.id] === fwds.length ? [] : wgrad ? wgradReaders(g, rows, mm && (castOf ?? mm), usersOf, uses, folded, ok, castFolded) : undefined;
    if (!readers || (!mm && readers.length === 0)) continue;
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
    const xd = x.type.dtype;
    if (!gatherableDtype(xd)) continue;
    const [, C, H, W] = x.type.shape;
    const [, OH, OW, , KH, KW] = win.type.shape;
    const dims = [C, H, W, OH, OW, KH, KW];
    // Kernels over 1x1 only: a 1x1 convolution's patches are x itself, a case of its own (no gather needed).
    if (!dims.every((d) => typeof d === "number") || (KH === 1 && KW === 1)) continue;
    // Rows [N*OH*OW, k] or [N, OH*OW, k] against a 2-D right operand: one gemm over every row.
    const k = (C as number) * (KH as number) * (KW as number);
    const rs = rows.type.shape;
    if (rs[rs.length - 1] !== k || (rs.length !== 2 && rs.length !== 3) || (rs.length === 3 && rs[1] !== (OH as number) * (OW as number))) continue;
    if (fwds.some((f) => g.nodes[f.inputs[1]].type.shape.length !== 2 || (rs.length === 3 && !rowsMerge(f)))) continue;
    const a = win.attrs as AttrsOf["window"];
    const conv: ConvGather = {
      C: C as number, H: H as number, W: W as number, KH: KH as number, KW: KW as number, OH: OH as number, OW: OW as number,
      stride: [a.stride[0], a.stride[1]], pad, dilation: [a.dilation[0], a.dilation[1]],
    };
    const ops = chain.length === 3 ? ["pad", "window"] : ["window"];
    const dtype = xd as Gather["dtype"];
    const fwdRound = roundOf(g, castOf ? [castOf] : [], xd);
    fwds.forEach((f, i) => {
      const nchw = backToNchw(g, f, uses, userOf, ok, perChannel, OH as number, OW as number);
      if (nchw) {
        nodes.add(nchw.reshape);
        nchwRoots.set(nchw.root, f.id);
        written.add(nchw.permute);
      }
      // The first product's step names the pad and window.
      of.set(f.id, { ...(nchw ? { nchw: { root: nchw.root, permute: nchw.permute, ops: nchw.ops } } : {}), x: x.id, dtype, ...(fwdRound ? { round: fwdRound } : {}), ops: i === 0 ? ops : [], conv });
    });
    // Without a forward matmul the first weight gradient's step names the window.
    readers.forEach((r, i) => {
      const round = roundOf(g, r.casts.map((c) => g.nodes[c]), xd);
      of.set(r.matmul, { x: x.id, dtype, ...(round ? { round } : {}), ops: [...(mm || i > 0 ? [] : ops), "permute"], conv, trans: true });
      nodes.add(r.permute);
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
