// Codegen stage (wasm): how each primitive op is lowered — per-element emitters for elementwise ops, and
// which kernel family renders the rest. Imported by the op registry, so binaryen is only type-imported here.
// Value representation inside an expression: f32 as f32; f16/bf16 as f32 too (values of the format, the
// elementwise renderer rounds each f16/bf16 result, see half.ts); i32/u8/i8/bool as i32 (u8 zero-, i8
// sign-extended, bool 0/1). In vector form floats are f32x4 and every other dtype i32x4, bool lanes again 0/1.
import type { DType } from "../../ir/types.js";
import type { Attrs, AttrsOf, PrimOp, ReduceOp } from "../../ops/types.js";
import type { E, EmitCtx, HelperName, Module } from "./context.js";
import type { ElementEmitter, WasmLowering } from "./op-emitter-types.js";
import { MATH_WASM_LOWERING } from "./op-emitters-math.js";

export type { ElementEmitter, WasmLowering } from "./op-emitter-types.js";

type Op2 = (m: Module, a: E, b: E) => E;
/** Float dtypes, all computed in f32 registers. */
const isF = (t: DType | undefined): boolean => t === "f32" || t === "f16" || t === "bf16";

function floatOnly(op: string, t: DType | undefined): void {
  if (!isF(t)) throw new Error(`wasm backend: ${op} needs a float operand, got ${t}`);
}

const ew = (scalar: ElementEmitter, simd?: ElementEmitter, vectorizes?: (t: readonly DType[]) => boolean): WasmLowering => ({
  kind: "elementwise", scalar, ...(simd ? { simd } : {}), ...(vectorizes ? { vectorizes } : {}),
});

/** Float-only math done by an internal helper function (math.ts). */
const viaHelper = (op: HelperName): WasmLowering => ew(
  (c, args, [t]) => (floatOnly(op, t), c.helper(op, "f32", args)),
  (c, args, [t]) => (floatOnly(op, t), c.helper(op, "f32x4", args)),
);

const binary = (f: Op2, i: Op2, vf: Op2, vi: Op2): WasmLowering => ew(
  (c, [a, b], [t]) => (isF(t) ? f : i)(c.m, a!, b!),
  (c, [a, b], [t]) => (isF(t) ? vf : vi)(c.m, a!, b!),
);

/** Compares give bool 0/1; vector compares give all-ones lanes, negated to 1. */
const compare = (f: Op2, i: Op2, vf: Op2, vi: Op2): WasmLowering => ew(
  (c, [a, b], [t]) => (isF(t) ? f : i)(c.m, a!, b!),
  (c, [a, b], [t]) => c.m.i32x4.neg((isF(t) ? vf : vi)(c.m, a!, b!)),
);

/** i32 maximum/minimum/relu/abs via select over a bound copy of the operands. */
const pickI32 = (c: EmitCtx, a: E, b: E, choose: (x: E, y: E) => E): E =>
  c.bind(c.t.i32, a, (x) => c.bind(c.t.i32, b, (y) => c.m.select(choose(x(), y()), x(), y())));

function castScalar(c: EmitCtx, x: E, from: DType, to: DType): E {
  const m = c.m;
  if (from === to) return x;
  switch (to) {
    // Between float dtypes the register value is kept; the renderer rounds it to a narrower format.
    case "f32": case "f16": case "bf16": return isF(from) ? x : m.f32.convert_s.i32(x);
    case "i32": return isF(from) ? m.i32.trunc_s_sat.f32(x) : x;
    case "bool": return isF(from) ? m.f32.ne(x, m.f32.const(0)) : m.i32.ne(x, m.i32.const(0));
    case "u8": return m.i32.and(isF(from) ? m.i32.trunc_s_sat.f32(x) : x, m.i32.const(255));
    case "i8": return m.i32.extend8_s(isF(from) ? m.i32.trunc_s_sat.f32(x) : x);
    default: throw new Error(`wasm backend: dtype ${to} not supported yet`);
  }
}

