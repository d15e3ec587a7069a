// Pass "simplify": algebraic identities (x + 0, x * 1, x / 1, identity reshapes, neg(neg x)), float arithmetic on
// constants folded (mean's gradient seed 1 / N), broadcast_to operands of
// arithmetic read unbroadcast (simplify-broadcast.ts), common-
// subexpression elimination (same op, inputs and attrs, incl. duplicate constants) and dead-node elimination,
// rebuilding each graph with dense ids in topological order.

import { GraphBuilder, guardKey, remapGuard, type Graph, type IRModule } from "../ir/graph.js";
import { formatType, sameShape } from "../ir/types.js";
import type { Node } from "../ir/graph.js";
import { constThrough, foldBroadcasts, splatThrough } from "./simplify-broadcast.js";

/** The input a node is equal to, when an identity makes it redundant (same dtype and shape as the node). */
function identityOf(n: Node, nodes: readonly Node[]): number | undefined {
  const ins = n.inputs.map((i) => nodes[i]);
  const isConst = (x: Node | undefined, v: number) => x?.op === "const" && (x.attrs as { value: number }).value === v;
  // A product with 1 through reshapes and broadcasts (autodiff's seed of a sum, reshape(1) to [1, 1]).
  const isOne = (x: Node | undefined) => constThrough(x, nodes) === 1;
  const same = (x: Node | undefined) => x !== undefined && x.type.dtype === n.type.dtype && sameShape(x.type.shape, n.type.shape);
  let keep: Node | undefined;
  if ((n.op === "reshape" || n.op === "stop_gradient") && same(ins[0])) keep = ins[0];
  else if (n.op === "add" && isConst(ins[1], 0) && same(ins[0])) keep = ins[0];
  else if (n.op === "add" && isConst(ins[0], 0) && same(ins[1])) keep = ins[1];
  else if ((n.op === "mul" || n.op === "div") && isOne(ins[1]) && same(ins[0])) keep = ins[0];
  else if (n.op === "mul" && isOne(ins[0]) && same(ins[1])) keep = ins[1];
  else if (n.op === "sub" && isConst(ins[1], 0) && same(ins[0])) keep = ins[0];
  else if (n.op === "neg" && ins[0]?.op === "neg") keep = nodes[ins[0].inputs[0]];
  return keep?.id;
}

const ARITH: Partial<Record<string, (a: number, b: number) => number>> = { add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b };

/**
 * The value of a float add/sub/mul/div whose operands are constants (through reshapes and broadcasts: mean's
 * gradient seed, reshape(1) to [1, 1] divided by the element count), folded at compile time so no kernel computes
 * it on every call. f32 rounds each operand and the result, as the kernel does (one correctly rounded f64
 * operation rounded to f32 is the f32 operation); 16-bit, integer, guarded and autocast nodes are left alone.
 */
function foldedConstant(n: Node, nodes: readonly Node[]): number | undefined {
  const f = ARITH[n.op];
  if (!f || n.guard?.length || n.precision || (n.type.dtype !== "f32" && n.type.dtype !== "f64")) return undefined;
  const [a, b] = n.inputs.map((i) => constThrough(nodes[i], nodes));
  if (a === undefined || b === undefined) return undefined;
  const r = n.type.dtype === "f32" ? (x: number) => Math.fround(x) : (x: number) => x;
  return r(f(r(a), r(b)));
}

/** JSON replacer keeping -inf, inf and NaN apart (a -inf pad must not merge with a NaN one); JSON makes all null. */
const finite = (_k: string, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);

export function simplifyGraph(g: Graph): Graph {
  return rebuild(g).graph;
}

