// Lowering stage, composition: the expressions that reach a model's submodules (`attn.forward(x)`,
// `blocks[i].forward(x)`), lowered as inlined method calls on the instance (module-scope.ts builds one ModelInfo
// per instance, each with its own param prefix, `GPT.blocks.0.attn`).

import type { MemberCallExpr } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import type { ModelInfo, ModuleScope } from "./module-scope.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, type Val } from "./values.js";
import { closest } from "../suggest.js";

/** The value a submodule field name stands for inside a method of `model`. */
export function subValue(scope: ModuleScope, model: ModelInfo, name: string): Val | undefined {
  const s = model.subs.get(name);
  if (!s) return undefined;
  if (s.count === undefined) return { kind: "module", info: scope.instances.get(`${model.path}.${name}`)! };
  const infos = [...Array(s.count).keys()].map((i) => scope.instances.get(`${model.path}.${name}.${i}`)!);
  return { kind: "modules", name, infos };
}

/** `blocks[i]` with a compile-time i (a literal or an unrolled loop's variable); negative counts from the end. */
export function pickModule(L: Lowerer, v: Extract<Val, { kind: "modules" }>, index: Val, span: Span): Val {
  const n = v.infos.length;
  if (index.kind !== "literal" || !Number.isInteger(index.value)) {
    L.diags.error("K304", `the index of submodule array '${v.name}' must be a compile-time integer`, span, `a literal, or the variable of a loop with constant bounds: for i in 0..${n}`);
    return POISON;
  }
  const i = index.value < 0 ? index.value + n : index.value;
  if (i < 0 || i >= n) {
    L.diags.error("K407", `index ${index.value} is out of range for submodule array '${v.name}' of ${n}`, span, `indices run from 0 to ${n - 1} (or -${n} to -1)`);
    return POISON;
  }
  return { kind: "module", info: v.infos[i]! };
}

/** `sub.method(args)`: the method inlined with the submodule instance's params. */
export function lowerMemberCall(L: Lowerer, e: MemberCallExpr, inline: (fn: NonNullable<ReturnType<ModelInfo["methods"]["get"]>>, model: ModelInfo) => Val): Val {
  const obj = L.expr(e.object);
  if (obj.kind === "error") return POISON;
  if (obj.kind === "modules") {
    L.diags.error("K501", `'${obj.name}' is an array of submodules; pick one first`, e.object.span, `e.g. ${obj.name}[0].${e.method}(...)`);
    return POISON;
  }
  if (obj.kind !== "module") {
    L.diags.error("K501", `only submodules have methods; this is not one`, e.object.span, "declare one in the model: attn: Attention");
    return POISON;
  }
  const fn = obj.info.methods.get(e.method);
  if (!fn) {
    const near = closest(e.method, [...obj.info.methods.keys()]);
    L.diags.error("K203", `model ${obj.info.decl.name} has no method '${e.method}'`, e.methodSpan, near ? `did you mean '${near}'?` : undefined);
    return POISON;
  }
  if (e.kwargs.length) {
    L.diags.error("K205", `'${e.method}' takes positional arguments only`, e.kwargs[0]!.span);
    return POISON;
  }
  return inline(fn, obj.info);
}
