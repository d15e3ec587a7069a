// IR stage, shared vocabulary: dtypes, (symbolic) dimensions and tensor types used by every later stage.
// A dimension is either a concrete size or a symbol (e.g. "B") bound when a function is called.

export const DTYPES = ["f32", "f16", "bf16", "f64", "i32", "i8", "u8", "bool"] as const;
export type DType = (typeof DTYPES)[number];

export type Dim = number | string;
export type Shape = readonly Dim[];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function isFloat(d: DType): boolean {
  return d === "f32" || d === "f16" || d === "bf16" || d === "f64";
}

export function isInt(d: DType): boolean {
  return d === "i32" || d === "i8" || d === "u8";
}

/** Bytes per element in linear memory (bool is stored as one byte): the runtime's table, shared. */
export { dtypeBytes } from "../../runtime/dtype.js";

export function formatDim(d: Dim): string {
  return typeof d === "number" ? String(d) : d;
}

export function formatShape(s: Shape): string {
  return "[" + s.map(formatDim).join(", ") + "]";
}

export function formatType(t: TensorType): string {
  return t.shape.length === 0 ? t.dtype : t.dtype + formatShape(t.shape);
}

export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Product of the concrete dims and the multiset of symbols; used to compare element counts symbolically. */
export function symbolicNumel(s: Shape): { c: number; syms: string[] } {
  let c = 1;
  const syms: string[] = [];
  for (const d of s) {
    if (typeof d === "number") c *= d;
    // A product dim ("4*B*T", compiler/ir/dim-expr.ts) counts as its factors, so [B, T] reshapes to [B*T].
    else for (const f of dimAtoms(d)) /^\d+$/.test(f) ? (c *= Number(f)) : syms.push(f);
  }
  syms.sort();
  return { c, syms };
}

export function concreteNumel(s: Shape, bind?: Record<string, number>): number {
  let n = 1;
  for (const d of s) {
    if (typeof d === "number") n *= d;
    else {
      const v = bind?.[d];
      if (v === undefined) throw new Error(`unbound dimension ${d}`);
      n *= v;
    }
  }
  return n;
}

/**
 * The factors of a symbolic dim: "4*B*T" -> ["4", "B", "T"]; a sum is one factor in parentheses, alone
 * ("T-1" -> ["(T-1)"]) or in a product ("(T-1)*B" -> ["(T-1)", "B"]). See compiler/ir/dim-expr.ts.
 */
export function dimAtoms(d: string): string[] {
  const out: string[] = [];
  let depth = 0, start = 0, sum = false;
  for (let i = 0; i < d.length; i++) {
    const ch = d[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    // A floor division ("H/2") is one factor too, kept in parentheses inside a product: "(H/2)*C".
    else if (depth === 0 && (ch === "+" || ch === "-" || ch === "/")) sum = true;
    else if (depth === 0 && ch === "*") {
      out.push(d.slice(start, i));
      start = i + 1;
    }
  }
  if (sum) return [`(${d})`];
  out.push(d.slice(start));
  return out;
}
