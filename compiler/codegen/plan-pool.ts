// Codegen stage, planner for pooling: finds max_pool2d / avg_pool2d as ops/pooling.ts builds them —
//   max: permute[0,3,1,2](max first (reshape [.., KH*KW] (window (pad -inf? x))))
//   avg: permute[0,3,1,2](mean over [4, 5] (window (pad 0? x)))          (the uniform divisor only)
// — and plans one pool2d kernel (kernel.ts) at the permute, so neither the window copy nor the NHWC result is
// stored. When x is an elementwise group (bn + relu, relu) read by nothing else and the windows do not overlap,
// the group joins the kernel as its prologue and x is never stored either.
import { guardKey, useCounts, type Graph, type Node } from "../ir/graph.js";
import type { AttrsOf } from "../ops/types.js";
import type { Pool2dKernel } from "./kernel.js";
import { bcastFlags, groupExpr } from "./group-expr.js";
import { polyConst, polyProduct } from "./dim-poly.js";
import type { Interner, StepFn } from "./plan-matmul.js";
import { WASM_LOWERING } from "./wasm/op-emitters.js";
import type { PoolGradPlan } from "./plan-pool-grad.js";

export interface PoolMatch {
  /** The permute whose value the kernel stores. */
  readonly root: number;
  /** The pooled value (the prologue group's root when `fusedX`). */
  readonly x: number;
  readonly fusedX: boolean;
  readonly spec: Pool2dKernel;
  /** The chain's nodes between x and the root (never stored). */
  readonly members: readonly number[];
}

export interface PoolPlan {
  /** Root permute -> its match. */
  readonly roots: ReadonlyMap<number, PoolMatch>;
  /** Nodes computed inside a pool kernel (the chain and a fused x): no value of their own, no step. */
  readonly inside: ReadonlySet<number>;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * `blocked(id)`: nodes another planner pattern owns (matmul epilogues, conv gathers, folded operands): neither
 * the chain nor a fused x may be one of them.
 */
/**
 * `grads`: max_pool2d gradient kernels (plan-pool-grad.ts). They read x itself, so a window reshape whose other
 * readers are all inside them is no reason to store the window, and an x they read is never fused away.
 */
export function poolPlan(g: Graph, pinned: ReadonlySet<number>, blocked: (id: number) => boolean, grads?: PoolGradPlan): PoolPlan {
  const uses = useCounts(g);
  const readers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) readers[i]!.push(n.id);
  const gradX = new Set([...(grads?.roots.values() ?? [])].map((m) => m.x));
  const roots = new Map<number, PoolMatch>();
  const inside = new Set<number>();
  const rootsOfGroups = new Set<number>();
  for (const n of g.nodes) if (n.fused !== undefined) rootsOfGroups.add(n.fused);
  const storedBy = new Set<number>();
  for (const n of g.nodes) if (n.storedBy !== undefined) storedBy.add(n.storedBy);
  // Only `user` reads p, or else gradient kernels that read x themselves.
  const onlyFor = (p: Node, user: Node) =>
    uses[p.id] === 1 || (grads !== undefined && readers[p.id]!.includes(user.id) && readers[p.id]!.every((r) => r === user.id || grads.inside.has(r)));
  // p disappears into `user`: not stored elsewhere, not a kernel's root, no other reader that needs it stored.
  const hidden = (p: Node, user: Node) =>
    onlyFor(p, user) && !pinned.has(p.id) && p.fused === undefined && p.storedBy === undefined && p.finiteInto === undefined &&
    !rootsOfGroups.has(p.id) && !storedBy.has(p.id) && !blocked(p.id) && guardKey(p.guard) === guardKey(user.guard);
  for (const root of g.nodes) {
    if (root.op !== "permute" || root.type.dtype !== "f32" || !same((root.attrs as AttrsOf["permute"]).perm, [0, 3, 1, 2])) continue;
    if (root.fused !== undefined || root.storedBy !== undefined || root.finiteInto !== undefined || blocked(root.id) || storedBy.has(root.id)) continue;
    const red = g.nodes[root.inputs[0]];
    if (!hidden(red, root)) continue;
    let win: Node;
    let op: Pool2dKernel["op"];
    const members = [red.id];
    const ra = red.attrs as AttrsOf["max"];
    if (red.op === "max" && same(ra.axes, [4]) && !ra.keepdims) {
      const flat = g.nodes[red.inputs[0]];
      if (flat.op !== "reshape" || !hidden(flat, red)) continue;
      win = g.nodes[flat.inputs[0]];
      if (!hidden(win, flat)) continue;
      members.push(flat.id);
      op = "max";
    } else if (red.op === "mean" && same(ra.axes, [4, 5]) && !ra.keepdims) {
      win = g.nodes[red.inputs[0]];
      if (!hidden(win, red)) continue;
      op = "avg";
    } else continue;
    const wa = win.attrs as AttrsOf["window"];
    if (win.op !== "window" || !same(wa.dilation, [1, 1])) continue;
    members.push(win.id);
    let x = g.nodes[win.inputs[0]];
    let top = 0, left = 0;
    // A pad a gradient kernel reads as its x stays stored; the pool then reads it, unpadded.
    if (x.op === "pad" && !gradX.has(x.id)) {
      const pa = x.attrs as AttrsOf["pad"];
      const [n0, c0, ph, pw] = pa.pads;
      const flat = [n0, c0].every((p) => p!.every((v) => v === 0)) && ph![2] === 0 && pw![2] === 0;
      if (!flat || pa.value !== (op === "max" ? -Infinity : 0) || !hidden(x, win)) continue;
      members.push(x.id);
      [top, left] = [ph![0], pw![0]];
      x = g.nodes[x.inputs[0]];
    }
    const [, C, H, W] = x.type.shape;
    const [, , , , KH, KW] = win.type.shape;
    const [, OH, OW] = red.type.shape;
    if (x.type.dtype !== "f32" || x.type.shape.length !== 4 || ![C, H, W, OH, OW, KH, KW].every((d) => typeof d === "number")) continue;
    const geometry = { C, H, W, OH, OW, KH, KW } as { [K in "C" | "H" | "W" | "OH" | "OW" | "KH" | "KW"]: number };
    const base: Pool2dKernel = { kind: "pool2d", op, dtype: "f32", ...geometry, stride: wa.stride, top, left };
    const fused = gradX.has(x.id) ? undefined : fusable(g, x, win, wa.stride, geometry, pinned, storedBy, blocked, uses);
    const spec: Pool2dKernel = fused ? { ...base, prologue: fused } : base;
    const match: PoolMatch = { root: root.id, x: x.id, fusedX: fused !== undefined, spec, members };
    roots.set(root.id, match);
    for (const id of members) inside.add(id);
    if (fused) inside.add(x.id);
  }
  return { roots, inside };
}

