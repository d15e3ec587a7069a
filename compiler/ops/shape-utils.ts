// Op registry helpers: broadcasting of (symbolic) shapes, axis normalisation and strided indexing, shared by
// the shape rules (compile time) and the float64 evaluators (reference interpreter).

import { formatShape, type Dim, type DType, type Shape } from "../ir/types.js";
import type { RefTensor, RuleError } from "./types.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";

/** numpy broadcasting: dims equal, or one is the literal 1. Symbolic dims must match by name. */
export function broadcastShapes(shapes: readonly Shape[]): Shape | RuleError {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + k];
      if (d === undefined || d === 1) continue;
      if (dim === 1) dim = d;
      else if (dim !== d) {
        const sym = typeof dim === "string" || typeof d === "string";
        return {
          error: sym ? "K405" : "K401",
          message: `shapes ${shapes.map(formatShape).join(" and ")} do not broadcast: dimension ${k - rank} is ${dim} vs ${d}`,
          hint: sym
            ? "symbolic dimensions must have the same name to match; use one name for dimensions that are equal"
            : "dimensions must be equal or one of them must be 1 (see docs/language.md, Broadcasting)",
        };
      }
    }
    out.push(dim);
  }
  return out;
}

export function normalizeAxis(axis: number, rank: number): number | RuleError {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) {
    return { error: "K403", message: `axis ${axis} is out of range for a tensor of rank ${rank}`, hint: rank === 0 ? "a scalar has no axes" : `valid axes are ${-rank}..${rank - 1}` };
  }
  return a;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    st[k] = s;
    s *= shape[k];
  }
  return st;
}

/** Strides of `shape` viewed as broadcast to `outShape` (0 along broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, k) => (k < off || shape[k - off] === 1 ? 0 : st[k - off]));
}

/** Calls fn(outIndex, inputFlatIndices) for every element of outShape with numpy broadcasting. */
export function forEachBroadcast(outShape: readonly number[], inShapes: readonly (readonly number[])[], fn: (o: number, idx: number[]) => void): void {
  const n = numel(outShape);
  const rank = outShape.length;
  const strides = inShapes.map((s) => broadcastStrides(s, outShape));
  const counter = new Array<number>(rank).fill(0);
  const idx = new Array<number>(inShapes.length).fill(0);
  for (let o = 0; o < n; o++) {
    fn(o, idx);
    for (let k = rank - 1; k >= 0; k--) {
      counter[k]++;
      for (let i = 0; i < idx.length; i++) idx[i] += strides[i][k];
      if (counter[k] < outShape[k]) break;
      for (let i = 0; i < idx.length; i++) idx[i] -= strides[i][k] * outShape[k];
      counter[k] = 0;
    }
  }
}

/** Integer wrap-around for the integer dtypes (the backends' semantics); floats pass through. */
export function wrapInt(dtype: DType, v: number): number {
  switch (dtype) {
    case "i32": return Number.isFinite(v) ? Number(BigInt.asIntN(32, BigInt(Math.trunc(v)))) : 0;
    case "i8": return Number.isFinite(v) ? Number(BigInt.asIntN(8, BigInt(Math.trunc(v)))) : 0;
    case "u8": return Number.isFinite(v) ? Number(BigInt.asUintN(8, BigInt(Math.trunc(v)))) : 0;
    case "bool": return v !== 0 ? 1 : 0;
    case "f16": case "bf16": return roundToStorage(dtype, v);
    default: return v;
  }
}

/**
 * The value a float64 `v` takes once stored as f16/bf16 (other dtypes: unchanged). Goes through f32 first, as
 * every backend computes in f32 registers and rounds on store (the runtime/dtype.ts conversions are the truth).
 */
export function roundToStorage(dtype: DType, v: number): number {
  if (dtype === "f16") return f16BitsToF32(f32ToF16Bits(v));
  if (dtype === "bf16") return bf16BitsToF32(f32ToBf16Bits(v));
  return v;
}

/** Rounds every element of `t` in place to its dtype's storage format when that is f16/bf16; returns `t`. */
export function roundRefToStorage(t: RefTensor): RefTensor {
  if (t.dtype !== "f16" && t.dtype !== "bf16") return t;
  for (let i = 0; i < t.data.length; i++) t.data[i] = roundToStorage(t.dtype, t.data[i]);
  return t;
}

export function makeRef(dtype: DType, shape: readonly number[], data?: Float64Array): RefTensor {
  return { dtype, shape: [...shape], data: data ?? new Float64Array(numel(shape)) };
}
