// Where each function appears on a loaded module object. Shared by the runtime (which installs the methods) and
// the .d.ts emitter (which types them), so both always agree.

import type { FunctionManifest } from "./manifest.js";

/** Members of KilnModule: a function or model with one of these names is only reachable through call(). */
export const MODULE_MEMBERS: readonly string[] = [
  "manifest", "functions", "call", "params", "getParam", "setParam", "paramsByName", "memoryStats", "dispose",
  "backend", "threads", "simd", "fallbackReason", "sync",
];

function reserved(name: string): boolean {
  return MODULE_MEMBERS.includes(name) || name in Object.prototype || name === "__proto__" || name === "then";
}

export interface MethodLayout {
  /** Model namespaces: module[model][jsName]. */
  models: Map<string, FunctionManifest[]>;
  /** Functions installed directly as module[jsName]. */
  direct: FunctionManifest[];
}

/**
 * module[Model][jsName] for every model method (unless the model name is reserved); module[jsName] for every
 * function whose jsName no other function shares, is no model name and is not reserved. `then` is reserved so a
 * module is never mistaken for a promise.
 */
export function methodLayout(functions: readonly FunctionManifest[]): MethodLayout {
  const models = new Map<string, FunctionManifest[]>();
  for (const f of functions) {
    if (f.model === undefined || reserved(f.model)) continue;
    let list = models.get(f.model);
    if (!list) models.set(f.model, (list = []));
    list.push(f);
  }
  const count = new Map<string, number>();
  for (const f of functions) count.set(f.jsName, (count.get(f.jsName) ?? 0) + 1);
  const direct = functions.filter((f) => count.get(f.jsName) === 1 && !models.has(f.jsName) && !reserved(f.jsName));
  return { models, direct };
}
