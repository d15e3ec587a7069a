// Lowering stage, function transforms: `grad(f)(args)` and `value_and_grad(f, wrt: ...)(args)`. The call of f
// is inlined with the differentiated arguments/params wrapped in identity nodes, and one `gradient(y, w)`
// marker per wrt is emitted; the autodiff pass later replaces each marker by the backward graph.

import type { ApplyExpr, Expr } from "../frontend/kiln/ast.js";
import { formatType, isFloat } from "../ir/types.js";
import type { Lowerer } from "./lowerer.js";
import type { ModelInfo } from "./module-scope.js";
import { POISON, tensor, type Val } from "./values.js";

const TRANSFORMS = ["grad", "value_and_grad"];

function names(e: Expr): { name: string; span: Expr["span"] }[] | undefined {
  if (e.kind === "name") return [{ name: e.name, span: e.span }];
  if (e.kind === "list" && e.items.every((i) => i.kind === "name")) return e.items.map((i) => ({ name: (i as { name: string }).name, span: i.span }));
  return undefined;
}

export function lowerApply(L: Lowerer, e: ApplyExpr): Val {
  const t = e.transform;
  if (!TRANSFORMS.includes(t.callee)) {
    L.diags.error("K601", `'${t.callee}(...)' does not return a function`, t.calleeSpan, "only grad(f)(x) and value_and_grad(f)(x) apply a transform");
    return POISON;
  }
  const target = t.args[0];
  if (t.args.length !== 1 || target.kind !== "name") {
    L.diags.error("K601", `${t.callee} takes one function name, e.g. ${t.callee}(f)`, t.span);
    return POISON;
  }
  const model: ModelInfo | undefined = L.frame.model;
  const method = model?.methods.get(target.name);
  const fn = method ?? L.scope.fns.get(target.name);
  if (!fn) {
    L.diags.error("K601", `${t.callee} needs a function defined with fn; '${target.name}' is not one`, target.span);
    return POISON;
  }
  const fnModel = method ? model : undefined;
  const wrtArgs: number[] = [];
  const wrtParams: string[] = [];
  for (const kw of t.kwargs) {
    const list = kw.name === "wrt" ? names(kw.value) : undefined;
    if (!list) {
      L.diags.error(kw.name === "wrt" ? "K601" : "K205", kw.name === "wrt" ? "wrt takes a name or a list of names" : `${t.callee} has no parameter '${kw.name}'`, kw.span);
      return POISON;
    }
    for (const w of list) {
      const argIndex = fn.params.findIndex((p) => p.name === w.name);
      if (argIndex >= 0) wrtArgs.push(argIndex);
      else if (fnModel?.params.has(w.name)) wrtParams.push(`${fnModel.path}.${w.name}`);
      else {
        const known = [...fn.params.map((p) => p.name), ...(fnModel ? fnModel.params.keys() : [])];
        L.diags.error("K604", `'${w.name}' is neither a parameter of '${fn.name}' nor a param of its model`, w.span, `choose from: ${known.join(", ")}`);
        return POISON;
      }
    }
  }
  if (t.kwargs.length === 0) {
    if (fn.params.length === 0) {
      L.diags.error("K601", `'${fn.name}' has no parameters to differentiate`, t.span, "name params with wrt: [...]");
      return POISON;
    }
    wrtArgs.push(0);
  }
  if (e.kwargs.length) {
    L.diags.error("K205", `'${fn.name}' takes positional arguments only`, e.kwargs[0].span);
    return POISON;
  }
  const args = e.args.map((a) => L.arg(a));
  if (args.some((a) => a.val.kind === "error")) return POISON;
  if (args.length !== fn.params.length) {
    L.diags.error("K204", `'${fn.name}' takes ${fn.params.length} argument(s), got ${args.length}`, e.span);
    return POISON;
  }
  const r = L.inlineCall(fn, fnModel, args, { span: e.span, calleeSpan: target.span }, { wrtArgs, wrtParams });
  L.span = e.span;
  if (!r) return POISON;
  const y = r.results[0];
  if (r.results.length !== 1 || y.kind !== "tensor" || L.type(y.id).shape.length !== 0 || !isFloat(L.type(y.id).dtype)) {
    const got = r.results.length !== 1 ? `${r.results.length} results` : y.kind === "tensor" ? formatType(L.type(y.id)) : "no tensor";
    L.diags.error("K602", `${t.callee} needs '${fn.name}' to return one float scalar, got ${got}`, e.span, "reduce it first, e.g. return sum(...) or mean(...)");
    return POISON;
  }
  const grads: Val[] = [];
  for (const w of r.wrt) {
    const wt = L.type(w);
    if (!isFloat(wt.dtype)) {
      L.diags.error("K603", `cannot differentiate with respect to ${formatType(wt)}: only float values have gradients`, e.span);
      return POISON;
    }
    grads.push(tensor(L.b.add("gradient", [y.id, w], {}, wt, e.span)));
  }
  const out = t.callee === "value_and_grad" ? [y, ...grads] : grads;
  return out.length === 1 ? out[0] : { kind: "tuple", items: out };
}
