// Lowering stage entry: a parsed Program -> IRModule (params with init specs + one graph per exported function:
// every top-level fn and every model method), or diagnostics. All errors in the file are collected.

import type { Program } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import type { Graph, IRModule, ParamInfo } from "../ir/graph.js";
import { FnLowerer } from "./lower-fn.js";
import { collectScope } from "./module-scope.js";
import { lowerParam } from "./params.js";
import { lowerTrain } from "./train.js";
import { lowerTrainParallel } from "./train-parallel.js";
import { checkAttributes } from "./autocast.js";

export interface LowerOptions {
  /** `--precision mixed-f16|mixed-bf16`: recorded on the module for the precision pass. */
  readonly precision?: "f16" | "bf16";
  /** Also lower each train block in data-parallel form (`Name.grad` and `Name.apply`, train-parallel.ts). */
  readonly dataParallel?: boolean;
}

export function lowerProgram(program: Program, diags: DiagnosticBag, opts: LowerOptions = {}): IRModule | undefined {
  checkAttributes(program, diags);
  const scope = { ...collectScope(program, diags), ...(opts.precision ? { precision: opts.precision } : {}) };
  const params: ParamInfo[] = [];
  const functions: Graph[] = [];
  // Every instance's params, in declaration order; a submodule's are named by its path and belong to the
  // outermost model (a model used only inside others has no params or functions of its own).
  for (const inst of scope.instances.values()) {
    if (scope.nested.has(inst.root)) continue;
    for (const p of inst.params.values()) {
      const info = lowerParam(inst.root, p, diags);
      if (info) params.push(inst.path === inst.root ? info : { ...info, name: `${inst.path}.${p.name}` });
    }
  }
  for (const item of program.items) {
    if (item.kind === "fn") {
      if (scope.fns.get(item.name) !== item) continue;
      const g = new FnLowerer(scope).lowerExported(item, undefined);
      if (g) functions.push(g);
    } else if (item.kind === "train") {
      const r = lowerTrain(scope, item, params);
      if (r) {
        functions.push(r.graph);
        params.push(...r.state.filter((s, i, all) => all.findIndex((x) => x.name === s.name) === i));
        const dp = opts.dataParallel ? lowerTrainParallel(scope, item, params) : undefined;
        if (dp) {
          functions.push(...dp.graphs);
          params.push(...dp.state.filter((s) => !params.some((x) => x.name === s.name)));
        }
      }
    } else {
      const m = scope.models.get(item.name);
      if (m?.decl !== item || scope.nested.has(item.name)) continue;
      for (const fn of m.methods.values()) {
        const g = new FnLowerer(scope).lowerExported(fn, m);
        if (g) functions.push(g);
      }
    }
  }
  if (diags.hasErrors) return undefined;
  return opts.precision ? { source: program.file, precision: opts.precision, params, functions } : { source: program.file, params, functions };
}
