// Op registry, reductions: sum, mean, max, min over a set of axes (attrs.axes normalised, sorted, unique),
// with keepdims. mean is float-only; empty reductions give 0 / NaN / -inf / +inf like numpy's identities.

import { formatType, isFloat, type Dim } from "../ir/types.js";
import { makeRef, numel, stridesOf } from "./shape-utils.js";
import type { InferResult, OpCore, ReduceOp } from "./types.js";

const INIT: Record<ReduceOp, number> = { sum: 0, mean: 0, max: -Infinity, min: Infinity };
const COMBINE: Record<ReduceOp, (a: number, b: number) => number> = {
  sum: (a, b) => a + b,
  mean: (a, b) => a + b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
};

export function reduceCore<P extends ReduceOp>(name: P): OpCore<P> {
  return {
    name,
    arity: 1,
    infer([x], a): InferResult {
      if (x.dtype === "bool") return { error: "K302", message: `${name} is not defined for bool tensors`, hint: "cast(x, i32) first to count trues" };
      if (name === "mean" && !isFloat(x.dtype)) return { error: "K302", message: `mean needs a float tensor, got ${formatType(x)}`, hint: "use cast(x, f32)" };
      if (a.first && (a.axes.length !== 1 || (name !== "max" && name !== "min"))) return { error: "K403", message: `${name} with first: true needs max or min over exactly one axis` };
      for (const ax of a.axes) {
        if (ax < 0 || ax >= x.shape.length) return { error: "K403", message: `axis ${ax} is out of range for rank ${x.shape.length}` };
      }
      const shape: Dim[] = [];
      x.shape.forEach((d, k) => {
        if (!a.axes.includes(k)) shape.push(d);
        else if (a.keepdims) shape.push(1);
      });
      return { dtype: x.dtype, shape };
    },
    evaluate([x], a, out) {
      const r = makeRef(out.dtype, out.shape);
      r.data.fill(INIT[name]);
      const keptShape = x.shape.filter((_, k) => !a.axes.includes(k));
      const keptStrides = stridesOf(keptShape);
      const inStrides = stridesOf(x.shape);
      const n = numel(x.shape);
      const f = COMBINE[name];
      for (let i = 0; i < n; i++) {
        let o = 0;
        let j = 0;
        for (let k = 0; k < x.shape.length; k++) {
          const idx = Math.floor(i / inStrides[k]) % x.shape[k];
          if (!a.axes.includes(k)) o += idx * keptStrides[j++];
        }
        r.data[o] = f(r.data[o], x.data[i]);
      }
      if (name === "mean") {
        const count = a.axes.reduce((p, ax) => p * x.shape[ax], 1);
        for (let o = 0; o < r.data.length; o++) r.data[o] = count === 0 ? NaN : r.data[o] / count;
      }
      return r;
    },
  };
}

/** argmax: the first index of the maximum along `axis` (NaN counts as the maximum, like numpy). */
export const argmaxCore: OpCore<"argmax"> = {
  name: "argmax",
  arity: 1,
  infer([x], a): InferResult {
    if (x.dtype === "bool") return { error: "K302", message: "argmax is not defined for bool tensors" };
    if (a.axis < 0 || a.axis >= x.shape.length) return { error: "K403", message: `axis ${a.axis} is out of range for rank ${x.shape.length}` };
    const shape: Dim[] = [];
    x.shape.forEach((d, k) => (k !== a.axis ? shape.push(d) : a.keepdims ? shape.push(1) : undefined));
    return { dtype: "i32", shape };
  },
  evaluate([x], a, out) {
    const r = makeRef("i32", out.shape);
    const n = x.shape[a.axis];
    const inner = x.shape.slice(a.axis + 1).reduce((p, q) => p * q, 1);
    const outer = x.shape.slice(0, a.axis).reduce((p, q) => p * q, 1);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let best = 0;
        for (let k = 1; k < n; k++) {
          const v = x.data[(o * n + k) * inner + i], b = x.data[(o * n + best) * inner + i];
          if (!Number.isNaN(b) && (v > b || Number.isNaN(v))) best = k;
        }
        r.data[o * inner + i] = best;
      }
    return r;
  },
};

/** all_finite: true when no element of any (float) input is Inf or NaN; an empty input is finite. */
export const allFiniteCore: OpCore<"all_finite"> = {
  name: "all_finite",
  arity: "variadic",
  infer(xs): InferResult {
    if (xs.length === 0) return { error: "K204", message: "all_finite needs at least one tensor" };
    const bad = xs.find((x) => !isFloat(x.dtype));
    if (bad) return { error: "K302", message: `all_finite needs float tensors, got ${formatType(bad)}`, hint: "integer and bool values are always finite" };
    return { dtype: "bool", shape: [] };
  },
  evaluate(xs) {
    const r = makeRef("bool", []);
    r.data[0] = xs.every((x) => x.data.every(Number.isFinite)) ? 1 : 0;
    return r;
  },
};