/** One rebuild; `folded` says whether a broadcast_to operand was read unbroadcast (it may be dead only now). */
function rebuild(g: Graph): { graph: Graph; folded: boolean } {
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (const o of g.outputs) live[o.node] = true;
  for (const u of g.updates ?? []) live[u.node] = true;
  for (const i of g.inputs) live[i.node] = true; // inputs stay even when unused: they are the signature
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    if (!live[i]) continue;
    for (const x of g.nodes[i].inputs) live[x] = true;
    for (const x of g.nodes[i].guard ?? []) live[x.cond] = true;
  }
  const b = new GraphBuilder();
  const remap = new Map<number, number>();
  const seen = new Map<string, number>();
  let anyFold = false;
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    const mapped = n.inputs.map((x) => remap.get(x)!);
    const folded = foldBroadcasts(n, mapped, b.nodes);
    const inputs = folded.inputs;
    if (folded.sunk || inputs.some((x, i) => x !== mapped[i])) anyFold = true;
    if (folded.sunk) {
      // op(broadcast_to(a), c) = broadcast_to(op(a, c)): computed on the small shape (simplify-broadcast.ts).
      const guard = remapGuard(n.guard, (c) => remap.get(c)!);
      b.precision = n.precision;
      const small = b.add(n.op, inputs, n.attrs, { dtype: n.type.dtype, shape: folded.sunk }, n.span, guard);
      remap.set(n.id, b.add("broadcast_to", [small], { shape: [...n.type.shape] }, n.type, n.span, guard));
      continue;
    }
    const splat = splatThrough(n, inputs, b.nodes);
    if (splat !== undefined) {
      // reshape(broadcast_to(a)) of a one-element a = broadcast_to(a) in the new shape (simplify-broadcast.ts).
      anyFold = true;
      b.precision = n.precision;
      remap.set(n.id, b.add("broadcast_to", [splat], { shape: [...n.type.shape] }, n.type, n.span, remapGuard(n.guard, (c) => remap.get(c)!)));
      continue;
    }
    // Inputs are already ids of the rebuilt graph, so the identity needs no remapping (a map of every node
    // built so far, made per node, made long sums quadratic).
    const same = identityOf({ ...n, inputs }, b.nodes);
    if (same !== undefined && n.op !== "input") {
      remap.set(n.id, same);
      continue;
    }
    // Constant arithmetic becomes a const; its operands may be dead only now: counted as a fold, so the fixpoint
    // runs another round.
    const value = foldedConstant({ ...n, inputs }, b.nodes);
    if (value !== undefined) anyFold = true;
    const op = value === undefined ? n.op : "const";
    const ins = value === undefined ? inputs : [];
    const attrs = value === undefined ? n.attrs : { value };
    const guard = remapGuard(n.guard, (c) => remap.get(c)!);
    const key = op === "input" ? undefined : `${op}|${ins.join(",")}|${JSON.stringify(attrs, finite)}|${formatType(n.type)}|${guardKey(guard)}${n.precision ? "|" + n.precision : ""}`;
    const prev = key === undefined ? undefined : seen.get(key);
    if (prev !== undefined) {
      remap.set(n.id, prev);
      continue;
    }
    b.precision = n.precision; // the autocast region survives the rebuild
    const id = b.add(op, ins, attrs as never, n.type, n.span, guard);
    if (key !== undefined) seen.set(key, id);
    remap.set(n.id, id);
  }
  const graph = {
    ...g,
    nodes: b.nodes,
    inputs: g.inputs.map((i) => ({ ...i, node: remap.get(i.node)! })),
    outputs: g.outputs.map((o) => ({ ...o, node: remap.get(o.node)! })),
    updates: g.updates?.map((u) => ({ ...u, node: remap.get(u.node)! })),
  };
  return { graph, folded: anyFold };
}

/** Simplifies until nothing changes (folding can make more nodes dead or equal). */
export function simplify(m: IRModule): IRModule {
  return { ...m, functions: m.functions.map((g) => fixpoint(g)) };
}

function fixpoint(g: Graph): Graph {
  for (let i = 0; i < 8; i++) {
    const { graph: next, folded } = rebuild(g);
    // A folded broadcast_to (simplify-broadcast.ts) is dead only in the next rebuild: one more round removes it.
    // Without a fold, a round that removed nothing (same length: no identity, CSE or dead node, each of which
    // shortens the graph, and no sunk op, which lengthens it) changed nothing, so another would change nothing.
    if (next.nodes.length === g.nodes.length) return folded ? simplifyGraph(next) : next;
    g = next;
  }
  return g;
}
