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

/** A dim as a product part and a constant: "T-1" -> {T, -1}; "B*T+2" -> {B*T, 2}; "B" -> {B, 0}; 5 -> {0, 5}. */
function split(d: Dim): { base: Dim; k: number } {
  if (typeof d === "number") return { base: 0, k: d };
  const m = /^([^()+-]+?)([+-]\d+)$/.exec(d);
  return m ? { base: m[1]!, k: Number(m[2]) } : { base: d, k: 0 };
}

/** d + k for an integer k: 5 + 1 = 6, "T" - 1 = "T-1", "T-1" + 1 = "T"; undefined for a product of a sum. */
export function addDim(d: Dim, k: number): Dim | undefined {
  if (typeof d === "number") return d + k;
  if (d.startsWith("(") || d.includes(")")) return undefined;
  const s = split(d);
  const total = s.k + k;
  return total === 0 ? s.base : `${s.base}${total > 0 ? "+" : ""}${total}`;
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
