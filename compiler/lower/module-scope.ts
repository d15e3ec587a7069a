// Lowering stage: the names a program declares (top-level fns, models with their params and methods),
// collected once before any function body is lowered, with duplicate-definition checks.

import type { FnDecl, ModelDecl, ParamDecl, Program } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";

export interface ModelInfo {
  readonly decl: ModelDecl;
  readonly params: Map<string, ParamDecl>;
  readonly methods: Map<string, FnDecl>;
}

export interface ModuleScope {
  readonly file: string;
  readonly fns: Map<string, FnDecl>;
  readonly models: Map<string, ModelInfo>;
  readonly diags: DiagnosticBag;
  /** The module's `--precision` (absent: f32): mixed-f16 gives train blocks dynamic loss scaling by default. */
  readonly precision?: "f16" | "bf16";
}

export function collectScope(p: Program, diags: DiagnosticBag): ModuleScope {
  const fns = new Map<string, FnDecl>();
  const models = new Map<string, ModelInfo>();
  const seen = new Map<string, string>();
  const claim = (name: string, what: string, span: FnDecl["nameSpan"]) => {
    const prev = seen.get(name);
    if (prev) {
      diags.error("K202", `'${name}' is already defined as ${prev}`, span, "give it another name");
      return false;
    }
    seen.set(name, what);
    return true;
  };
  for (const item of p.items) {
    if (item.kind === "fn") checkParamNames(item, diags);
    if (item.kind === "model") for (const m of item.methods) checkParamNames(m, diags);
    if (item.kind === "fn") {
      if (claim(item.name, "a function", item.nameSpan)) fns.set(item.name, item);
      continue;
    }
    if (item.kind === "train") {
      claim(item.name, "a train block", item.nameSpan);
      continue;
    }
    if (!claim(item.name, "a model", item.nameSpan)) continue;
    const info: ModelInfo = { decl: item, params: new Map(), methods: new Map() };
    const inner = new Set<string>();
    for (const pd of item.params) {
      if (inner.has(pd.name)) diags.error("K202", `'${pd.name}' is already defined in model ${item.name}`, pd.span);
      else info.params.set(pd.name, pd);
      inner.add(pd.name);
    }
    for (const m of item.methods) {
      if (inner.has(m.name)) diags.error("K202", `'${m.name}' is already defined in model ${item.name}`, m.nameSpan);
      else info.methods.set(m.name, m);
      inner.add(m.name);
    }
    models.set(item.name, info);
  }
  return { file: p.file, fns, models, diags };
}

/** Two parameters with one name: the second would shadow the first, and no call could bind both. */
function checkParamNames(fn: FnDecl, diags: DiagnosticBag): void {
  const seen = new Set<string>();
  for (const p of fn.params) {
    if (seen.has(p.name)) diags.error("K202", `parameter '${p.name}' is already defined in '${fn.name}'`, p.span, "give each parameter its own name");
    seen.add(p.name);
  }
}

/** The models that own a param (or method) called `name`, for "used outside its model" diagnostics. */
export function ownersOf(scope: ModuleScope, name: string, what: "params" | "methods"): string[] {
  return [...scope.models.values()].filter((m) => m[what].has(name)).map((m) => m.decl.name);
}
