// Float64 reference semantics for elementwise expressions (rounded to each node's dtype), for the wasm tests.
import type { EwExpr } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";

export function roundTo(v: number, d: DType): number {
  switch (d) {
    case "f32": return Math.fround(v);
    case "i32": return wrapInt(v);
    case "u8": return wrapInt(v) & 255;
    case "i8": return (wrapInt(v) << 24) >> 24;
    case "bool": return v !== 0 ? 1 : 0;
    default: return v;
  }
}

function wrapInt(v: number): number {
  if (!Number.isFinite(v)) return 0;
  return Number(BigInt.asIntN(32, BigInt(Math.trunc(v))));
}

export function refCast(x: number, from: DType, to: DType): number {
  if (from === "f32" && to !== "f32" && to !== "bool") {
    // trunc_sat: NaN -> 0, saturate to i32, then wrap to the narrow type
    const t = Number.isNaN(x) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(x)));
    return roundTo(t, to);
  }
  if (to === "bool") return x !== 0 ? 1 : 0; // NaN != 0 -> 1
  return roundTo(x, to);
}

export function refPow(a: number, b: number): number {
  if (b === 0) return 1;
  if (a === 0) return Math.pow(a, b); // keeps the sign of -0 for odd integer b, as C's pow
  if (a < 0) {
    if (!Number.isInteger(b) && Number.isFinite(b)) return NaN;
    return Math.pow(a, b);
  }
  return Math.pow(a, b);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function opF(op: string, a: number[]): number {
  const [x, y, z] = a as [number, number, number];
  switch (op) {
    case "neg": return -x;
    case "exp": return Math.exp(x);
    case "log": return Math.log(x);
    case "sqrt": return Math.sqrt(x);
    case "rsqrt": return 1 / Math.fround(Math.sqrt(x));
    case "abs": return Math.abs(x);
    case "tanh": return Math.tanh(x);
    case "sigmoid": return sigmoid(x);
    case "relu": return Number.isNaN(x) ? NaN : Math.max(x, 0);
    case "add": return x + y;
    case "sub": return x - y;
    case "mul": return x * y;
    case "div": return x / y;
    case "pow": return refPow(x, y);
    case "maximum": return Math.max(x, y);
    case "minimum": return Math.min(x, y);
    case "eq": return x === y ? 1 : 0;
    case "ne": return x !== y ? 1 : 0;
    case "lt": return x < y ? 1 : 0;
    case "le": return x <= y ? 1 : 0;
    case "gt": return x > y ? 1 : 0;
    case "ge": return x >= y ? 1 : 0;
    case "where": return x ? y : z;
    default: throw new Error(`no ref for ${op}`);
  }
}

function opI(op: string, a: number[]): number {
  const [x, y] = a as [number, number];
  switch (op) {
    case "neg": return -x;
    case "abs": return Math.abs(x);
    case "relu": return Math.max(x, 0);
    case "add": return x + y;
    case "sub": return x - y;
    case "mul": return Number(BigInt(x) * BigInt(y) & 0xffffffffn);
    case "div": return y === 0 ? 0 : Math.trunc(x / y);
    default: return opF(op, a);
  }
}

export function refEval(e: EwExpr, inputs: readonly number[], inTypes: readonly DType[]): number {
  const typeOf = (n: EwExpr): DType => (n.t === "in" ? inTypes[n.index]! : n.dtype);
  if (e.t === "in") return inputs[e.index]!;
  if (e.t === "const") return roundTo(e.value, e.dtype);
  const args = e.args.map((a) => refEval(a, inputs, inTypes));
  if (e.op === "cast") return refCast(args[0]!, typeOf(e.args[0]!), (e.attrs as { to: DType }).to);
  const t0 = typeOf(e.args[0]!);
  const v = t0 === "f32" || e.op === "where" ? opF(e.op, args) : opI(e.op, args);
  return roundTo(v, e.dtype);
}
