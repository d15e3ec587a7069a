// Multi-output results by name: a call with several outputs returns the array of results (in order, as before)
// that also carries each output under its manifest name (`r.loss`, `r.result1`). Shared by both backends and the
// .d.ts emitter, so the types name exactly the properties the runtime sets.

import type { FunctionManifest } from "./manifest.js";

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * The output names a result array carries: identifiers that no other output of the function shares and that are
 * no member of an array (`length`, `map`, ...), which they would otherwise shadow.
 */
export function namedOutputs(fn: Pick<FunctionManifest, "outputs">): Array<string | undefined> {
  const names = fn.outputs.map((o) => o.name);
  return names.map((n) => (IDENT.test(n) && !(n in Array.prototype) && n !== "__proto__" && names.indexOf(n) === names.lastIndexOf(n) ? n : undefined));
}

/** Adds the output names to a result array (non-enumerable, so printing and comparing the array are unchanged). */
export function withOutputNames<T>(fn: Pick<FunctionManifest, "outputs">, results: T[]): T[] {
  namedOutputs(fn).forEach((name, i) => {
    if (name !== undefined) Object.defineProperty(results, name, { value: results[i], enumerable: false });
  });
  return results;
}
