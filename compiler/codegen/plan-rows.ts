// Codegen stage, planner: finds softmax and log_softmax over the last axis in a fused graph, as the fusion pass
// leaves them (the builtins' and `kiln import`'s decompositions alike) —
//   softmax:     %m = max x (last axis, keepdims); %e = exp(x - %m) stored by %s = sum %e; %y = div %e, %s
//   log_softmax: %m = max x; %s = sum exp(x - %m) (all fused into %s); %l = log %s; %y = (x - %m) - %l
// — so the planner emits one softmax_rows kernel for %y instead of three or four, and stores none of the rest.
// Only where nothing else reads the intermediates, every value is f32 and the nodes share their guards; a softmax
// whose exps and sums are read elsewhere (a training step) gets the kernel that stores them too.
import { guardKey, type Graph, type Node } from "../ir/graph.js";
import { sameShape } from "../ir/types.js";
import type { SoftmaxRowsKernel } from "./kernel.js";

export interface RowSoftmax {
  readonly mode: SoftmaxRowsKernel["mode"];
  /** The value whose rows are normalised. */
  readonly x: number;
  /** The node whose value the kernel stores. */
  readonly root: number;
  /**
   * softmax whose exps and sums are read elsewhere too (a training step's backward): the kernel stores them, and the
   * division `out` where it has a kernel of its own (SoftmaxRowsKernel.saves); `root` is then the sum's node,
   * where the exp+sum kernel it replaces ran.
   */
  readonly saves?: { readonly exps?: number; readonly sums: number; readonly out?: number; readonly max?: number };
}

