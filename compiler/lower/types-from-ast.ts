// Lowering stage: turns written types (`f32[B, 784]`) into IR TensorTypes and unifies declared types with the
// actual types of arguments/results, binding symbolic dims (a callee's N := caller's B or 128).

import type { TypeExpr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag, Span } from "../diagnostics.js";
import { formatType, isDType, type Dim, type TensorType } from "../ir/types.js";
import { tooManyElements, TOO_MANY_ELEMENTS_HINT } from "./size-limits.js";

/** Resolves a written type; symbols are mapped through `dims` when bound there, else kept by name. */
export function resolveType(t: TypeExpr, diags: DiagnosticBag, dims?: ReadonlyMap<string, Dim>): TensorType | undefined {
  if (!isDType(t.dtype)) {
    diags.error("K209", `unknown dtype '${t.dtype}'`, t.span, "dtypes are f32, f16, bf16, f64, i32, i8, u8, bool");
    return undefined;
  }
  let ok = true;
  const shape = t.dims.map((d): Dim => {
    if (d.kind === "const") {
      if (!Number.isInteger(d.value) || d.value < 1) {
        diags.error("K409", `dimension ${d.value} must be a positive integer`, d.span);
        ok = false;
      }
      return d.value;
    }
    return dims?.get(d.name) ?? d.name;
  });
  if (!ok) return undefined;
  const huge = tooManyElements({ dtype: t.dtype, shape });
  if (huge) {
    diags.error("K412", `tensor type too large: ${huge}`, t.span, TOO_MANY_ELEMENTS_HINT);
    return undefined;
  }
  return { dtype: t.dtype, shape };
}

/**
 * Checks `actual` against the declared `t`, binding unbound symbols of `t` in `dims`. Returns false (after a
 * diagnostic at `span`) on mismatch. `what` names the thing checked, e.g. `argument "x" of f`. A function's
 * result (`result`) that differs in dtype, rank or any dimension is K303, as docs/language.md lists it.
 */
export function unifyType(t: TypeExpr, actual: TensorType, dims: Map<string, Dim>, diags: DiagnosticBag, span: Span, what: string, result = false): boolean {
  if (!isDType(t.dtype)) {
    diags.error("K209", `unknown dtype '${t.dtype}'`, t.span, "dtypes are f32, f16, bf16, f64, i32, i8, u8, bool");
    return false;
  }
  const declared = () => t.dtype + (t.dims.length ? "[" + t.dims.map((d) => (d.kind === "const" ? d.value : d.name)).join(", ") + "]" : "");
  if (t.dtype !== actual.dtype) {
    diags.error(result ? "K303" : "K301", `${what} must be ${declared()}, got ${formatType(actual)}`, span, `use cast(x, ${t.dtype})`);
    return false;
  }
  if (t.dims.length !== actual.shape.length) {
    diags.error(result ? "K303" : "K409", `${what} must have rank ${t.dims.length} (${declared()}), got ${formatType(actual)}`, span);
    return false;
  }
  const local = new Map(dims);
  for (let k = 0; k < t.dims.length; k++) {
    const d = t.dims[k];
    const a = actual.shape[k];
    const want: Dim | undefined = d.kind === "const" ? d.value : local.get(d.name);
    if (want === undefined && d.kind === "sym") {
      local.set(d.name, a);
      continue;
    }
    if (want !== a) {
      const sym = typeof want === "string" || typeof a === "string";
      diags.error(
        result ? "K303" : sym ? "K405" : "K409",
        `${what} must be ${declared()}, got ${formatType(actual)}: dimension ${k} is ${a}, expected ${want}`,
        span,
        sym ? "a symbolic dimension only matches the same symbol; a known size never matches a symbol" : undefined,
      );
      return false;
    }
  }
  for (const [k, v] of local) dims.set(k, v);
  return true;
}
