// Export, shape arithmetic: a derived dim ("3*B", "B*T", "(T-1)*B", "(H+1)/2-1"; compiler/ir/dim-expr.ts) folded
// into the target's own arithmetic over the sizes an exported graph reads from its inputs' shapes, so the torch
// and ONNX writers compute every product, sum and floor division at run time the way runtime/dim-expr.ts does.

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
 * `d` in the target's terms: read whole when an input has it, else parsed like runtime/dim-expr.ts (integers,
 * symbols, + - * /, parentheses; "/" floors) with each symbol, or a parenthesised part an input has, read.
 * Throws DimUnreadable naming every symbol no input has.
 */
export function foldDim<T>(d: string, alg: DimAlgebra<T>): T {
  if (alg.readable(d)) return alg.read(d);
  const s = d.replace(/\s+/g, "");
  const missing: string[] = [];
  let i = 0;
  const atom = (): T | undefined => {
    if (s[i] === "(") {
      const open = i++;
      const v = sum();
      const inner = s.slice(open + 1, i);
      i++; // ")"
      return alg.readable(inner) ? alg.read(inner) : v;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^\d+/.exec(s.slice(i));
    if (!m) throw new Error(`internal: dim ${d} does not parse at ${i}`);
    i += m[0].length;
    if (/^\d/.test(m[0])) return alg.num(Number(m[0]));
    if (alg.readable(m[0])) return alg.read(m[0]);
    if (!missing.includes(m[0])) missing.push(m[0]);
    return undefined;
  };
  const bin = (op: "+" | "-" | "*" | "/", a: T | undefined, b: T | undefined) => (a === undefined || b === undefined ? undefined : alg.op(op, a, b));
  const product = (): T | undefined => {
    let v = atom();
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
  if (i !== s.length) throw new Error(`internal: dim ${d} does not parse at ${i}`);
  if (v === undefined) throw new DimUnreadable(d, missing);
  return v;
}