/** Every node of a matched pattern -> its match (the root included); the other members are never stored. */
export function rowSoftmaxes(g: Graph, pinned: ReadonlySet<number>): Map<number, RowSoftmax> {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i]!.push(n.id);
  const fusedInto: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) if (n.fused !== undefined) fusedInto[n.fused]!.push(n.id);
  const storedBy: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) if (n.storedBy !== undefined) storedBy[n.storedBy]!.push(n.id);
  const out = new Map<number, RowSoftmax>();
  const node = (id: number | undefined): Node | undefined => (id === undefined ? undefined : g.nodes[id]);
  const f32 = (n: Node) => n.type.dtype === "f32";
  // Only `of` reads the node (and it is not a function output, update or guard condition).
  const onlyFor = (n: Node, of: readonly number[]) => !pinned.has(n.id) && consumers[n.id]!.every((c) => of.includes(c)) && n.finiteInto === undefined;
  const lastAxis = (n: Node, x: Node): boolean => {
    const axes = (n.attrs as { axes?: number[] }).axes;
    const r = x.type.shape.length;
    return r >= 1 && axes?.length === 1 && axes[0] === r - 1 && n.type.shape.length === r && n.type.shape[r - 1] === 1 && n.inputs[0] === x.id;
  };
  /** sub(x, m) with m = max(x) over the last axis: returns [x, m]. */
  const centred = (d: Node | undefined): [Node, Node] | null => {
    if (d?.op !== "sub" || !f32(d)) return null;
    const [x, mx] = [node(d.inputs[0]), node(d.inputs[1])];
    if (!x || mx?.op !== "max" || !f32(x) || !lastAxis(mx, x) || mx.fused !== undefined) return null;
    return [x, mx];
  };
  for (const y of g.nodes) {
    if (y.fused !== undefined || y.storedBy !== undefined || y.finiteInto !== undefined || !f32(y) || storedBy[y.id]!.length) continue;
    let members: Node[] | null = null;
    let x: Node | undefined;
    let mode: RowSoftmax["mode"] = "softmax";
    if (y.op === "div" && fusedInto[y.id]!.length === 0) {
      const [e, s] = [node(y.inputs[0]), node(y.inputs[1])];
      if (e?.op !== "exp" || s?.op !== "sum" || e.storedBy !== s.id || s.inputs[0] !== e.id) continue;
      const c = centred(node(e.inputs[0]));
      if (!c) continue;
      const d = node(e.inputs[0])!;
      [x] = c;
      // The sub is fused into the exp's group, which the sum's kernel computes and stores (fusion-reduce.ts).
      if (!lastAxis(s, e) || d.fused !== e.id || fusedInto[e.id]!.length !== 1 || fusedInto[s.id]!.length || storedBy[s.id]!.length !== 1) continue;
      if (!onlyFor(e, [s.id, y.id]) || !onlyFor(s, [y.id]) || !onlyFor(d, [e.id]) || !onlyFor(c[1], [d.id])) continue;
      members = [c[1], d, e, s];
    } else if (y.op === "sub") {
      mode = "log_softmax";
      const [a, l] = [node(y.inputs[0]), node(y.inputs[1])];
      const ca = centred(a);
      // With rows of one the log has y's shape and joins its group.
      const logIn = l?.fused === y.id ? 1 : 0;
      if (!ca || a!.fused !== y.id || fusedInto[y.id]!.length !== 1 + logIn || l?.op !== "log" || (!logIn && l.fused !== undefined) || fusedInto[l.id]!.length) continue;
      const s = node(l.inputs[0]);
      const e = node(s?.inputs[0]);
      if (s?.op !== "sum" || e?.op !== "exp" || e.fused !== s.id || !lastAxis(s, e) || storedBy[s.id]!.length || storedBy[l.id]!.length) continue;
      const d = node(e.inputs[0]);
      const cd = centred(d);
      if (!cd || cd[0].id !== ca[0].id || cd[1].id !== ca[1].id || d!.fused !== s.id || fusedInto[s.id]!.length !== 2) continue;
      [x] = ca;
      if (!onlyFor(a!, [y.id]) || !onlyFor(l, [y.id]) || !onlyFor(s, [l.id]) || !onlyFor(e, [s.id]) || !onlyFor(d!, [e.id]) || !onlyFor(ca[1], [a!.id, d!.id])) continue;
      members = [ca[1], a!, d!, e, s, l];
    }
    // x must be in memory, in its own layout: not computed inside another kernel, nor stored by the max's kernel
    // (a prologue the max computes and stores, which the row kernel replaces: nothing would store x).
    if (!members || !x || x.fused !== undefined || fusedInto[members[0]!.id]!.length || storedBy[members[0]!.id]!.length || !sameShape(x.type.shape, y.type.shape)) continue;
    if (members.some((mb) => guardKey(mb.guard) !== guardKey(y.guard) || out.has(mb.id))) continue;
    const match: RowSoftmax = { mode, x: x.id, root: y.id };
    for (const mb of [...members, y]) out.set(mb.id, match);
  }

  // softmax whose exps and sums are read elsewhere (a backward reads both; a consumer may compute e / s itself):
  // %m = max x; %e = exp(x - %m) stored by %s = sum %e, as above; the kernel stores %e and %s, and the division
  // %y = div %e, %s too where it has a kernel of its own. Also the log-sum-exp rows of a cross-entropy, whose exps
  // are summed but never stored (%e and x - %m fused into %s): the kernel stores %s only. Either way the max too
  // where something else reads it (cross-entropy's own x - %m, computed in its loss kernel).
  for (const s of g.nodes) {
    if (out.has(s.id) || s.op !== "sum" || !f32(s) || s.fused !== undefined || s.storedBy !== undefined || s.finiteInto !== undefined) continue;
    const e = node(s.inputs[0]);
    if (e?.op !== "exp" || !f32(e) || e.finiteInto !== undefined || out.has(e.id) || !lastAxis(s, e)) continue;
    const d = node(e.inputs[0])!;
    const stored = e.storedBy === s.id;
    if (stored) {
      if (fusedInto[s.id]!.length || storedBy[s.id]!.length !== 1 || fusedInto[e.id]!.length !== 1 || d.fused !== e.id) continue;
    } else if (e.fused !== s.id || d.fused !== s.id || fusedInto[s.id]!.length !== 2 || storedBy[s.id]!.length || fusedInto[e.id]!.length || !onlyFor(e, [s.id])) continue;
    const c = centred(d);
    if (!c || !onlyFor(d, [e.id])) continue;
    const [x, mx] = c;
    if (x.fused !== undefined || fusedInto[mx.id]!.length || storedBy[mx.id]!.length || !sameShape(x.type.shape, e.type.shape)) continue;
    // The max stored as well where read elsewhere (it is a plain kernel output: not fused, not stored by another).
    const keepMax = !onlyFor(mx, [d.id]);
    if (keepMax && (mx.storedBy !== undefined || mx.finiteInto !== undefined)) continue;
    const members = [mx, d, e, s];
    if (members.some((mb) => guardKey(mb.guard) !== guardKey(s.guard) || out.has(mb.id))) continue;
    const y = !stored ? undefined : consumers[e.id]!.map((id) => g.nodes[id]!).find((n) =>
      n.op === "div" && n.inputs[0] === e.id && n.inputs[1] === s.id && f32(n) && n.fused === undefined && n.storedBy === undefined && n.finiteInto === undefined &&
      !fusedInto[n.id]!.length && !storedBy[n.id]!.length && guardKey(n.guard) === guardKey(s.guard) && sameShape(n.type.shape, e.type.shape) && !out.has(n.id));
    const match: RowSoftmax = { mode: "softmax", x: x.id, root: s.id, saves: { ...(stored ? { exps: e.id } : {}), sums: s.id, ...(y ? { out: y.id } : {}), ...(keepMax ? { max: mx.id } : {}) } };
    for (const mb of y ? [...members, y] : members) out.set(mb.id, match);
  }
  return out;
}
