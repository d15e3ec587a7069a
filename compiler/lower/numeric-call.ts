// Lowering stage, train-block calls of named numbers (`adam(lr: 0.001)`, `cosine(t_max: 100)`): reads the
// positional and keyword arguments against a table of defaults and a range check, reporting every problem.
import type { CallExpr, Expr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag, Span } from "../diagnostics.js";

export type Hyper = Record<string, number>;

/** Each name's default (undefined: required) and the check of the whole set (a message when out of range). */
export interface NumericCallSpec {
  readonly defaults: Record<string, number | undefined>;
  readonly check: (h: Hyper) => string | undefined;
}

/** How diagnostics name the call and its arguments. */
export interface NumericCallWords {
  /** What the call is, as messages start: "sgd" or "schedule cosine". */
  readonly what: string;
  /** What its arguments are called: "hyperparameter" or "option". */
  readonly arg: string;
  /** A value for the "e.g." hint of a missing required argument. */
  readonly example: number;
}

/** A number literal (a negated one too; `true`/`false` as 1/0 where `bools`). */
export function numberLiteral(e: Expr, bools = false): number | undefined {
  if (e.kind === "number") return e.value;
  if (bools && e.kind === "bool") return e.value ? 1 : 0;
  if (e.kind === "unary" && e.operand.kind === "number") return -e.operand.value;
  return undefined;
}

/** The call's values with defaults filled in, or undefined after reporting every problem (K205, K304, K609). */
export function readNumericCall(call: CallExpr, spec: NumericCallSpec, diags: DiagnosticBag, words: NumericCallWords, bools = false): Hyper | undefined {
  const names = Object.keys(spec.defaults);
  const given: [string, Expr, Span][] = [...call.args.map((a, i): [string, Expr, Span] => [names[i] ?? `#${i}`, a, a.span]), ...call.kwargs.map((k): [string, Expr, Span] => [k.name, k.value, k.span])];
  const h: Hyper = {};
  // Every bad argument is reported, not only the first.
  let bad = false;
  for (const [name, value, span] of given) {
    if (!names.includes(name)) {
      diags.error("K205", `${words.what} has no ${words.arg} '${name}'`, span, `its ${words.arg}s are ${names.join(", ")}`);
      bad = true;
      continue;
    }
    const v = numberLiteral(value, bools);
    if (v === undefined) {
      diags.error("K304", `${call.callee}: ${name} must be a number`, value.span);
      bad = true;
      continue;
    }
    h[name] = v;
  }
  for (const [k, d] of Object.entries(spec.defaults)) {
    if (h[k] !== undefined) continue;
    if (d === undefined) {
      if (!given.some(([name]) => name === k)) diags.error("K609", `${words.what} needs ${k}`, call.span, `e.g. ${call.callee}(${k}: ${words.example})`);
      bad = true;
      continue;
    }
    h[k] = d;
  }
  if (bad) return undefined;
  const range = spec.check(h);
  if (range) {
    diags.error("K609", `${words.what}: ${range}`, call.span);
    return undefined;
  }
  return h;
}
