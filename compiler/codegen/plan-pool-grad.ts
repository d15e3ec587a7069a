// Codegen stage, planner for max_pool2d's gradient: finds the chain autodiff and the argmax expansion leave for
// windows that tile x exactly (stride = kernel, no padding, nothing left over) —
//   %mx = max win (last axis, keepdims); %i = min(where(win == %mx, iota, K)) (keepdims)
//   %g = where(iota == %i, broadcast(reshape(permute[0,2,3,1] dy)), 0); dx = permute[0,3,1,4,2,5](reshape %g)
// where win = reshape(window x) — and plans one maxpool_grad kernel (kernel.ts) writing dx from x and dy, so the
// max, the index, the broadcast dy, the one-hot product and the permute are never stored. The window copy itself
// is dropped too when its other reader is a pool kernel reading x itself (plan-pool.ts, given this plan).
import { guardKey, useCounts, type Graph, type Node } from "../ir/graph.js";
import type { AttrsOf } from "../ops/types.js";
import type { MaxPoolGradKernel } from "./kernel.js";
import { polyConst, polyProduct } from "./dim-poly.js";
import type { Interner, StepFn } from "./plan-matmul.js";

export interface PoolGradMatch {
  readonly root: number;
  readonly x: number;
  readonly dy: number;
  readonly spec: MaxPoolGradKernel;
  /** The window reshape [N, OH, OW, C, K] it reads (its other readers decide whether the window is stored). */
  readonly win: number;
}

