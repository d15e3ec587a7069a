// Codegen helper: integer expressions over symbolic dims (DimPoly, sums of c * product(symbols)) used for the
// extents, strides and offsets a kernel call receives; the runtime evaluates them with the call's bindings.

import type { DimPoly } from "../../runtime/manifest.js";
import type { Dim } from "../ir/types.js";

export function polyConst(c: number): DimPoly {
  return c === 0 ? [] : [[c]];
}

/** Product of dims as a single monomial. */
export function polyProduct(dims: readonly Dim[]): DimPoly {
  let c = 1;
  const syms: string[] = [];
  for (const d of dims) typeof d === "number" ? (c *= d) : syms.push(d);
  syms.sort();
  return c === 0 ? [] : [[c, ...syms]];
}

export function polyScale(p: DimPoly, k: number): DimPoly {
  return k === 0 ? [] : p.map(([c, ...s]) => [c * k, ...s] as [number, ...string[]]);
}

export function polyAdd(a: DimPoly, b: DimPoly): DimPoly {
  const out = new Map<string, [number, ...string[]]>();
  for (const [c, ...s] of [...a, ...b]) {
    const key = s.join("*");
    const prev = out.get(key);
    out.set(key, prev ? [prev[0] + c, ...s] : [c, ...s]);
  }
  return [...out.values()].filter(([c]) => c !== 0);
}

/** Row-major strides of a shape, each as a monomial. */
export function polyStrides(shape: readonly Dim[]): DimPoly[] {
  return shape.map((_, k) => polyProduct(shape.slice(k + 1)));
}
