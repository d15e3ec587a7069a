// Runtime, shape arithmetic: a derived dim such as "B*T", "4*B", "T-1", "(T-1)*B" or "(H+1)/2" (written by the compiler,
// compiler/ir/dim-expr.ts) gets its value from the bound symbols, so executors look it up like any other.

import { KilnError } from "./errors.js";

/**
 * How a dim expression's parts combine (integers, symbols, + - * and floor division /, parentheses): `group` may
 * replace a parenthesised part's value given its text (an exporter reading "(T-1)" whole from an input's shape).
 */
export interface DimFold<T> {
  num(v: number): T;
  sym(name: string): T;
  op(op: "+" | "-" | "*" | "/", a: T, b: T): T;
  group?(text: string, v: T): T;
}

/** `s` folded with `f`, parsed left to right with * and / above + and -; undefined when it does not parse. */
export function foldDimExpr<T>(s: string, f: DimFold<T>): T | undefined {
  let i = 0;
  let bad = false;
  const atom = (): T | undefined => {
    if (s[i] === "(") {
      const open = i++;
      const v = sum();
      const inner = s.slice(open + 1, i);
      i++; // ")"
      return v === undefined || !f.group ? v : f.group(inner, v);
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^\d+/.exec(s.slice(i));
    if (!m) return void (bad = true);
    i += m[0].length;
    return /^\d/.test(m[0]) ? f.num(Number(m[0])) : f.sym(m[0]);
  };
  const bin = (op: "+" | "-" | "*" | "/", a: T | undefined, b: T | undefined) => (a === undefined || b === undefined ? undefined : f.op(op, a, b));
  const product = (): T | undefined => {
    let v = atom();
    // "/" is floor division (a strided window's output, "(H+1)/2"), left to right like "*".
    while (s[i] === "*" || s[i] === "/") {
      const op = s[i++] as "*" | "/";
      v = bin(op, v, atom());
    }
    return v;
  };
  const sum = (): T | undefined => {
    let v = product();
    while (s[i] === "+" || s[i] === "-") {
      const op = s[i++] as "+" | "-";
      v = bin(op, v, product());
    }
    return v;
  };
  const v = sum();
  return bad || i !== s.length ? undefined : v;
}

const NUMBERS: DimFold<number> = {
  num: (v) => v,
  sym: () => NaN, // replaced per call by evalDimExpr
  op: (op, a, b) => (op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : Math.floor(a / b)),
};

/** The value of a dim expression (integers, symbols, + - * and floor division /, parentheses); NaN when a symbol is unbound. */
export function evalDimExpr(s: string, bind: Record<string, number>): number {
  return foldDimExpr(s, { ...NUMBERS, sym: (name) => bind[name] ?? NaN }) ?? NaN;
}

/** The product of `dims` at the call's binding (a `dim` value source: a mean's element count); a KilnError if unbound. */
export function dimsProduct(dims: readonly (number | string)[], bind: Record<string, number>, fn = "call"): number {
  let n = 1;
  for (const d of dims) {
    const v = typeof d === "number" ? d : (bind[d] ?? evalDimExpr(d, bind));
    if (!Number.isFinite(v)) throw new KilnError(`${fn}: dimension ${d} is not bound`, { code: "dim_invalid", fn, tensor: String(d) });
    n *= v;
  }
  return n;
}

/** Whether a dim name is an expression over other dims rather than a plain symbol. */
export function isDerivedDim(d: string): boolean {
  return /[*+\-()/]/.test(d);
}

/**
 * Adds the value of every derived dim among `shapes` to `dims` (when all its symbols are bound). A derived size
 * below 1 (x[:, 1:] of a length-1 axis) is a KilnError naming the dim and the bindings.
 */
export function bindDerivedDims(dims: Record<string, number>, shapes: Iterable<readonly (number | string)[]>, fn = "call"): void {
  bindDerived(dims, derivedDimsOf(shapes), fn);
}

/** The distinct derived dims among `shapes`, in order of first appearance (what bindDerived evaluates). */
export function derivedDimsOf(shapes: Iterable<readonly (number | string)[]>): string[] {
  const out = new Set<string>();
  for (const shape of shapes) for (const d of shape) if (typeof d === "string" && isDerivedDim(d)) out.add(d);
  return [...out];
}

/** bindDerivedDims over a precomputed list of derived dims (derivedDimsOf), so a call need not scan every shape. */
export function bindDerived(dims: Record<string, number>, derived: readonly string[], fn = "call"): void {
  for (const d of derived) {
    if (dims[d] !== undefined) continue;
    const v = evalDimExpr(d, dims);
    if (!Number.isFinite(v)) continue;
    if (v < 1) {
      const used = Object.entries(dims).filter(([k]) => !isDerivedDim(k) && new RegExp(`\\b${k}\\b`).test(d)).map(([k, x]) => `${k}=${x}`).join(", ");
      throw new KilnError(`${fn}: dimension ${d} would be ${v} (${used}); a tensor needs every dimension >= 1`, { code: "dim_invalid", fn, tensor: d, actual: String(v) });
    }
    dims[d] = v;
  }
}

/** A KilnError when a bound dim exceeds its limit (a sequence longer than the position table its slice reads). */
export function checkDimLimits(dims: Record<string, number>, limits: readonly { dim: string; max: number; what: string }[] | undefined, fn = "call"): void {
  for (const l of limits ?? []) {
    const v = dims[l.dim] ?? evalDimExpr(l.dim, dims);
    if (!(v > l.max)) continue;
    throw new KilnError(`${fn}: dimension ${l.dim} is ${v}, but ${l.what} needs ${l.dim} <= ${l.max}`, { code: "dim_invalid", fn, tensor: l.dim, expected: `${l.dim} <= ${l.max}`, actual: String(v) });
  }
}