export interface PoolGradPlan {
  readonly roots: ReadonlyMap<number, PoolGradMatch>;
  /** Nodes computed inside a gradient kernel: no value, no step. */
  readonly inside: ReadonlySet<number>;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

export function poolGradPlan(g: Graph, pinned: ReadonlySet<number>, blocked: (id: number) => boolean): PoolGradPlan {
  const uses = useCounts(g);
  const roots = new Map<number, PoolGradMatch>();
  const inside = new Set<number>();
  const storedBy = new Set<number>();
  for (const n of g.nodes) if (n.storedBy !== undefined) storedBy.add(n.storedBy);
  const fusedInto: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) if (n.fused !== undefined) fusedInto[n.fused]!.push(n.id);
  const node = (id: number | undefined): Node | undefined => (id === undefined ? undefined : g.nodes[id]);
  // Stored or used elsewhere: p cannot disappear into `user`.
  const free = (p: Node | undefined, user: Node, fused?: number): p is Node =>
    p !== undefined && uses[p.id] === 1 && !pinned.has(p.id) && p.fused === fused && p.storedBy === undefined && p.finiteInto === undefined &&
    !storedBy.has(p.id) && !blocked(p.id) && guardKey(p.guard) === guardKey(user.guard) && !inside.has(p.id);
  const scalar = (p: Node | undefined, value: number) => p?.op === "const" && p.type.shape.length === 0 && (p.attrs as AttrsOf["const"]).value === value;
  // reshape(iota K) to [1, 1, 1, 1, K].
  const taps = (p: Node | undefined, K: number) => {
    const io = node(p?.inputs[0]);
    return p?.op === "reshape" && same(p.type.shape as number[], [1, 1, 1, 1, K]) && io?.op === "iota" && (io.attrs as AttrsOf["iota"]).n === K;
  };
  for (const root of g.nodes) {
    if (root.op !== "permute" || root.type.dtype !== "f32" || !same((root.attrs as AttrsOf["permute"]).perm, [0, 3, 1, 4, 2, 5])) continue;
    if (root.fused !== undefined || root.storedBy !== undefined || root.finiteInto !== undefined || storedBy.has(root.id) || blocked(root.id)) continue;
    const rs = node(root.inputs[0]);
    if (rs?.op !== "reshape" || !free(rs, root)) continue;
    const [, OH, OW, C, KH, KW] = rs.type.shape;
    if (![OH, OW, C, KH, KW].every((d) => typeof d === "number")) continue;
    const K = (KH as number) * (KW as number);
    // %g = where(eq(iota, %i), broadcast dy, 0), the eq fused into it.
    const wh = node(rs.inputs[0]);
    if (wh?.op !== "where" || !free(wh, rs) || fusedInto[wh.id]!.length !== 1) continue;
    const [e1, bc, zero] = wh.inputs.map(node);
    if (e1?.op !== "eq" || e1.fused !== wh.id || uses[e1.id] !== 1 || !scalar(zero, 0) || !taps(node(e1.inputs[0]), K)) continue;
    const mn = node(e1.inputs[1]);
    if (mn?.op !== "min" || !free(mn, e1) || !same((mn.attrs as AttrsOf["min"]).axes, [4]) || !(mn.attrs as AttrsOf["min"]).keepdims) continue;
    // The index: min over where(eq(win, %mx), iota, K), both fused into the min.
    const w2 = node(mn.inputs[0]);
    if (w2?.op !== "where" || w2.fused !== mn.id || uses[w2.id] !== 1 || fusedInto[mn.id]!.length !== 2) continue;
    const [e2, io2, cK] = w2.inputs.map(node);
    if (e2?.op !== "eq" || e2.fused !== mn.id || uses[e2.id] !== 1 || !taps(io2, K) || !scalar(cK, K)) continue;
    const [win, mx] = e2.inputs.map(node);
    if (mx?.op !== "max" || !free(mx, e2) || mx.inputs[0] !== win?.id || !same((mx.attrs as AttrsOf["max"]).axes, [4]) || !(mx.attrs as AttrsOf["max"]).keepdims) continue;
    if (fusedInto[mx.id]!.length) continue;
    const wn = node(win.inputs[0]);
    if (win.op !== "reshape" || win.fused !== undefined || wn?.op !== "window") continue;
    const wa = wn.attrs as AttrsOf["window"];
    if (!same(wa.kernel, [KH as number, KW as number]) || !same(wa.stride, wa.kernel) || !same(wa.dilation, [1, 1])) continue;
    const x = g.nodes[wn.inputs[0]];
    const [, xc, H, W] = x.type.shape;
    if (x.type.dtype !== "f32" || x.type.shape.length !== 4 || xc !== C || H !== (OH as number) * (KH as number) || W !== (OW as number) * (KW as number)) continue;
    // broadcast(reshape [N, OH, OW, C, 1] (permute [0, 2, 3, 1] dy)).
    if (bc?.op !== "broadcast_to" || !free(bc, wh)) continue;
    const rc = node(bc.inputs[0]);
    if (rc?.op !== "reshape" || !free(rc, bc)) continue;
    const pc = node(rc.inputs[0]);
    if (pc?.op !== "permute" || !same((pc.attrs as AttrsOf["permute"]).perm, [0, 2, 3, 1]) || !free(pc, rc)) continue;
    const dy = g.nodes[pc.inputs[0]];
    if (dy.type.dtype !== "f32") continue;
    const spec: MaxPoolGradKernel = { kind: "maxpool_grad", C: C as number, OH: OH as number, OW: OW as number, KH: KH as number, KW: KW as number };
    roots.set(root.id, { root: root.id, x: x.id, dy: dy.id, spec, win: win.id });
    for (const p of [rs, wh, e1, mn, w2, e2, mx, bc, rc, pc]) inside.add(p.id);
  }
  // A window only gradients read (the loss's forward max is dead in a gradient-only function): never stored.
  const readers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) readers[i]!.push(n.id);
  for (const m of roots.values()) {
    const win = g.nodes[m.win], wn = g.nodes[win.inputs[0]];
    const own = (p: Node) => !pinned.has(p.id) && p.storedBy === undefined && p.finiteInto === undefined && !storedBy.has(p.id) && !blocked(p.id);
    if (own(win) && own(wn) && readers[wn.id]!.length === 1 && readers[win.id]!.every((r) => inside.has(r))) inside.add(win.id).add(wn.id);
  }
  return { roots, inside };
}

/** The gradient kernel's step at its root: (x, dy, dx), planes = N * C. */
export function planPoolGrad(g: Graph, p: PoolGradMatch, table: Interner, step: StepFn): void {
  const x = g.nodes[p.x];
  const ops = ["max", "eq", "where", "min", "permute", "reshape", "broadcast_to", "eq", "where", "reshape", "permute"];
  step(table.intern(p.spec, "maxpool_grad"), [p.x, p.dy, p.root], [polyProduct(x.type.shape.slice(0, 2)), polyConst(p.spec.OH * p.spec.OW)], g.nodes[p.root], ops);
}
