// Op registry, elementwise family: unary math, binary arithmetic, comparisons, where and cast.
// Shape rule: numpy broadcasting; dtype rule: operands share one dtype (no implicit promotion).

import { formatType, isFloat, type DType, type TensorType } from "../ir/types.js";
import { broadcastShapes, forEachBroadcast, makeRef, numel, roundToStorage, wrapInt } from "./shape-utils.js";
import { erf64, remainder64, roundHalfEven, sign64 } from "./special-functions.js";
import type { BinaryOpName, CompareOp, InferResult, OpCore, RefTensor, RuleError, UnaryOp } from "./types.js";

const FLOAT_ONLY = new Set<string>(["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "pow", "erf", "sin", "cos", "log1p", "expm1", "remainder"]);

function checkDtype(op: string, t: TensorType): RuleError | undefined {
  if (FLOAT_ONLY.has(op) && !isFloat(t.dtype)) {
    return { error: "K302", message: `${op} is defined for float tensors, got ${formatType(t)}`, hint: `cast first: ${op}(cast(x, f32))` };
  }
  if (t.dtype === "bool") {
    return { error: "K302", message: `${op} is not defined for bool tensors`, hint: "cast(x, f32) turns true/false into 1/0" };
  }
  return undefined;
}

function sameDtypes(op: string, ins: readonly TensorType[]): RuleError | undefined {
  for (const t of ins.slice(1)) {
    if (t.dtype !== ins[0].dtype) {
      return { error: "K301", message: `${op} needs operands of one dtype, got ${ins.map(formatType).join(" and ")}`, hint: `Kiln never converts implicitly: use cast(x, ${ins[0].dtype})` };
    }
  }
  return undefined;
}

const UNARY_FNS: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  relu: (x) => (Number.isNaN(x) ? NaN : x > 0 ? x : 0), // NaN propagates, as in the wasm and WGSL kernels
  erf: erf64,
  sin: Math.sin,
  cos: Math.cos,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sign: sign64,
  // Integers are already whole: floor, ceil and round leave them unchanged (as torch does).
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
};

function intDiv(a: number, b: number): number {
  return b === 0 ? 0 : Math.trunc(a / b);
}

const BINARY_FNS: Record<BinaryOpName, (a: number, b: number, dtype: DType) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b, d) => (d === "i32" ? Math.imul(a, b) : a * b),
  div: (a, b, d) => (isFloat(d) ? a / b : intDiv(a, b)),
  // C's (and PyTorch's) pow: 1^y = 1 and (-1)^±inf = 1 for every y, NaN included (JavaScript says NaN).
  pow: (a, b) => (a === 1 || (a === -1 && Math.abs(b) === Infinity) ? 1 : Math.pow(a, b)),
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  remainder: remainder64,
};

const COMPARE_FNS: Record<CompareOp, (a: number, b: number) => boolean> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
};

function mapN(ins: readonly RefTensor[], out: { dtype: DType; shape: number[] }, f: (vals: number[]) => number): RefTensor {
  const r = makeRef(out.dtype, out.shape);
  const vals = new Array<number>(ins.length);
  forEachBroadcast(out.shape, ins.map((t) => t.shape), (o, idx) => {
    for (let i = 0; i < ins.length; i++) vals[i] = ins[i].data[idx[i]];
    r.data[o] = wrapInt(out.dtype, f(vals));
  });
  return r;
}

export function unaryCore<P extends UnaryOp>(name: P): OpCore<P> {
  const f = UNARY_FNS[name];
  return {
    name,
    arity: 1,
    infer: ([x]) => checkDtype(name, x) ?? { dtype: x.dtype, shape: x.shape },
    evaluate: (ins, _a, out) => mapN(ins, out, (v) => f(v[0])),
  };
}

export function binaryCore<P extends BinaryOpName>(name: P): OpCore<P> {
  const f = BINARY_FNS[name];
  return {
    name,
    arity: 2,
    infer(ins): InferResult {
      const bad = sameDtypes(name, ins) ?? checkDtype(name, ins[0]);
      if (bad) return bad;
      const shape = broadcastShapes(ins.map((t) => t.shape));
      return "error" in shape ? shape : { dtype: ins[0].dtype, shape };
    },
    evaluate: (ins, _a, out) => mapN(ins, out, (v) => f(v[0], v[1], out.dtype)),
  };
}

export function compareCore<P extends CompareOp>(name: P): OpCore<P> {
  const f = COMPARE_FNS[name];
  return {
    name,
    arity: 2,
    infer(ins): InferResult {
      const bad = sameDtypes(name, ins);
      if (bad) return bad;
      const shape = broadcastShapes(ins.map((t) => t.shape));
      return "error" in shape ? shape : { dtype: "bool", shape };
    },
    evaluate: (ins, _a, out) => mapN(ins, out, (v) => (f(v[0], v[1]) ? 1 : 0)),
  };
}

export const whereCore: OpCore<"where"> = {
  name: "where",
  arity: 3,
  infer([c, a, b]): InferResult {
    if (c.dtype !== "bool") return { error: "K301", message: `where needs a bool condition, got ${formatType(c)}`, hint: "compare to make a condition, e.g. where(x > 0, x, 0)" };
    const bad = sameDtypes("where", [a, b]);
    if (bad) return bad;
    const shape = broadcastShapes([c.shape, a.shape, b.shape]);
    return "error" in shape ? shape : { dtype: a.dtype, shape };
  },
  evaluate: (ins, _a, out) => mapN(ins, out, (v) => (v[0] !== 0 ? v[1] : v[2])),
};

/**
 * Float-to-int casts truncate toward zero and saturate (NaN → 0), like wasm's trunc_sat. Casts to f16/bf16 round
 * to nearest even (overflow → ±Inf, NaN stays NaN); widening casts are exact.
 */
function castValue(v: number, to: DType): number {
  if (isFloat(to)) return roundToStorage(to, v);
  if (to === "bool") return v !== 0 ? 1 : 0; // NaN is true, as in numpy and wasm's f32.ne
  if (Number.isNaN(v)) return 0;
  const t = Math.trunc(v);
  if (to === "i32") return Math.max(-2147483648, Math.min(2147483647, t));
  return wrapInt(to, Math.max(-2147483648, Math.min(2147483647, t)));
}

export const castCore: OpCore<"cast"> = {
  name: "cast",
  arity: 1,
  infer: ([x], a) => ({ dtype: a.to, shape: x.shape }),
  evaluate: ([x], a, out) => {
    const r = makeRef(out.dtype, out.shape);
    for (let i = 0; i < numel(out.shape); i++) r.data[i] = castValue(x.data[i], a.to);
    return r;
  },
};
