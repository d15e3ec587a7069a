// Codegen stage, planner for the backward of softmax and log_softmax over the last axis. After autodiff,
// simplify-broadcast and fusion, with the forward's exps %e and sums %s stored by its exp_sum_rows kernel
// (plan-rows.ts), the gradient dx of an upstream gradient g is
//   softmax:     %r = sum(-(g / %s) * (%e / %s)) (last axis, keepdims; the product fused into the sum)
//                dx = (g / %s + %r) * %e
//   log_softmax: %r = sum(-g); %q = %r / %s (a [rows, 1] kernel of its own); dx = g + %q * %e
// i.e. a row sum kernel and an elementwise kernel (and %q's). This plans one softmax_grad_rows kernel (kernel.ts)
// at dx instead, which reads each row once for the sum and once more, from L1, to write dx; %r and %q are never
// stored. The expressions are the fused groups' own, so any such chain matches: a row sum over the last axis
// whose value (maybe through one group of [rows, 1] nodes) feeds one elementwise group of the row's shape, where a
// group reads the exps of a softmax row kernel (`%e` stored by its sum: what makes it a softmax's gradient).
// Only where the sum and %q are read by nothing else, every value is f32, the nodes share their guards and every
// buffer read is stored, [rows, cols], [rows, 1] or one value, or (f32 or bool) broadcast over leading axes only
// (an attention's causal mask [T, T] under [B, heads, T, T]). `KILN_SOFTMAX_GRAD_ROWS=0` turns it off (A/B measurements;
// compiler/cache.ts keys on it).
import { guardKey, type Graph, type Node } from "../ir/graph.js";
import { sameShape, type Dim } from "../ir/types.js";
import { WASM_LOWERING } from "./wasm/op-emitters.js";
import { groupExpr } from "./group-expr.js";
import { polyProduct } from "./dim-poly.js";
import type { EwExpr, SoftmaxGradRowsKernel } from "./kernel.js";
import type { Interner, StepFn } from "./plan-matmul.js";

export function softmaxGradRowsEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_SOFTMAX_GRAD_ROWS;
  return env !== "0";
}

export interface GradRowsMatch {
  /** dx: the node whose value the kernel stores. */
  readonly root: number;
  /** The kernel's input buffers, in parameter order. */
  readonly bufs: readonly number[];
  readonly spec: SoftmaxGradRowsKernel;
  readonly ops: readonly string[];
  readonly label: "softmax_grad_rows" | "log_softmax_grad_rows";
  /** The leading axes of dx that are the kernel's `outer` extent (the tile inputs are broadcast over them). */
  readonly outerAxes: number;
}

export interface GradRowsPlan {
  readonly roots: ReadonlyMap<number, GradRowsMatch>;
  /** The row sum and the [rows, 1] group after it: computed inside the kernel, never stored. */
  readonly inside: ReadonlySet<number>;
}

/** Rebuilds an expression over `from`'s buffers as one over `to` (the kernel's inputs); `special` reads input n. */
function remap(e: EwExpr, from: readonly number[], to: readonly number[], special: number | undefined, n: number, memo: Map<EwExpr, EwExpr>): EwExpr {
  if (e.t === "const") return e;
  const known = memo.get(e);
  if (known) return known;
  let r: EwExpr;
  if (e.t === "in") {
    const id = from[e.index]!;
    r = { t: "in", index: id === special ? n : to.indexOf(id) };
  } else {
    r = { ...e, args: e.args.map((a) => remap(a, from, to, special, n, memo)) };
  }
  memo.set(e, r);
  return r;
}

/**
 * `inMemory(id)`: the value is stored, in its own layout, by the time dx is computed (not fused, folded or
 * gathered by another planner); `blocked(id)`: the node is planned by another planner.
 */
