// Lowering stage: turns written types (`f32[B, 784]`) into IR TensorTypes and unifies declared types with the
// actual types of arguments/results, binding symbolic dims (a callee's N := caller's B or 128).

import type { DimExpr, TypeExpr } from "../frontend/kiln/ast.js";
import { addDim, floorDivDim, mulDims } from "../ir/dim-expr.js";
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
    if (d.kind === "product") return d.factors.reduce<Dim>((a, f) => mulDims(a, f.kind === "const" ? f.value : dims?.get(f.name) ?? f.name), 1);
    if (d.kind === "offset" || d.kind === "floordiv") {
      const sum = resolveDim(d, dims);
      if (sum === undefined || (typeof sum === "number" && sum < 1)) {
        diags.error("K409", `dimension ${dimText(d)} is not a positive size or not supported`, d.span, "a dimension plus or minus a constant, e.g. T - 1, or floor-divided by one, e.g. (H + 1) / 2");
        ok = false;
        return 1;
      }
      return sum;
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
  const declared = () => t.dtype + (t.dims.length ? "[" + t.dims.map(dimText).join(", ") + "]" : "");
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
    const want: Dim | undefined = d.kind === "const" ? d.value : d.kind === "sym" ? local.get(d.name) : knownDim(d, local);
    if (want === undefined && d.kind !== "sym") {
      diags.error("K405", `${what} must be ${declared()}, got ${formatType(actual)}: the factors of ${dimText(d)} are not known here`, span, "bind each factor elsewhere in the signature, e.g. x: f32[B, T], y: f32[B * T]");
      return false;
    }
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

function dimText(d: DimExpr): string {
  if (d.kind === "offset") return `${dimText(d.base)} ${d.offset < 0 ? "-" : "+"} ${Math.abs(d.offset)}`;
  if (d.kind === "floordiv") return `${d.base.kind === "offset" || d.base.kind === "product" ? `(${dimText(d.base)})` : dimText(d.base)} / ${d.divisor}`;
  return d.kind === "const" ? String(d.value) : d.kind === "sym" ? d.name : d.factors.map(dimText).join(" * ");
}

/** A written dim with its symbols looked up in `dims` (unbound ones kept by name); undefined when unsupported. */
function resolveDim(d: DimExpr, dims?: ReadonlyMap<string, Dim>): Dim | undefined {
  if (d.kind === "const") return d.value;
  if (d.kind === "sym") return dims?.get(d.name) ?? d.name;
  if (d.kind === "product") return d.factors.reduce<Dim>((a, f) => mulDims(a, f.kind === "const" ? f.value : dims?.get(f.name) ?? f.name), 1);
  const base = resolveDim(d.base, dims);
  if (base === undefined) return undefined;
  return d.kind === "offset" ? addDim(base, d.offset) : floorDivDim(base, d.divisor);
}

function symsOf(d: DimExpr): string[] {
  if (d.kind === "sym") return [d.name];
  if (d.kind === "product") return d.factors.flatMap(symsOf);
  return d.kind === "const" ? [] : symsOf(d.base);
}

/** A declared product, offset or division's value once every symbol in it is bound, else undefined. */
function knownDim(d: DimExpr, dims: ReadonlyMap<string, Dim>): Dim | undefined {
  return symsOf(d).every((n) => dims.has(n)) ? resolveDim(d, dims) : undefined;
}
