// Pass "autodiff": reverse-mode differentiation at compile time. Lowering leaves `gradient(y, w)` markers
// (w is a fresh identity node standing for the differentiated argument or param); this pass replaces each
// marker, innermost first, with the backward graph built from the registry's VJP rules — or from a user's
// `backward` rule where one was written — then removes dead nodes and shared subexpressions.

import { DiagnosticBag } from "../diagnostics.js";
import { GraphBuilder, withNodes, remapGuard, type CustomVjp, type Graph, type IRModule, type Node } from "../ir/graph.js";
import { formatType, isFloat } from "../ir/types.js";
import { OPS } from "../ops/registry.js";
import { COMPARE_OPS, isRuleError, type AttrsOf, type PrimOp } from "../ops/types.js";
import { isNoGrad, VJP_RULES, zerosLike, type GradEmitter, type VjpRule } from "../ops/vjp.js";
import { simplifyGraph } from "./simplify.js";

function emitterFor(b: GraphBuilder, modulePrecision: IRModule["precision"]): GradEmitter {
  return {
    emit<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P]): number {
      const r = OPS[op].infer(inputs.map((i) => b.type(i)), attrs as never);
      if (isRuleError(r)) throw new Error(`internal compiler error in the VJP of ${op}: ${r.message}`);
      return b.add(op, inputs, attrs, r);
    },
    constant: (value, dtype) => b.add("const", [], { value }, { dtype, shape: [] }),
    type: (id) => b.type(id),
    node: (id) => b.nodes[id]!,
    lowPrecision: (n) => {
      const p = n.precision ?? modulePrecision;
      return p === "f16" || p === "bf16";
    },
  };
}

/** Re-emits the backward rule's nodes that depend on its placeholder, with the real cotangent substituted. */
function cloneBackward(b: GraphBuilder, c: CustomVjp, ct: number): number[] {
  const last = Math.max(...c.grads);
  const map = new Map<number, number>([[c.cotangent, ct]]);
  for (let id = c.cotangent + 1; id <= last; id++) {
    const n = b.nodes[id];
    if (!n.inputs.some((i) => map.has(i))) continue;
    b.precision = n.precision;
    map.set(id, b.add(n.op, n.inputs.map((i) => map.get(i) ?? i), n.attrs, n.type, n.span, n.guard ?? []));
  }
  return c.grads.map((gr) => map.get(gr) ?? gr);
}

/** d y / d w over the nodes built so far in `b`; returns the node holding the gradient (w's type). */
function backprop(b: GraphBuilder, y: number, w: number, customs: Map<number, CustomVjp>, diags: DiagnosticBag, modulePrecision?: IRModule["precision"]): number {
  const nodes = b.nodes;
  const active = new Set<number>([w]);
  // Ops that turn a differentiated float into an integer (a cast, argmax) would silently cut the gradient; on
  // a path to y that is an error. Comparisons are exempt: they only feed conditions (where, if).
  const intCasts: Node[] = [];
  for (let id = w + 1; id <= y; id++) {
    const n = nodes[id];
    // stop_gradient ends a differentiated path: an argmax behind it (topk's index choice) cuts nothing.
    if (!n.inputs.some((i) => active.has(i)) || n.op === "stop_gradient") continue;
    if (isFloat(n.type.dtype)) active.add(id);
    else if (!(COMPARE_OPS as readonly string[]).includes(n.op)) intCasts.push(n);
  }
  const needed = new Set<number>([y]);
  // stop_gradient ends the path: what it reads (an argmax cast back to float, say) is never differentiated.
  for (let id = y; id >= w; id--) if (needed.has(id) && nodes[id].op !== "stop_gradient") for (const i of nodes[id].inputs) needed.add(i);
  for (const n of intCasts) {
    if (!needed.has(n.id)) continue;
    const at = n.span ?? nodes[y].span;
    const what = n.op === "cast" ? `a cast to ${n.type.dtype}` : n.op;
    if (at) diags.error("K605", `the gradient cannot flow through ${what} (${formatType(nodes[n.inputs[0]].type)} -> ${formatType(n.type)})`, at, "integer values have no derivative; keep the differentiated path in float dtypes");
  }
  const e = emitterFor(b, modulePrecision);
  const saved = b.guards;
  b.guards = [];
  const ct = new Map<number, number>([[y, e.constant(1, nodes[y].type.dtype)]]);
  // Sums of contributions run unguarded: a skipped (guarded) contribution reads as zeros.
  const give = (id: number, g: number | undefined) => {
    if (g === undefined || !active.has(id) || !needed.has(id)) return;
    const prev = ct.get(id);
    b.guards = [];
    ct.set(id, prev === undefined ? g : e.emit("add", [prev, g], {}));
  };
  for (let id = y; id > w; id--) {
    const g = ct.get(id);
    if (g === undefined || !active.has(id)) continue;
    const n = nodes[id];
    const custom = customs.get(id);
    if (custom) {
      cloneBackward(b, custom, g).forEach((gi, k) => give(custom.inputs[k], gi));
      continue;
    }
    const rule = VJP_RULES[n.op];
    if (isNoGrad(rule)) continue;
    // A node's backward runs under the node's own guards: it is skipped whenever the forward node was.
    b.guards = [...(n.guard ?? [])];
    b.precision = n.precision; // ...and in the forward node's autocast region
    const gs = (rule as VjpRule)(e, n, g);
    gs.forEach((gi, k) => give(n.inputs[k], gi));
  }
  b.guards = [];
  b.precision = undefined;
  const result = ct.get(w) ?? zerosLike(e, w);
  b.guards = saved;
  return result;
}

export function autodiffGraph(g: Graph, diags: DiagnosticBag, modulePrecision?: IRModule["precision"]): Graph {
  if (!g.nodes.some((n) => n.op === "gradient")) return g.customVjps ? { ...g, customVjps: undefined } : g;
  const b = new GraphBuilder();
  const map: number[] = [];
  const pending = new Map<number, CustomVjp>();
  for (const c of g.customVjps ?? []) pending.set(Math.max(c.out, c.cotangent, ...c.grads, ...c.inputs), c);
  const customs = new Map<number, CustomVjp>();
  for (const n of g.nodes) {
    if (n.op === "gradient") {
      map[n.id] = backprop(b, map[n.inputs[0]], map[n.inputs[1]], customs, diags, modulePrecision);
    } else {
      b.precision = n.precision;
      map[n.id] = b.add(n.op, n.inputs.map((i) => map[i]), n.attrs, n.type, n.span, remapGuard(n.guard, (c) => map[c]));
    }
    const c = pending.get(n.id);
    if (c) customs.set(map[c.out], { out: map[c.out], inputs: c.inputs.map((i) => map[i]), cotangent: map[c.cotangent], grads: c.grads.map((i) => map[i]) });
  }
  const rebuilt: Graph = { ...withNodes(g, b.nodes, map), customVjps: undefined };
  return simplifyGraph(rebuilt);
}

export function autodiff(m: IRModule, diags: DiagnosticBag): IRModule {
  return { ...m, functions: m.functions.map((g) => autodiffGraph(g, diags, m.precision)) };
}
