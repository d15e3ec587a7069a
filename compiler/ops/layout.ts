// Op registry, layout family: reshape, permute, broadcast_to, slice (optionally strided), concat, and iota. They
// move or replicate elements without arithmetic; backends implement them as aliases (reshape) or strided copies.
// pad and window (the convolution primitives) are in window.ts.

import { formatShape, symbolicNumel, type Dim } from "../ir/types.js";
import { addDim, dimAtLeast, dimDiff } from "../ir/dim-expr.js";
import { broadcastShapes, forEachBroadcast, makeRef, numel, stridesOf } from "./shape-utils.js";
import type { InferResult, OpCore } from "./types.js";

export const reshapeCore: OpCore<"reshape"> = {
  name: "reshape",
  arity: 1,
  infer([x], a): InferResult {
    const from = symbolicNumel(x.shape);
    const to = symbolicNumel(a.shape);
    if (from.c !== to.c || from.syms.join(",") !== to.syms.join(",")) {
      return { error: "K404", message: `cannot reshape ${formatShape(x.shape)} to ${formatShape(a.shape)}: the number of elements differs`, hint: "the product of the dimensions must stay the same (symbolic dims must appear on both sides)" };
    }
    return { dtype: x.dtype, shape: a.shape };
  },
  evaluate: ([x], _a, out) => makeRef(out.dtype, out.shape, x.data.slice()),
};

export const permuteCore: OpCore<"permute"> = {
  name: "permute",
  arity: 1,
  infer([x], a): InferResult {
    const r = x.shape.length;
    const ok = a.perm.length === r && [...a.perm].sort((p, q) => p - q).every((p, i) => p === i);
    if (!ok) return { error: "K406", message: `[${a.perm.join(", ")}] is not a permutation of the ${r} axes of ${formatShape(x.shape)}`, hint: `list each axis 0..${r - 1} exactly once` };
    return { dtype: x.dtype, shape: a.perm.map((p) => x.shape[p]) };
  },
  evaluate([x], a, out) {
    const r = makeRef(out.dtype, out.shape);
    const inSt = stridesOf(x.shape);
    const outSt = stridesOf(out.shape);
    for (let o = 0; o < r.data.length; o++) {
      let i = 0;
      for (let k = 0; k < out.shape.length; k++) i += (Math.floor(o / outSt[k]) % out.shape[k]) * inSt[a.perm[k]];
      r.data[o] = x.data[i];
    }
    return r;
  },
};

export const broadcastToCore: OpCore<"broadcast_to"> = {
  name: "broadcast_to",
  arity: 1,
  infer([x], a): InferResult {
    const b = broadcastShapes([x.shape, a.shape]);
    if ("error" in b) return b;
    if (formatShape(b) !== formatShape(a.shape)) return { error: "K401", message: `cannot broadcast ${formatShape(x.shape)} to ${formatShape(a.shape)}` };
    return { dtype: x.dtype, shape: a.shape };
  },
  evaluate([x], _a, out) {
    const r = makeRef(out.dtype, out.shape);
    forEachBroadcast(out.shape, [x.shape], (o, idx) => (r.data[o] = x.data[idx[0]]));
    return r;
  },
};

