// Export, shape arithmetic: a derived dim ("3*B", "B*T", "(T-1)*B", "(H+1)/2-1"; compiler/ir/dim-expr.ts) folded
// into the target's own arithmetic over the sizes an exported graph reads from its inputs' shapes, so the torch
// and ONNX writers compute every product, sum and floor division at run time the way runtime/dim-expr.ts does.

import { foldDimExpr } from "../../runtime/dim-expr.js";

/** A dim the exported graph cannot compute: one of its symbols is no input axis's size. */
export class DimUnreadable extends Error {
  constructor(readonly dim: string, readonly missing: string[]) {
    super(`dim ${dim} needs ${missing.join(", ")}, which ${missing.length === 1 ? "is" : "are"} not the size of any input axis, so the exported graph could not compute it`);
  }
  get hint(): string {
    return `give the function an input with ${this.missing.length === 1 ? "an axis" : "axes"} of size ${this.missing.join(", ")} (a dim only an output or a weight has cannot be read at run time)`;
  }
}

/** How a target writes dim arithmetic: a readable size, an integer, and + - * / (floor division) of two sizes. */
export interface DimAlgebra<T> {
  /** Whether `name` (a symbol, or a whole derived dim such as "T-1") is the size of some input axis. */
  readable(name: string): boolean;
  read(name: string): T;
  num(v: number): T;
  op(op: "+" | "-" | "*" | "/", a: T, b: T): T;
}

/**
 * `d` in the target's terms: read whole when an input has it, else parsed as runtime/dim-expr.ts parses it
 * (foldDimExpr) with each symbol, or a parenthesised part an input has, read.
 * Throws DimUnreadable naming every symbol no input has.
 */
export function foldDim<T>(d: string, alg: DimAlgebra<T>): T {
  if (alg.readable(d)) return alg.read(d);
  const missing: string[] = [];
  // A symbol no input has folds to null (and taints what contains it), so every such symbol gets named.
  const v = foldDimExpr<T | null>(d.replace(/\s+/g, ""), {
    num: (n) => alg.num(n),
    sym: (name) => {
      if (alg.readable(name)) return alg.read(name);
      if (!missing.includes(name)) missing.push(name);
      return null;
    },
    op: (op, a, b) => (a === null || b === null ? null : alg.op(op, a, b)),
    group: (text, inner) => (alg.readable(text) ? alg.read(text) : inner),
  });
  if (v === undefined) throw new Error(`internal: dim ${d} does not parse`);
  if (v === null) throw new DimUnreadable(d, missing);
  return v as T;
}
