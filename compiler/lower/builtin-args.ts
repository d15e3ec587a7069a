// Lowering stage, builtin arguments: the binding types every builtin table shares (builtins.ts, builtins-nn.ts)
// and the readers of constant arguments (integers, numbers, booleans, integer lists, axes) with their K304 diagnostics.

import type { CallExpr } from "../frontend/kiln/ast.js";
import { normalizeAxis } from "../ops/shape-utils.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, tensor, type ArgVal, type Val } from "./values.js";

export type Args = Record<string, ArgVal | undefined>;
export interface Builtin {
  /** Parameter names in positional order; a name ending in '?' is optional. */
  readonly params: readonly string[];
  /** Extra positional tensors collected into `rest` (concat, all_finite). */
  readonly variadic?: boolean;
  run(L: Lowerer, a: Args, call: CallExpr, rest: ArgVal[]): Val;
}
export function wrap(id: number | undefined): Val {
  return id === undefined ? POISON : tensor(id);
}
export function tensorArg(L: Lowerer, a: ArgVal): number | undefined {
  const v = L.materialize(a.val, a.span, a.val.kind === "literal" && !a.val.isInt ? "f32" : a.val.kind === "literal" ? "f32" : undefined);
  return v.kind === "tensor" ? v.id : undefined;
}
export function constErr(L: Lowerer, a: ArgVal, what: string): Val {
  L.diags.error("K304", `expected ${what} here`, a.span, "this argument must be a compile-time constant");
  return POISON;
}
export function intArg(L: Lowerer, a: ArgVal): number | undefined {
  if (a.val.kind === "literal" && Number.isInteger(a.val.value)) return a.val.value;
  constErr(L, a, "an integer constant");
  return undefined;
}
export function numberArg(L: Lowerer, a: ArgVal): number | undefined {
  if (a.val.kind === "literal") return a.val.value;
  constErr(L, a, "a number constant");
  return undefined;
}
export function boolArg(L: Lowerer, a: ArgVal): boolean | undefined {
  if (a.val.kind === "tensor") {
    const n = L.b.nodes[a.val.id];
    if (n.op === "const" && n.type.dtype === "bool") return (n.attrs as { value: number }).value !== 0;
  }
  constErr(L, a, "true or false");
  return undefined;
}

export function intListArg(L: Lowerer, a: ArgVal): number[] | undefined {
  if (a.val.kind !== "list") {
    constErr(L, a, "a list of integers, e.g. [1, 0]");
    return undefined;
  }
  const out: number[] = [];
  for (const it of a.val.items) {
    const v = intArg(L, it);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

export function axesArg(L: Lowerer, a: ArgVal, rank: number, single = false): number[] | undefined {
  const raw = a.val.kind === "list" && !single ? intListArg(L, a) : intArg(L, a) !== undefined ? [(a.val as { value: number }).value] : undefined;
  if (!raw) return undefined;
  const out = new Set<number>();
  for (const ax of raw) {
    const n = normalizeAxis(ax, rank);
    if (typeof n !== "number") {
      L.diags.error(n.error, n.message, a.span, n.hint);
      return undefined;
    }
    out.add(n);
  }
  return [...out].sort((x, y) => x - y);
}