export const sliceCore: OpCore<"slice"> = {
  name: "slice",
  arity: 1,
  infer([x], a): InferResult {
    if (a.axis < 0 || a.axis >= x.shape.length) return { error: "K403", message: `slice axis ${a.axis} is out of range for ${formatShape(x.shape)}` };
    const d = x.shape[a.axis]!;
    if (typeof d === "number" && typeof a.end === "string") {
      // A known axis cut to a symbolic end, x[:, 0:T] of a [1, 16, D] position table: the call checks T <= 16
      // (compiler/ir/dim-limits.ts), as only a call's sizes say whether the table is long enough.
      const len = addDim(a.end, -a.start);
      if (!(Number.isInteger(a.start) && a.start >= 0 && a.start < d) || (a.step ?? 1) !== 1 || len === undefined) {
        return { error: "K407", message: `cannot slice [${a.start}, ${a.end}) of axis ${a.axis} of size ${d}`, hint: `a known axis takes unit slices from a known start below ${d} to a symbolic end, e.g. pos[0:T]` };
      }
      const shape = [...x.shape];
      shape[a.axis] = len;
      return { dtype: x.dtype, shape };
    }
    if (typeof d !== "number" || typeof a.end !== "number") {
      // A symbolic axis: [start, T - k) with a known start and k, unit step.
      // Or [0, n) of an axis known to hold at least n: a strided window's gradient cutting its padding off.
      const k = dimDiff(d, a.end) ?? (a.start === 0 && dimAtLeast(d, a.end) ? 0 : undefined);
      const len = addDim(a.end, -a.start);
      if (k === undefined || k < 0 || len === undefined || !(Number.isInteger(a.start) && a.start >= 0) || (a.step ?? 1) !== 1) {
        return { error: "K407", message: `cannot slice [${a.start}, ${a.end}) of symbolic dimension ${d}`, hint: `a symbolic axis takes unit slices from a known start to ${d} minus a known count, e.g. x[:, 1:] or x[:, :-1]` };
      }
      const shape = [...x.shape];
      shape[a.axis] = len;
      return { dtype: x.dtype, shape };
    }
    if (!(Number.isInteger(a.start) && Number.isInteger(a.end) && a.start >= 0 && a.start < a.end && a.end <= d)) {
      return { error: "K407", message: `slice [${a.start}, ${a.end}) is out of range for axis ${a.axis} of size ${d}`, hint: `need 0 <= start < end <= ${d}` };
    }
    const step = a.step ?? 1;
    if (!(Number.isInteger(step) && step >= 1)) return { error: "K407", message: `slice step ${step} must be a positive integer` };
    const shape = [...x.shape];
    shape[a.axis] = Math.ceil((a.end - a.start) / step);
    return { dtype: x.dtype, shape };
  },
  evaluate([x], a, out) {
    // The interpreter checks a symbolic end against the axis before it runs (dim-limits.ts); this is the backstop.
    if (a.start + (out.shape[a.axis]! - 1) * (a.step ?? 1) >= x.shape[a.axis]!) throw new Error(`slice [${a.start}, ${a.end}) reads past axis ${a.axis} of [${x.shape.join(", ")}]`);
    const r = makeRef(out.dtype, out.shape);
    const inSt = stridesOf(x.shape);
    const outSt = stridesOf(out.shape);
    for (let o = 0; o < r.data.length; o++) {
      let i = 0;
      for (let k = 0; k < out.shape.length; k++) {
        const idx = Math.floor(o / outSt[k]) % out.shape[k];
        i += (k === a.axis ? idx * (a.step ?? 1) + a.start : idx) * inSt[k];
      }
      r.data[o] = x.data[i];
    }
    return r;
  },
};

export const concatCore: OpCore<"concat"> = {
  name: "concat",
  arity: "variadic",
  infer(ins, a): InferResult {
    const first = ins[0];
    if (!first) return { error: "K204", message: "concat needs at least one tensor" };
    if (a.axis < 0 || a.axis >= first.shape.length) return { error: "K403", message: `concat axis ${a.axis} is out of range for ${formatShape(first.shape)}` };
    let total = 0;
    for (const t of ins) {
      if (t.dtype !== first.dtype) return { error: "K301", message: `concat needs tensors of one dtype, got ${first.dtype} and ${t.dtype}` };
      const same = t.shape.length === first.shape.length && t.shape.every((d, k) => k === a.axis || d === first.shape[k]);
      if (!same) return { error: "K408", message: `concat along axis ${a.axis}: ${formatShape(t.shape)} does not match ${formatShape(first.shape)}`, hint: "all dimensions except the concat axis must be equal" };
      const d = t.shape[a.axis];
      if (typeof d !== "number") return { error: "K408", message: `concat along symbolic dimension ${d} is not supported`, hint: "concatenate along an axis of known size" };
      total += d;
    }
    const shape: Dim[] = [...first.shape];
    shape[a.axis] = total;
    return { dtype: first.dtype, shape };
  },
  evaluate(ins, a, out) {
    const r = makeRef(out.dtype, out.shape);
    const outer = numel(out.shape.slice(0, a.axis));
    const inner = numel(out.shape.slice(a.axis + 1));
    const rowOut = out.shape[a.axis] * inner;
    let off = 0;
    for (const t of ins) {
      const row = t.shape[a.axis] * inner;
      for (let o = 0; o < outer; o++) r.data.set(t.data.subarray(o * row, (o + 1) * row), o * rowOut + off);
      off += row;
    }
    return r;
  },
};

/** The identity for values, a wall for gradients (the autodiff pass sends nothing through it). */
export const stopGradientCore: OpCore<"stop_gradient"> = {
  name: "stop_gradient",
  arity: 1,
  infer: ([x]) => ({ dtype: x.dtype, shape: x.shape }),
  evaluate: ([x], _a, out) => makeRef(out.dtype, out.shape, x.data.slice()),
};

export const iotaCore: OpCore<"iota"> = {
  name: "iota",
  arity: 0,
  infer: (_ins, a) => ({ dtype: a.dtype, shape: [a.n] }),
  evaluate(_ins, a, out) {
    const r = makeRef(out.dtype, out.shape);
    for (let i = 0; i < out.shape[0]!; i++) r.data[i] = i;
    return r;
  },
};
