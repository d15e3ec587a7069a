// Lowering stage: the names a program declares (top-level fns, models with their params, methods and submodules),
// collected once before any function body is lowered, with duplicate-definition checks.

import type { FnDecl, ModelDecl, ParamDecl, Program, SubDecl } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { closest } from "../suggest.js";

export interface ModelInfo {
  readonly decl: ModelDecl;
  readonly params: Map<string, ParamDecl>;
  readonly methods: Map<string, FnDecl>;
  /** Submodules by field name (`attn: Attention`, `blocks: Block[4]`). */
  readonly subs: Map<string, SubInfo>;
  /**
   * Prefix of this instance's qualified names: the model's own name for a model lowered on its own, or
   * `GPT.blocks.0` for an instance inside another model (its params are `GPT.blocks.0.w_q`).
   */
  readonly path: string;
  /** The outermost model this instance belongs to (its params are trained and saved with that model's). */
  readonly root: string;
}

export interface ModuleScope {
  readonly file: string;
  readonly fns: Map<string, FnDecl>;
  readonly models: Map<string, ModelInfo>;
  readonly diags: DiagnosticBag;
  /** The module's `--precision` (absent: f32): mixed-f16 gives train blocks dynamic loss scaling by default. */
  readonly precision?: "f16" | "bf16";
  /** Every model instance by path: the models themselves and, under them, their submodules. */
  readonly instances: Map<string, ModelInfo>;
  /** Models that are some other model's submodule: lowered only inside it, not exported on their own. */
  readonly nested: Set<string>;
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
    const info: ModelInfo = { decl: item, params: new Map(), methods: new Map(), subs: new Map(), path: item.name, root: item.name };
    const inner = new Set<string>();
    for (const pd of item.params) {
      if (inner.has(pd.name)) diags.error("K202", `'${pd.name}' is already defined in model ${item.name}`, pd.span);
      else info.params.set(pd.name, pd);
      inner.add(pd.name);
    }
    for (const sd of item.subs ?? []) {
      if (inner.has(sd.name)) diags.error("K202", `'${sd.name}' is already defined in model ${item.name}`, sd.nameSpan);
      else info.subs.set(sd.name, { model: sd.type.dtype, count: undefined, decl: sd });
      inner.add(sd.name);
    }
    for (const m of item.methods) {
      if (inner.has(m.name)) diags.error("K202", `'${m.name}' is already defined in model ${item.name}`, m.nameSpan);
      else info.methods.set(m.name, m);
      inner.add(m.name);
    }
    models.set(item.name, info);
  }
  const { instances, nested } = collectSubmodules(models, diags);
  return { file: p.file, fns, models, diags, instances, nested };
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

/** The instance and local name of a qualified param name (`GPT.blocks.0.w_q` -> blocks.0's info, "w_q"). */
export function paramOwner(scope: ModuleScope, qualified: string): { info: ModelInfo; name: string } | undefined {
  const cut = qualified.lastIndexOf(".");
  const info = scope.instances.get(qualified.slice(0, cut));
  const name = qualified.slice(cut + 1);
  return info?.params.has(name) ? { info, name } : undefined;
}

export interface SubInfo {
  /** The submodule's model. */
  readonly model: string;
  /** n for `name: Model[n]`; undefined for a single instance. */
  readonly count: number | undefined;
  readonly decl: SubDecl;
}

/** Checks submodule fields (known model, count, no model inside itself) and builds every instance by path. */
export function collectSubmodules(models: Map<string, ModelInfo>, diags: DiagnosticBag): { instances: Map<string, ModelInfo>; nested: Set<string> } {
  const nested = new Set<string>();
  for (const m of models.values()) {
    for (const [name, s] of [...m.subs]) {
      const t = s.decl.type;
      if (!models.has(s.model)) {
        const near = closest(s.model, [...models.keys()]);
        diags.error("K201", `unknown model '${s.model}' for submodule '${name}'`, t.span, near ? `did you mean '${near}'?` : "a submodule's type is a model of this file");
        m.subs.delete(name);
        continue;
      }
      const [d, ...extra] = t.dims;
      if (extra.length || (d && (d.kind !== "const" || !Number.isInteger(d.value) || d.value < 1))) {
        diags.error("K409", `submodule '${name}' needs one positive integer count, as in ${s.model}[4]`, t.span);
        m.subs.delete(name);
        continue;
      }
      m.subs.set(name, { ...s, count: d ? (d as { value: number }).value : undefined });
      nested.add(s.model);
    }
  }
  const instances = new Map<string, ModelInfo>();
  const expand = (info: ModelInfo, chain: string[]) => {
    instances.set(info.path, info);
    for (const [name, s] of info.subs) {
      if (chain.includes(s.model)) {
        diags.error("K210", `model ${info.decl.name} contains itself (${[...chain, s.model].join(" -> ")})`, s.decl.span, "a model cannot be its own submodule");
        continue;
      }
      const base = models.get(s.model)!;
      const paths = s.count === undefined ? [`${info.path}.${name}`] : [...Array(s.count).keys()].map((i) => `${info.path}.${name}.${i}`);
      for (const path of paths) expand({ ...base, path, root: info.root }, [...chain, s.model]);
    }
  };
  for (const m of models.values()) expand(m, [m.decl.name]);
  return { instances, nested };
}
