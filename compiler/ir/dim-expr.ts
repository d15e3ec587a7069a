// IR stage, shape arithmetic: products of symbolic dims (`B * T`, `4 * B`) as one canonical Dim string,
// "4*B*T" (coefficient first, symbols sorted), so equal products compare equal by name everywhere a Dim is
// compared; and a product plus or minus a constant ("T-1", "B*T+2": slices and pads of symbolic axes), which is
// one factor "(T-1)" inside a product ("(T-1)*B"). The runtime evaluates such dims (runtime/dim-expr.ts).

import { dimAtoms, type Dim } from "./types.js";

/** The coefficient and sorted factors of a dim: 12 -> {12, []}, "4*B*T" -> {4, [B, T]}, "T-1" -> {1, [(T-1)]}. */
export function dimFactors(d: Dim): { c: number; syms: string[] } {
  if (typeof d === "number") return { c: d, syms: [] };
  let c = 1;
  const syms: string[] = [];
  for (const f of dimAtoms(d)) /^\d+$/.test(f) ? (c *= Number(f)) : syms.push(f);
  syms.sort();
  return { c, syms };
}

/**
 * A dim as a product part and a constant: "T-1" -> {T, -1}; "B*T+2" -> {B*T, 2}; "(H+1)/2-1" -> {(H+1)/2, -1};
 * "B" -> {B, 0}; 5 -> {0, 5}. Only a constant outside parentheses splits off.
 */
function split(d: Dim): { base: Dim; k: number } {
  if (typeof d === "number") return { base: 0, k: d };
  const m = /^(.+?)([+-]\d+)$/.exec(d);
  if (!m) return { base: d, k: 0 };
  let depth = 0;
  for (const ch of m[1]!) {
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (depth === 0 && (ch === "+" || ch === "-")) return { base: d, k: 0 };
  }
  return depth === 0 ? { base: m[1]!, k: Number(m[2]) } : { base: d, k: 0 };
}

/** d + k for an integer k: 5 + 1 = 6, "T" - 1 = "T-1", "T-1" + 1 = "T", "2*(H/2)" - 1 = "2*(H/2)-1". */
export function addDim(d: Dim, k: number): Dim | undefined {
  if (typeof d === "number") return d + k;
  const s = split(d);
  const total = s.k + k;
  return total === 0 ? s.base : `${s.base}${total > 0 ? "+" : ""}${total}`;
}

/** m * d spread over d's constant: 2 * "(H+1)/2-1" = "2*((H+1)/2)-2" (so addDim and dimAtLeast still see it). */
export function scaleDim(d: Dim, m: number): Dim {
  const s = split(d);
  return addDim(mulDims(s.base, m), s.k * m)!;
}

/**
 * floor(d / s) for an integer s >= 1, as a derived dim: 7 / 2 = 3, "H" / 2 = "H/2", "H+1" / 2 = "(H+1)/2",
 * "H-3" / 2 = "(H+1)/2-2" (the constant kept in [0, s) inside, the rest moved out, so equal values print alike),
 * "4*B" / 2 = "2*B". The runtime evaluates "/" as floor division (runtime/dim-expr.ts).
 */
export function floorDivDim(d: Dim, s: number): Dim {
  if (typeof d === "number") return Math.floor(d / s);
  if (s === 1) return d;
  const { base, k } = split(d);
  const r = ((k % s) + s) % s, q = (k - r) / s;
  // floor((floor(X / a) + r) / s) = floor((X + r a) / (a s)): two 2x2 pools of H read "H/4".
  const nested = typeof base === "string" ? /^(\(.+\)|[^()+\-*/]+)\/(\d+)$/.exec(base) : null;
  if (nested) {
    const a = Number(nested[2]);
    return addDim(floorDivDim(addDim(nested[1]!.startsWith("(") ? nested[1]!.slice(1, -1) : nested[1]!, r * a)!, a * s), q)!;
  }
  const exact = r === 0 ? divDims(base, s) : undefined;
  if (exact !== undefined) return addDim(exact, q)!;
  const inner = addDim(base, r)!;
  const bare = typeof inner === "string" && dimAtoms(inner).length === 1 && !inner.startsWith("(") && !/[+-]/.test(inner);
  return addDim(bare ? `${inner}/${s}` : `(${inner})/${s}`, q)!;
}

/**
 * Whether a >= b for every binding, where that follows from the forms alone: a known difference, or
 * a = s * ((X)/(s n)) + k, which is at least floor(X / n) - (s - 1) + k (the gradient of a strided window pads to
 * such a size and slices the input's size back out).
 */
export function dimAtLeast(a: Dim, b: Dim): boolean {
  const diff = dimDiff(a, b);
  if (diff !== undefined) return diff >= 0;
  const { base, k } = split(a);
  const f = dimFactors(base);
  const m = f.syms.length === 1 ? /^\((.+)\/(\d+)\)$/.exec(f.syms[0]!) : null;
  if (!m || Number(m[2]) % f.c !== 0) return false;
  const x = m[1]!.startsWith("(") && m[1]!.endsWith(")") ? m[1]!.slice(1, -1) : m[1]!;
  // c floor(X / (c n)) = c floor(floor(X / n) / c) >= floor(X / n) - (c - 1).
  const low = addDim(floorDivDim(x, Number(m[2]) / f.c), k - (f.c - 1));
  const d = low === undefined ? undefined : dimDiff(low, b);
  return d !== undefined && d >= 0;
}

/** a - b when it is a known integer ("T" - "T-1" = 1, 7 - 3 = 4), else undefined. */
export function dimDiff(a: Dim, b: Dim): number | undefined {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number" || typeof b === "number") return undefined;
  const x = split(a), y = split(b);
  return x.base === y.base ? x.k - y.k : undefined;
}

/** The canonical dim of c * product(syms). */
export function makeDim(c: number, syms: readonly string[]): Dim {
  if (syms.length === 0) return c;
  // A sum alone is written bare: "T-1", not "(T-1)".
  if (c === 1 && syms.length === 1 && syms[0]!.startsWith("(")) return syms[0]!.slice(1, -1);
  const sorted = [...syms].sort();
  return (c === 1 ? sorted : [String(c), ...sorted]).join("*");
}

export function mulDims(a: Dim, b: Dim): Dim {
  const x = dimFactors(a), y = dimFactors(b);
  return makeDim(x.c * y.c, [...x.syms, ...y.syms]);
}

/** a / b when b divides a exactly (as factors), else undefined. */
export function divDims(a: Dim, b: Dim): Dim | undefined {
  const x = dimFactors(a), y = dimFactors(b);
  if (y.c === 0 || x.c % y.c !== 0) return undefined;
  const syms = [...x.syms];
  for (const s of y.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return makeDim(x.c / y.c, syms);
}