export function softmaxGradRows(g: Graph, pinned: ReadonlySet<number>, inMemory: (id: number) => boolean, blocked: (id: number) => boolean): GradRowsPlan {
  const roots = new Map<number, GradRowsMatch>();
  const inside = new Set<number>();
  if (!softmaxGradRowsEnabled()) return { roots, inside };
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i]!.push(n.id);
  const storedBy: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) if (n.storedBy !== undefined) storedBy[n.storedBy]!.push(n.id);
  const f32 = (n: Node) => n.type.dtype === "f32";
  const ew = (n: Node) => WASM_LOWERING[n.op].kind === "elementwise";
  // A group root whose own kernel goes away: computed for `user`'s group only, its members read by nothing else.
  const freeFor = (n: Node, user: number, guard: string): boolean => {
    if (pinned.has(n.id) || n.fused !== undefined || n.storedBy !== undefined || n.finiteInto !== undefined || storedBy[n.id]!.length || blocked(n.id) || inside.has(n.id)) return false;
    if (!f32(n) || guardKey(n.guard) !== guard || !consumers[n.id]!.every((c) => c === user || g.nodes[c]!.fused === user)) return false;
    return g.nodes.every((m) => m.fused !== n.id || consumers[m.id]!.every((c) => c === n.id || g.nodes[c]!.fused === n.id));
  };
  // The softmax's exps: %e = exp(...) stored by the kernel of %s = sum %e over the last axis.
  const isExps = (id: number) => {
    const e = g.nodes[id]!;
    const s = e.storedBy === undefined ? undefined : g.nodes[e.storedBy];
    return e.op === "exp" && s?.op === "sum" && s.inputs[0] === e.id;
  };
  for (const y of g.nodes) {
    if (y.fused !== undefined || y.storedBy !== undefined || y.finiteInto !== undefined || storedBy[y.id]!.length || !f32(y) || !ew(y) || blocked(y.id)) continue;
    const S = y.type.shape;
    const r = S.length;
    if (r < 1 || S[r - 1] === 1) continue;
    const guard = guardKey(y.guard);
    const full = (n: Node) => sameShape(n.type.shape, S);
    const one = (n: Node) => n.type.shape.length <= r && n.type.shape.every((d) => d === 1);
    // A tile: broadcast over the leading a axes only (1 <= a <= r - 2), the rest dx's own; the a it takes, or 0.
    const tileAt = (n: Node): number => {
      const s = n.type.shape;
      if (s.length > r) return 0;
      const p = [...new Array<Dim>(r - s.length).fill(1), ...s];
      for (let a = 1; a <= r - 2; a++) if (p.slice(0, a).every((d) => d === 1) && sameShape(p.slice(a), S.slice(a)) && !S.slice(0, a).every((d) => d === 1)) return a;
      return 0;
    };
    const rowShaped = (n: Node) => n.type.shape.length === r && n.type.shape[r - 1] === 1 && sameShape(n.type.shape.slice(0, -1), S.slice(0, -1));
    const rowSum = (n: Node | undefined): boolean => {
      const axes = (n?.attrs as { axes?: number[] } | undefined)?.axes;
      return n?.op === "sum" && axes?.length === 1 && axes[0] === r - 1 && rowShaped(n) && full(g.nodes[n.inputs[0]!]!);
    };
    const gy = groupExpr(g, y.id);
    const gyExpr = gy.exprOf(y.id);
    for (const qid of gy.bufs) {
      const q = g.nodes[qid]!;
      if (!rowShaped(q)) continue;
      // The sum itself, or one [rows, 1] group over it.
      let sum: Node | undefined;
      let gq: ReturnType<typeof groupExpr> | undefined;
      // (A group's buffers are listed as its expression is built.)
      let qExpr: EwExpr | undefined;
      if (rowSum(q)) sum = q;
      else if (ew(q) && q.fused === undefined) {
        gq = groupExpr(g, q.id);
        qExpr = gq.exprOf(q.id);
        // Not the softmax's own sums (%s, stored by its row kernel): the one computed for this group only.
        const sums = gq.bufs.filter((b) => rowSum(g.nodes[b]) && freeFor(g.nodes[b]!, q.id, guard));
        if (sums.length === 1) sum = g.nodes[sums[0]!];
      }
      if (!sum || !freeFor(sum, gq ? q.id : y.id, guard) || (gq && !freeFor(q, y.id, guard))) continue;
      const x0 = g.nodes[sum.inputs[0]!]!;
      const gr = x0.fused === sum.id ? groupExpr(g, sum.id) : undefined;
      const rExpr = gr?.exprOf(x0.id);
      const sumBufs = gr ? gr.bufs : [x0.id];
      const qBufs = gq ? gq.bufs.filter((b) => b !== sum!.id) : [];
      const yBufs = gy.bufs.filter((b) => b !== qid);
      const bufs = [...new Set([...sumBufs, ...qBufs, ...yBufs])];
      // Every buffer stored, f32, [rows, cols], [rows, 1] or one value (only these for the row group), or a tile.
      const okBuf = (id: number, rowOnly: boolean) => {
        const b = g.nodes[id]!;
        if (id === y.id || inside.has(id) || !inMemory(id)) return false;
        if (f32(b) && (rowShaped(b) || one(b) || (!rowOnly && full(b)))) return true;
        return !rowOnly && (f32(b) || b.type.dtype === "bool") && tileAt(b) > 0;
      };
      if (!sumBufs.every((b) => okBuf(b, false)) || !qBufs.every((b) => okBuf(b, true)) || !yBufs.every((b) => okBuf(b, false))) continue;
      const layout = (b: Node) => (full(b) ? "full" as const : rowShaped(b) ? "row" as const : one(b) ? "one" as const : "tile" as const);
      // Tiles must agree on the axes they are broadcast over: those are the kernel's outer extent.
      const tiles = new Set(bufs.filter((b) => layout(g.nodes[b]!) === "tile").map((b) => tileAt(g.nodes[b]!)));
      if (tiles.size > 1) continue;
      // WGSL binds each buffer (at most 8 storage bindings a stage): out and six inputs.
      if (bufs.length > 6 || !bufs.some(isExps)) continue;
      const n = bufs.length;
      const sumExpr = gr ? remap(rExpr!, gr.bufs, bufs, undefined, n, new Map()) : ({ t: "in", index: bufs.indexOf(x0.id) } as EwExpr);
      const row = gq ? remap(qExpr!, gq.bufs, bufs, sum.id, n, new Map()) : ({ t: "in", index: n } as EwExpr);
      const out = remap(gyExpr, gy.bufs, bufs, qid, n, new Map());
      const spec: SoftmaxGradRowsKernel = { kind: "softmax_grad_rows", inputs: bufs.map((b) => ({ layout: layout(g.nodes[b]!), dtype: g.nodes[b]!.type.dtype as "f32" | "bool" })), sum: sumExpr, row, out };
      const ops = [...(gr?.ops ?? []), "sum", ...(gq?.ops ?? []), ...gy.ops];
      // log_softmax's sum(g) reaches dx through a [rows, 1] group (the division by s); softmax's directly.
      const label = gq ? "log_softmax_grad_rows" : "softmax_grad_rows";
      roots.set(y.id, { root: y.id, bufs, spec, ops, label, outerAxes: tiles.size ? [...tiles][0]! : r - 1 });
      inside.add(sum.id);
      if (gq) inside.add(q.id);
      break;
    }
  }
  return { roots, inside };
}

/**
 * The kernel's step at dx: ints outer (the product of the leading axes the tiles are broadcast over; without tiles,
 * of all but the last axis), rows (of the axes between) and cols, symbolic dims included.
 */
export function planSoftmaxGradRows(g: Graph, p: GradRowsMatch, table: Interner, step: StepFn): void {
  const shape: readonly Dim[] = g.nodes[p.root]!.type.shape;
  const ints = [polyProduct(shape.slice(0, p.outerAxes)), polyProduct(shape.slice(p.outerAxes, -1)), polyProduct(shape.slice(-1))];
  step(table.intern(p.spec, p.label), [...p.bufs, p.root], ints, g.nodes[p.root]!, [...p.ops]);
}