/**
 * x's elementwise group as the kernel's prologue: x is read by the pool alone, every buffer is f32, and the windows
 * do not overlap (stride >= kernel), so each element's expression is still evaluated once.
 */
function fusable(
  g: Graph, x: Node, user: Node, stride: readonly number[], k: { KH: number; KW: number }, pinned: ReadonlySet<number>,
  storedBy: ReadonlySet<number>, blocked: (id: number) => boolean, uses: readonly number[],
): Pool2dKernel["prologue"] {
  if (WASM_LOWERING[x.op].kind !== "elementwise" || stride[0]! < k.KH || stride[1]! < k.KW) return undefined;
  // Its one use is the chain's pad or window, which found it.
  if (uses[x.id] !== 1) return undefined;
  if (pinned.has(x.id) || x.fused !== undefined || x.storedBy !== undefined || x.finiteInto !== undefined || storedBy.has(x.id) || blocked(x.id)) return undefined;
  if (guardKey(x.guard) !== guardKey(user.guard)) return undefined;
  for (const n of g.nodes) if (n.fused === x.id && (blocked(n.id) || n.op === "matmul")) return undefined;
  const grp = groupExpr(g, x.id);
  const expr = grp.exprOf(x.id);
  // f32 buffers only, and few enough for WGSL's storage bindings (out is one more).
  if (grp.bufs.length > 6 || grp.bufs.some((id) => g.nodes[id].type.dtype !== "f32")) return undefined;
  const flags = bcastFlags(g, grp.bufs, x.type.shape);
  return { inputs: grp.bufs.map((_, i) => ({ dtype: "f32" as const, bcast: flags[i]! })), expr };
}

/** The pool kernel's step at its root: (prologue buffers or x, out), planes = N * C. */
export function planPool(g: Graph, p: PoolMatch, table: Interner, step: StepFn): void {
  const x = g.nodes[p.x];
  const grp = p.fusedX ? groupExpr(g, p.x) : undefined;
  grp?.exprOf(p.x);
  const bufs = grp ? grp.bufs : [p.x];
  const ops = [...(grp?.ops ?? []), ...[...p.members].reverse().map((id) => g.nodes[id].op), "permute"];
  const label = `${p.spec.op}pool${p.spec.prologue ? `_${grp!.ops.length}ep` : ""}`;
  step(table.intern(p.spec, label), [...bufs, p.root], [polyProduct(x.type.shape.slice(0, 2)), polyConst(p.spec.OH * p.spec.OW)], g.nodes[p.root], ops);
}