function castVector(c: EmitCtx, x: E, from: DType, to: DType): E {
  const m = c.m;
  if (from === to || (from === "bool" && to === "i32")) return x;
  if (isF(to)) return isF(from) ? x : m.f32x4.convert_i32x4_s(x);
  if (to === "i32" && isF(from)) return m.i32x4.trunc_sat_f32x4_s(x);
  if (to === "bool") return m.i32x4.neg(isF(from) ? m.f32x4.ne(x, c.splatF32(0)) : m.i32x4.ne(x, c.splatI32(0)));
  throw new Error(`wasm backend: no vector cast ${from} -> ${to} (compiler bug)`);
}

const layout: WasmLowering = { kind: "layout" };
const source: WasmLowering = { kind: "source" };

export const WASM_LOWERING: { readonly [P in PrimOp]: WasmLowering } = {
  neg: ew(
    (c, [x], [t]) => (isF(t) ? c.m.f32.neg(x!) : c.m.i32.sub(c.m.i32.const(0), x!)),
    (c, [x], [t]) => (isF(t) ? c.m.f32x4.neg(x!) : c.m.i32x4.neg(x!)),
  ),
  abs: ew(
    (c, [x], [t]) => (isF(t) ? c.m.f32.abs(x!)
      : c.bind(c.t.i32, x!, (v) => c.m.select(c.m.i32.lt_s(v(), c.m.i32.const(0)), c.m.i32.sub(c.m.i32.const(0), v()), v()))),
    (c, [x], [t]) => (isF(t) ? c.m.f32x4.abs(x!) : c.m.i32x4.abs(x!)),
  ),
  // relu(NaN) is NaN: f32.max propagates NaN, as Math.max(NaN, 0) does.
  relu: ew(
    (c, [x], [t]) => (isF(t) ? c.m.f32.max(x!, c.m.f32.const(0)) : pickI32(c, x!, c.m.i32.const(0), (a, b) => c.m.i32.gt_s(a, b))),
    // pmax(x, 0) is x unless x < 0 (one maxps; NaN stays), and + 0 turns its -0 into +0, as max(-0, 0) is: exact, where
    // V8 spells the NaN-propagating f32x4.max in eight instructions.
    (c, [x], [t]) => (isF(t) ? c.m.f32x4.add(c.m.f32x4.pmax(x!, c.splatF32(0)), c.splatF32(0)) : c.m.i32x4.max_s(x!, c.splatI32(0))),
  ),
  sqrt: ew(
    (c, [x], [t]) => (floatOnly("sqrt", t), c.m.f32.sqrt(x!)),
    (c, [x], [t]) => (floatOnly("sqrt", t), c.m.f32x4.sqrt(x!)),
  ),
  rsqrt: ew(
    (c, [x], [t]) => (floatOnly("rsqrt", t), c.m.f32.div(c.m.f32.const(1), c.m.f32.sqrt(x!))),
    (c, [x], [t]) => (floatOnly("rsqrt", t), c.m.f32x4.div(c.splatF32(1), c.m.f32x4.sqrt(x!))),
  ),
  exp: viaHelper("exp"),
  log: viaHelper("log"),
  tanh: viaHelper("tanh"),
  sigmoid: viaHelper("sigmoid"),
  pow: viaHelper("pow"),
  ...MATH_WASM_LOWERING,
  add: binary((m, a, b) => m.f32.add(a, b), (m, a, b) => m.i32.add(a, b), (m, a, b) => m.f32x4.add(a, b), (m, a, b) => m.i32x4.add(a, b)),
  sub: binary((m, a, b) => m.f32.sub(a, b), (m, a, b) => m.i32.sub(a, b), (m, a, b) => m.f32x4.sub(a, b), (m, a, b) => m.i32x4.sub(a, b)),
  mul: binary((m, a, b) => m.f32.mul(a, b), (m, a, b) => m.i32.mul(a, b), (m, a, b) => m.f32x4.mul(a, b), (m, a, b) => m.i32x4.mul(a, b)),
  // Integer division truncates, and x / 0 = 0 instead of trapping (helper); there is no i32x4 division.
  div: ew(
    (c, [a, b], [t]) => (isF(t) ? c.m.f32.div(a!, b!) : c.helper("div_i32", "i32", [a!, b!])),
    (c, [a, b], [t]) => (floatOnly("vector div", t), c.m.f32x4.div(a!, b!)),
    ([t]) => isF(t),
  ),
  maximum: ew(
    (c, [a, b], [t]) => (isF(t) ? c.m.f32.max(a!, b!) : pickI32(c, a!, b!, (x, y) => c.m.i32.gt_s(x, y))),
    (c, [a, b], [t]) => (isF(t) ? c.m.f32x4.max(a!, b!) : c.m.i32x4.max_s(a!, b!)),
  ),
  minimum: ew(
    (c, [a, b], [t]) => (isF(t) ? c.m.f32.min(a!, b!) : pickI32(c, a!, b!, (x, y) => c.m.i32.lt_s(x, y))),
    (c, [a, b], [t]) => (isF(t) ? c.m.f32x4.min(a!, b!) : c.m.i32x4.min_s(a!, b!)),
  ),
  eq: compare((m, a, b) => m.f32.eq(a, b), (m, a, b) => m.i32.eq(a, b), (m, a, b) => m.f32x4.eq(a, b), (m, a, b) => m.i32x4.eq(a, b)),
  ne: compare((m, a, b) => m.f32.ne(a, b), (m, a, b) => m.i32.ne(a, b), (m, a, b) => m.f32x4.ne(a, b), (m, a, b) => m.i32x4.ne(a, b)),
  lt: compare((m, a, b) => m.f32.lt(a, b), (m, a, b) => m.i32.lt_s(a, b), (m, a, b) => m.f32x4.lt(a, b), (m, a, b) => m.i32x4.lt_s(a, b)),
  le: compare((m, a, b) => m.f32.le(a, b), (m, a, b) => m.i32.le_s(a, b), (m, a, b) => m.f32x4.le(a, b), (m, a, b) => m.i32x4.le_s(a, b)),
  gt: compare((m, a, b) => m.f32.gt(a, b), (m, a, b) => m.i32.gt_s(a, b), (m, a, b) => m.f32x4.gt(a, b), (m, a, b) => m.i32x4.gt_s(a, b)),
  ge: compare((m, a, b) => m.f32.ge(a, b), (m, a, b) => m.i32.ge_s(a, b), (m, a, b) => m.f32x4.ge(a, b), (m, a, b) => m.i32x4.ge_s(a, b)),
  // Both branches are computed (they have no side effects); the condition is bool 0/1.
  where: ew(
    (c, [cond, a, b]) => c.m.select(cond!, a!, b!),
    (c, [cond, a, b]) => c.m.v128.bitselect(a!, b!, c.m.i32x4.neg(cond!)),
  ),
  // f32 -> int truncates toward zero, saturating, NaN -> 0; x -> bool is x != 0 (so NaN -> true);
  // narrowing to u8/i8 wraps.
  cast: ew(
    (c, [x], [from], to, attrs) => castScalar(c, x!, from!, (attrs as AttrsOf["cast"]).to ?? to),
    (c, [x], [from], to, attrs) => castVector(c, x!, from!, (attrs as AttrsOf["cast"]).to ?? to),
  ),
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
  // A constant fill plus a strided copy (pad), one strided copy (window): see the planner.
  pad: layout,
  window: layout,
  iota: { kind: "iota" },
  gather: { kind: "gather" },
  scatter_add: { kind: "scatter_add" },
  depthwise_conv2d: { kind: "depthwise_conv2d" },
  all_finite: { kind: "finite" },
  all_reduce: { kind: "collective" },
  // Filled by the runtime from a seeded stream before the call.
  random_uniform: source,
  dim_size: source,
  // Expanded into max/eq/where/min by the "expand" pass; never reaches a backend.
  argmax: source,
  input: source,
  param: source,
  const: source,
  // Autodiff markers never reach codegen: the autodiff pass replaces them.
  gradient: source,
  cotangent: source,
};
