// Lowering stage, model params: checks each `param name: type = init(...)` and turns the initialiser call into
// the InitSpec the runtime executes with its seeded RNG.

import type { CallExpr, Expr, ParamDecl } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import type { ParamInfo } from "../ir/graph.js";
import { isFloat, type TensorType } from "../ir/types.js";
import type { InitSpec } from "../../runtime/manifest.js";
import { resolveType } from "./types-from-ast.js";
import { literalRangeError } from "./literal-range.js";

/** Each initialiser: its parameters (positional order) with defaults; undefined default = required. */
const INITS: Record<string, Record<string, number | undefined>> = {
  zeros: {},
  ones: {},
  constant: { value: undefined },
  normal: { std: 0.01, mean: 0 },
  uniform: { low: -0.1, high: 0.1 },
  he: {},
  xavier: {},
};

function literal(e: Expr): number | undefined {
  if (e.kind === "number") return e.value;
  if (e.kind === "unary" && e.operand.kind === "number") return -e.operand.value;
  return undefined;
}

function bindInitArgs(call: CallExpr, diags: DiagnosticBag): Record<string, number> | undefined {
  const spec = INITS[call.callee];
  if (!spec) {
    diags.error("K207", `unknown initialiser '${call.callee}'`, call.calleeSpan, `initialisers are ${Object.keys(INITS).map((k) => k + "()").join(", ")}`);
    return undefined;
  }
  const names = Object.keys(spec);
  const out: Record<string, number> = {};
  if (call.args.length > names.length) {
    diags.error("K207", `${call.callee}() takes ${names.length === 0 ? "no arguments" : names.join(", ")}`, call.span);
    return undefined;
  }
  const given: [string, Expr][] = [...call.args.map((a, i): [string, Expr] => [names[i], a]), ...call.kwargs.map((k): [string, Expr] => [k.name, k.value])];
  for (const [name, e] of given) {
    if (!(name in spec)) {
      diags.error("K207", `${call.callee}() has no parameter '${name}'`, e.span, names.length ? `its parameters are ${names.join(", ")}` : "it takes no arguments");
      return undefined;
    }
    const v = literal(e);
    if (v === undefined) {
      diags.error("K304", `initialiser arguments must be number literals`, e.span);
      return undefined;
    }
    out[name] = v;
  }
  for (const [k, d] of Object.entries(spec)) {
    if (out[k] === undefined) {
      if (d === undefined) {
        diags.error("K207", `${call.callee}() needs '${k}'`, call.span);
        return undefined;
      }
      out[k] = d;
    }
  }
  return out;
}

/** Fan-in/out for he/xavier: weights are [in, out] (x @ w), so fan_in is the product of all but the last dim. */
function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  const fanOut = shape[shape.length - 1];
  return { fanIn: shape.slice(0, -1).reduce((a, b) => a * b, 1), fanOut };
}

export function lowerParam(model: string, p: ParamDecl, diags: DiagnosticBag): ParamInfo | undefined {
  const t: TensorType | undefined = resolveType(p.type, diags);
  const args = bindInitArgs(p.init, diags);
  if (!t || !args) return undefined;
  if (t.shape.some((d) => typeof d !== "number")) {
    diags.error("K409", `param '${p.name}' must have a concrete shape, got symbolic dims`, p.type.span, "params are allocated at load time; use numbers for their dims");
    return undefined;
  }
  if (!isFloat(t.dtype) && p.init.callee !== "zeros" && p.init.callee !== "ones" && p.init.callee !== "constant") {
    diags.error("K302", `${p.init.callee}() initialises float params; '${p.name}' is ${t.dtype}`, p.init.span, "use zeros(), ones() or constant(v)");
    return undefined;
  }
  const shape = t.shape as number[];
  let init: InitSpec;
  switch (p.init.callee) {
    case "zeros": init = { kind: "zeros" }; break;
    case "ones": init = { kind: "ones" }; break;
    case "constant": {
      const range = literalRangeError(args.value, t.dtype);
      if (range) return void diags.error("K306", `constant(): ${range.message}`, p.init.span, range.hint);
      init = { kind: "constant", value: args.value };
      break;
    }
    case "normal":
      if (!(args.std >= 0)) return void diags.error("K207", "normal(): std must be >= 0", p.init.span);
      init = { kind: "normal", mean: args.mean, std: args.std };
      break;
    case "uniform":
      if (!(args.low <= args.high)) return void diags.error("K207", "uniform(): low must be <= high", p.init.span);
      init = { kind: "uniform", low: args.low, high: args.high };
      break;
    case "he": init = { kind: "he", fanIn: fans(shape).fanIn }; break;
    default: init = { kind: "xavier", ...fans(shape) };
  }
  return { name: `${model}.${p.name}`, model, type: t, init, span: p.span };
}
