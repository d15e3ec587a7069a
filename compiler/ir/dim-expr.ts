// IR stage, shape arithmetic: products of symbolic dims (`B * T`, `4 * B`) as one canonical Dim string,
// "4*B*T" (coefficient first, symbols sorted), so equal products compare equal by name everywhere a Dim is
// compared. The runtime evaluates such a dim from its factors (runtime/dim-expr.ts).

import type { Dim } from "./types.js";

/** The coefficient and sorted symbol factors of a dim: 12 -> {12, []}, "B" -> {1, [B]}, "4*B*T" -> {4, [B, T]}. */
export function dimFactors(d: Dim): { c: number; syms: string[] } {
  if (typeof d === "number") return { c: d, syms: [] };
  let c = 1;
  const syms: string[] = [];
  for (const f of d.split("*")) /^\d+$/.test(f) ? (c *= Number(f)) : syms.push(f);
  syms.sort();
  return { c, syms };
}

/** The canonical dim of c * product(syms). */
export function makeDim(c: number, syms: readonly string[]): Dim {
  if (syms.length === 0) return c;
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
