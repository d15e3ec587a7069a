// Strict weight loading: a weights file must hold every weight of the module with its dtype and shape, or a
// param silently keeps its initial values. Shared by loadWeights and loadQuantized (runtime/quantize-io.ts).

import { KilnError } from "./errors.js";
import type { Manifest } from "./manifest.js";

export interface LoadWeightsOptions {
  /**
   * Accept a file that lacks some weights (they keep their current values), e.g. to load a pretrained
   * backbone into a bigger model. Tensors the module does not have, and mismatched ones, are still errors.
   */
  partial?: boolean;
}

/** The params a weights file must provide: weights, not optimizer state or mixed-precision copies. */
export function requiredWeights(manifest: Manifest): string[] {
  return manifest.params.filter((p) => p.role === undefined || p.role === "weight").map((p) => p.name);
}

/** Throws a KilnError naming the first missing weight (and how many), unless `opts.partial`. */
export function checkNoMissingWeights(manifest: Manifest, present: ReadonlySet<string>, what: string, opts: LoadWeightsOptions = {}): void {
  if (opts.partial) return;
  const missing = requiredWeights(manifest).filter((n) => !present.has(n));
  if (missing.length === 0) return;
  const p = manifest.params.find((x) => x.name === missing[0])!;
  const more = missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1, 6).join(", ")}${missing.length > 6 ? ", ..." : ""})` : "";
  throw new KilnError(
    `${what}: the file has no tensor "${missing[0]}" (${p.dtype}[${p.shape.join(", ")}])${more}; it would keep its initial values. Pass { partial: true } to load only the tensors present`,
    { code: "load_failed", tensor: missing[0], expected: `${p.dtype}[${p.shape.join(", ")}]`, actual: "missing" },
  );
}

/** Checks one tensor of a file against the param it sets, before anything is written. */
export function checkWeightType(manifest: Manifest, name: string, t: { dtype: string; shape: readonly number[] }, what: string): void {
  const p = manifest.params.find((x) => x.name === name);
  if (!p) return; // unknown names are reported by the caller, which knows the module's name
  if (t.dtype !== p.dtype || t.shape.join() !== p.shape.join()) {
    const expected = `${p.dtype}[${p.shape.join(", ")}]`;
    const actual = `${t.dtype}[${t.shape.join(", ")}]`;
    throw new KilnError(`${what}: tensor "${name}" must be ${expected}, got ${actual}`, { code: "load_failed", tensor: name, expected, actual });
  }
}
