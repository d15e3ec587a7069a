// Lowering stage, user-written gradients: at each call of a fn with a `backward(dy[, y]) { ... }` rule, the
// rule's body is lowered against a `cotangent` placeholder and checked (one gradient per parameter, each with
// its parameter's dtype and shape); the autodiff pass substitutes the real output gradient when it needs it.

import type { FnDecl } from "../frontend/kiln/ast.js";
import { formatType, sameShape } from "../ir/types.js";
import type { Frame, Lowerer } from "./lowerer.js";
import { tensor, type Val } from "./values.js";

export function lowerCustomBackward(L: Lowerer, fn: FnDecl, fwd: Frame, argIds: number[], results: Val[]): Val[] | undefined {
  const rule = fn.backward!;
  if (results.length !== 1 || results[0].kind !== "tensor") {
    L.diags.error("K606", `a function with a backward rule must return exactly one tensor; '${fn.name}' returns ${results.length}`, rule.span);
    return undefined;
  }
  if (rule.params.length < 1 || rule.params.length > 2) {
    L.diags.error("K606", `backward takes the output gradient and optionally the forward result: backward(dy) or backward(dy, y)`, rule.span);
    return undefined;
  }
  // The result gets its own node so the autodiff pass can stop there and use the rule instead of the body.
  const out = L.identity(results[0].id);
  const outType = L.type(out);
  const ct = L.b.add("cotangent", [], { site: L.customVjps.length }, outType, rule.params[0].span);
  const frame: Frame = { ...fwd, vars: new Map(fwd.vars), declared: new Set() };
  frame.vars.set(rule.params[0].name, tensor(ct));
  if (rule.params[1]) frame.vars.set(rule.params[1].name, tensor(out));
  const before = L.diags.items.length;
  const r = L.lowerRuleBody(frame, rule.body);
  if (L.diags.items.length > before) return undefined;
  if (!r) {
    L.diags.error("K208", `the backward rule of '${fn.name}' does not return its gradients`, rule.endSpan, `end it with return followed by ${fn.params.length} gradient(s)`);
    return undefined;
  }
  const grads = r.vals.flatMap((v) => (v.kind === "tuple" ? v.items : [v]));
  if (grads.length !== fn.params.length) {
    L.diags.error("K606", `the backward rule of '${fn.name}' returns ${grads.length} gradient(s) but '${fn.name}' has ${fn.params.length} parameter(s)`, r.spans[0] ?? rule.span, "return one gradient per parameter, in order");
    return undefined;
  }
  const gradIds: number[] = [];
  for (let i = 0; i < grads.length; i++) {
    const want = L.type(argIds[i]);
    const m = L.materialize(grads[i], r.spans[i] ?? rule.span, want.dtype);
    if (m.kind !== "tensor") return undefined;
    // A constant gradient (`return 0`) is spread over the parameter's shape.
    const g = grads[i].kind === "literal" ? { id: L.b.add("broadcast_to", [m.id], { shape: want.shape }, want, r.spans[i]) } : m;
    const got = L.type(g.id);
    if (got.dtype !== want.dtype || !sameShape(got.shape, want.shape)) {
      L.diags.error("K607", `gradient ${i} of '${fn.name}' (for '${fn.params[i].name}') is ${formatType(got)} but '${fn.params[i].name}' is ${formatType(want)}`, r.spans[i] ?? rule.span, "a gradient has its parameter's dtype and shape");
      return undefined;
    }
    gradIds.push(g.id);
  }
  L.customVjps.push({ out, inputs: argIds, cotangent: ct, grads: gradIds });
  return [tensor(out)];
}
