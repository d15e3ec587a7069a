// Lowering stage, control flow: `if`/`else`, `for i in a..b` and `while`, with data-dependent conditions.
// Both branches are lowered into the graph, every node of a branch guarded by the condition (backends run only
// the branch taken; a skipped node reads as zeros), and the variables they assign are merged with `where`, so
// values and, through where's VJP, gradients come from the branch actually taken. Loops are unrolled: a run-time
// trip count or a while condition needs a `max:` bound; each iteration is guarded by "this iteration runs", so
// iterations past the actual count are skipped and leave the variables unchanged. See docs/language.md.

import type { Expr, ForStmt, IfStmt, Stmt, WhileStmt } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import { formatType, sameShape } from "../ir/types.js";
import type { BodyResult, Lowerer } from "./lowerer.js";
import { POISON, tensor, type Val } from "./values.js";

/** Longest loop the compiler unrolls. */
export const MAX_UNROLL = 1024;

/** The condition as a bool scalar tensor, or undefined after a diagnostic. */
function condition(L: Lowerer, e: Expr, what: string): number | undefined {
  const v = L.materialize(L.expr(e), e.span);
  if (v.kind !== "tensor") return undefined;
  const t = L.type(v.id);
  if (t.dtype !== "bool" || t.shape.length !== 0) {
    L.diags.error("K301", `${what} must be a bool scalar, got ${formatType(t)}`, e.span, "compare a scalar, e.g. sum(x) > 0");
    return undefined;
  }
  return v.id;
}

/** where(cond, a, b) for two versions of one variable; K610 if they differ in dtype or shape. */
function select(L: Lowerer, cond: number, a: Val, b: Val, name: string, span: Span): Val {
  if (a === b) return a;
  const [x, y] = L.pair(a, b, span, span);
  if (x.kind !== "tensor" || y.kind !== "tensor") return POISON;
  const tx = L.type(x.id), ty = L.type(y.id);
  if (tx.dtype !== ty.dtype || !sameShape(tx.shape, ty.shape)) {
    L.diags.error("K610", `'${name}' is ${formatType(tx)} on one path and ${formatType(ty)} on the other`, span, "a variable keeps its dtype and shape across branches and loop iterations");
    return POISON;
  }
  return tensor(L.b.add("where", [cond, x.id, y.id], {}, tx, span));
}

/** Variables of the enclosing scope that `vars` changed (ignoring the block's own `let`s). */
function changed(L: Lowerer, vars: Map<string, Val>, declared: Set<string>): string[] {
  return [...L.frame.vars.keys()].filter((k) => !declared.has(k) && vars.get(k) !== L.frame.vars.get(k));
}

export function lowerIf(L: Lowerer, st: IfStmt): BodyResult | undefined {
  const cond = condition(L, st.cond, "an if condition");
  const branch = (when: boolean, stmts: readonly Stmt[] | undefined) =>
    L.inChildScope(() => (stmts ? (cond === undefined ? L.lowerStmts(stmts) : L.b.guarded({ cond, when }, () => L.lowerStmts(stmts))) : undefined));
  const a = branch(true, st.then);
  const b = branch(false, st.else);
  if (cond === undefined) return a.result && b.result ? { vals: a.result.vals.map(() => POISON), spans: a.result.spans } : undefined;
  if (!!a.result !== !!b.result) {
    L.diags.error("K501", "only one branch returns", st.span, "return in both branches, or in neither and after the if");
    return undefined;
  }
  if (a.result && b.result) {
    if (a.result.vals.length !== b.result.vals.length) {
      L.diags.error("K610", `the branches return ${a.result.vals.length} and ${b.result.vals.length} values`, st.span);
      return undefined;
    }
    const vals = a.result.vals.map((v, i) => select(L, cond, v, b.result!.vals[i], `result ${i}`, a.result!.spans[i]));
    return { vals, spans: a.result.spans };
  }
  for (const name of new Set([...changed(L, a.vars, a.declared), ...changed(L, b.vars, b.declared)])) {
    L.frame.vars.set(name, select(L, cond, a.vars.get(name)!, b.vars.get(name)!, name, st.span));
  }
  return undefined;
}

/** A short rendering of a loop bound for messages: a name, a number, or "<expr>". */
function sourceText(e: Expr): string {
  return e.kind === "name" ? e.name : e.kind === "number" ? String(e.value) : "<expr>";
}

function literalInt(L: Lowerer, e: Expr, what: string): number | undefined {
  const v = L.expr(e);
  if (v.kind === "literal" && Number.isInteger(v.value)) return v.value;
  if (v.kind !== "error") L.diags.error("K304", `${what} must be an integer constant`, e.span);
  return undefined;
}

/** Unrolls `count` iterations; `active(k)` gives the run-time guard of iteration k (undefined: always runs). */
function unroll(L: Lowerer, count: number, bind: (k: number) => void, active: (k: number) => number | undefined, body: readonly Stmt[], span: Span): void {
  if (count > MAX_UNROLL) {
    L.diags.error("K608", `this loop would unroll ${count} iterations; the limit is ${MAX_UNROLL}`, span, "use a smaller bound");
    return;
  }
  // The limit holds for the body's copies in all: loops nested inside loops multiply their trip counts.
  const outer = enclosingIterations.get(L) ?? 1;
  if (outer * count > MAX_UNROLL) {
    L.diags.error("K608", `these nested loops would unroll ${outer * count} iterations in all (${outer} around ${count}); the limit is ${MAX_UNROLL}`, span, "use smaller bounds, or move the inner loop out");
    return;
  }
  enclosingIterations.set(L, outer * Math.max(1, count));
  try {
    unrollIterations(L, count, bind, active, body, span);
  } finally {
    enclosingIterations.set(L, outer);
  }
}

