// Runtime, shape arithmetic: a derived dim such as "B*T" or "4*B" (a product the compiler wrote as one canonical
// name, compiler/ir/dim-expr.ts) gets its value from the bound symbols, so executors look it up like any other.

/** Adds the value of every product dim among `shapes` to `dims` (bound symbols only; unknown factors are left). */
export function bindDerivedDims(dims: Record<string, number>, shapes: Iterable<readonly (number | string)[]>): void {
  for (const shape of shapes) {
    for (const d of shape) {
      if (typeof d !== "string" || dims[d] !== undefined || !d.includes("*")) continue;
      let v = 1;
      for (const f of d.split("*")) v *= /^\d+$/.test(f) ? Number(f) : (dims[f] ?? NaN);
      if (Number.isFinite(v)) dims[d] = v;
    }
  }
}
