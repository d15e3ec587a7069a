// Codegen stage (WGSL): how each primitive op is lowered — a WGSL expression per element for elementwise ops,
// and which kernel family renders the rest. Imported by the op registry. Operands are names of `let`s holding
// f32 (f32 dtype) or i32 (every integer and bool dtype, bool as 0/1); see values.ts.
import type { DType } from "../../ir/types.js";
import type { Attrs, AttrsOf, PrimOp, ReduceOp } from "../../ops/types.js";
import type { HelperName } from "./prelude.js";
import type { WgslEmitCtx, WgslElementEmitter, WgslLowering } from "./op-emitter-types.js";
import { MATH_WGSL_LOWERING } from "./op-emitters-math.js";

export type { WgslEmitCtx, WgslElementEmitter, WgslLowering } from "./op-emitter-types.js";

/** f16/bf16 values are f32 registers holding a value of the format (values.ts): float ops apply to them too. */
const isF = (t: DType | undefined): boolean => t === "f32" || t === "f16" || t === "bf16";

function floatOnly(op: string, t: DType | undefined): void {
  if (!isF(t)) throw new Error(`wgsl backend: ${op} needs a float operand, got ${t}`);
}

const ew = (emit: WgslElementEmitter): WgslLowering => ({ kind: "elementwise", emit });

/** A float-only builtin or helper applied to its operands. */
const floatFn = (op: string, fn: string, helper?: HelperName): WgslLowering => ew((c, args, [t]) => {
  floatOnly(op, t);
  if (helper) c.use(helper);
  return `${fn}(${args.join(", ")})`;
});

const infix = (sym: string): WgslLowering => ew((_c, [a, b]) => `${a} ${sym} ${b}`);

/** Comparisons give bool as i32 0/1. */
const compare = (sym: string): WgslLowering => ew((_c, [a, b]) => `select(0i, 1i, ${a} ${sym} ${b})`);

/** NaN-propagating for f32 (helpers), plain builtins for integers. */
const minMax = (fn: "max" | "min"): WgslLowering => ew((c, [a, b], [t]) => {
  if (!isF(t)) return `${fn}(${a}, ${b})`;
  c.use(`${fn}_f32`);
  return `kiln_${fn}_f32(${a}, ${b})`;
});

function castExpr(c: WgslEmitCtx, x: string, from: DType, to: DType): string {
  if (from === to) return x;
  const toInt = (): string => {
    if (!isF(from)) return x;
    c.use("f32_to_i32");
    return `kiln_f32_to_i32(${x})`;
  };
  switch (to) {
    case "f32": return isF(from) ? x : `f32(${x})`;
    // Rounded to the 16-bit format and kept in f32 (half.ts stores it as 16 bits).
    case "f16": case "bf16": {
      const f = isF(from) ? x : `f32(${x})`;
      c.use(`${to}_round`);
      return `kiln_${to}_round(${f})`;
    }
    case "i32": return toInt();
    case "bool":
      if (!isF(from)) return `select(0i, 1i, ${x} != 0i)`;
      c.use("f32_to_bool");
      return `kiln_f32_to_bool(${x})`;
    case "u8": return `(${toInt()} & 255i)`;
    case "i8": return `((${toInt()} << 24u) >> 24u)`;
    default: throw new Error(`wgsl backend: dtype ${to} not supported yet`);
  }
}

const layout: WgslLowering = { kind: "layout" };
const source: WgslLowering = { kind: "source" };

export const WGSL_LOWERING: { readonly [P in PrimOp]: WgslLowering } = {
  neg: ew((_c, [x]) => `-${x}`),
  // abs(INT_MIN) is INT_MIN in WGSL, as in wasm.
  abs: ew((_c, [x]) => `abs(${x})`),
  relu: ew((c, [x], [t]) => {
    if (!isF(t)) return `max(${x}, 0i)`;
    c.use("max_f32");
    return `kiln_max_f32(${x}, 0.0f)`;
  }),
  sqrt: floatFn("sqrt", "sqrt"),
  rsqrt: ew((_c, [x], [t]) => (floatOnly("rsqrt", t), `1.0f / sqrt(${x})`)),
  exp: floatFn("exp", "kiln_exp", "exp"),
  log: floatFn("log", "kiln_log", "log"),
  tanh: floatFn("tanh", "kiln_tanh", "tanh"),
  sigmoid: floatFn("sigmoid", "kiln_sigmoid", "sigmoid"),
  pow: floatFn("pow", "kiln_pow", "pow"),
  ...MATH_WGSL_LOWERING,
  // i32 arithmetic wraps in WGSL for run-time values.
  add: infix("+"),
  sub: infix("-"),
  mul: infix("*"),
  div: ew((c, [a, b], [t]) => {
    if (isF(t)) return `${a} / ${b}`;
    c.use("div_i32");
    return `kiln_div_i32(${a}, ${b})`;
  }),
  maximum: minMax("max"),
  minimum: minMax("min"),
  eq: compare("=="),
  ne: compare("!="),
  lt: compare("<"),
  le: compare("<="),
  gt: compare(">"),
  ge: compare(">="),
  where: ew((_c, [cond, a, b]) => `select(${b}, ${a}, ${cond} != 0i)`),
  // f32 -> int truncates toward zero, saturating, NaN -> 0; x -> bool is x != 0 (NaN -> true); u8/i8 wrap.
  cast: ew((c, [x], [from], to, attrs) => castExpr(c, x!, from!, (attrs as AttrsOf["cast"]).to ?? to)),
  sum: { kind: "reduce", op: "sum" },
  mean: { kind: "reduce", op: "mean" },
  max: { kind: "reduce", op: "max" },
  min: { kind: "reduce", op: "min" },
  matmul: { kind: "matmul" },
  reshape: layout,
  // An alias of its input once autodiff is done (simplify folds it away).
  stop_gradient: layout,
  permute: layout,
  broadcast_to: layout,
  slice: layout,
  concat: layout,
  pad: layout, window: layout, random_uniform: source, dim_size: source,
  iota: { kind: "iota" },
  gather: { kind: "gather" },
  scatter_add: { kind: "scatter_add" },
  depthwise_conv2d: { kind: "depthwise_conv2d" },
  all_finite: { kind: "finite" },
  all_reduce: { kind: "collective" },
  // Expanded into max/eq/where/min by the "expand" pass; never reaches a backend.
  argmax: source,
  input: source,
  param: source,
  const: source,
  // Autodiff markers: the autodiff pass replaces them before planning.
  gradient: source,
  cotangent: source,
};