/** Product of the trip counts of the loops being unrolled around the current one, per function lowering. */
const enclosingIterations = new WeakMap<Lowerer, number>();

function unrollIterations(L: Lowerer, count: number, bind: (k: number) => void, active: (k: number) => number | undefined, body: readonly Stmt[], span: Span): void {
  for (let k = 0; k < count; k++) {
    const guard = active(k);
    if (guard === undefined && L.diags.hasErrors) return;
    const run = () => {
      bind(k);
      L.lowerStmts(body);
    };
    const it = L.inChildScope(() => (guard === undefined ? run() : L.b.guarded({ cond: guard, when: true }, run)), true);
    for (const name of changed(L, it.vars, it.declared)) {
      const next = it.vars.get(name)!;
      L.frame.vars.set(name, guard === undefined ? next : select(L, guard, next, L.frame.vars.get(name)!, name, span));
    }
  }
}

export function lowerFor(L: Lowerer, st: ForStmt): void {
  const start = literalInt(L, st.start, "the start of a for range");
  const endVal = L.expr(st.end);
  if (start === undefined || endVal.kind === "error") return;
  const bindVar = (k: number) => {
    L.frame.declared.add(st.var);
    L.frame.vars.set(st.var, { kind: "literal", value: start + k, isInt: true });
  };
  // A dim known here (a callee's N bound to 128) is a constant bound; a symbolic one (T) is known at run time.
  const known = endVal.kind === "literal" ? endVal.value : endVal.kind === "dim" && typeof endVal.dim === "number" ? endVal.dim : undefined;
  if (known !== undefined) {
    if (!Number.isInteger(known)) {
      L.diags.error("K304", `the end of a for range must be an integer, got ${known}`, st.end.span, `write ${Math.ceil(known)} or ${Math.floor(known)}`);
      return;
    }
    if (st.max) L.diags.error("K501", "max: is only needed when the end of the range is known at run time", st.max.span);
    unroll(L, Math.max(0, known - start), bindVar, () => undefined, st.body, st.span);
    return;
  }
  const end = L.materialize(endVal, st.end.span, "i32");
  if (end.kind !== "tensor") return;
  const et = L.type(end.id);
  if (et.dtype !== "i32" || et.shape.length !== 0) {
    L.diags.error("K301", `the end of a for range must be an i32 scalar, got ${formatType(et)}`, st.end.span);
    return;
  }
  if (!st.max) {
    L.diags.error("K608", "this for loop's trip count is only known at run time, so it needs a bound", st.span, `write: for ${st.var} in ${start}..n, max: 16 { ... }`);
    return;
  }
  if (st.maxKey && st.maxKey.name !== "max") L.diags.error("K205", `unknown loop option '${st.maxKey.name}'`, st.maxKey.span, "the only option is max:");
  const max = literalInt(L, st.max, "max:");
  if (max === undefined) return;
  const guard = (k: number) => L.b.add("lt", [L.constant(start + k, "i32"), end.id], {}, { dtype: "bool", shape: [] }, st.span);
  // A trip count above max: would silently skip iterations: the call checks it (a KilnError naming this loop).
  const s = st.span;
  const loop = `for ${st.var} in ${start}..${sourceText(st.end)}, max: ${max} (${s.file}:${s.line}:${s.col})`;
  const i32 = { dtype: "i32" as const, shape: [] };
  const count = L.b.add("sub", [end.id, L.constant(start, "i32")], {}, i32, st.span);
  const over = L.b.add("lt", [L.constant(max, "i32"), count], {}, { dtype: "bool", shape: [] }, st.span);
  // Computed under the loop's own guards: a loop in a branch not taken reads 0, as every skipped node does.
  const excess = L.b.add("where", [over, count, L.constant(0, "i32")], {}, i32, st.span);
  L.checks.push({ name: `check${L.checks.length}`, node: excess, check: { loop, max } });
  unroll(L, max, bindVar, guard, st.body, st.span);
}

export function lowerWhile(L: Lowerer, st: WhileStmt): void {
  if (!st.max) {
    L.diags.error("K608", "a while loop needs a bound", st.span, "write: while cond, max: 100 { ... } (iterations past the bound are not run)");
    return;
  }
  if (st.maxKey && st.maxKey.name !== "max") L.diags.error("K205", `unknown loop option '${st.maxKey.name}'`, st.maxKey.span, "the only option is max:");
  const max = literalInt(L, st.max, "max:");
  if (max === undefined) return;
  // `running` stays true until the condition first fails; later iterations leave everything unchanged.
  let running: number | undefined;
  const guard = () => {
    // The condition itself only needs evaluating while the loop is still running.
    const c = running === undefined ? condition(L, st.cond, "a while condition") : L.b.guarded({ cond: running, when: true }, () => condition(L, st.cond, "a while condition"));
    if (c === undefined) return undefined;
    running = running === undefined ? c : L.b.add("where", [running, c, L.b.add("const", [], { value: 0 }, { dtype: "bool", shape: [] })], {}, { dtype: "bool", shape: [] }, st.span);
    return running;
  };
  unroll(L, max, () => {}, guard, st.body, st.span);
}
