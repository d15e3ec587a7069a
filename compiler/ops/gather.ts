// Op registry, row gathers: gather(table, ids) = table[ids] along axis 0 (embedding lookups, take) and its
// adjoint scatter_add(ids, src) (n rows of zeros, src's rows added at their ids), the gradient that touches only
// the rows used. An id outside [0, rows) reads a zero row and scatters nothing (the runtime rejects such ids
// when they come from an input, runtime/bind.ts).

import { formatShape, formatType } from "../ir/types.js";
import { makeRef, numel } from "./shape-utils.js";
import type { InferResult, OpCore } from "./types.js";

export const gatherCore: OpCore<"gather"> = {
  name: "gather",
  arity: 2,
  infer([table, ids]): InferResult {
    if (table.shape.length === 0) return { error: "K403", message: `gather needs a table of rank >= 1, got ${formatType(table)}` };
    if (ids.dtype !== "i32") return { error: "K301", message: `gather needs i32 ids, got ${formatType(ids)}`, hint: "cast(ids, i32)" };
    return { dtype: table.dtype, shape: [...ids.shape, ...table.shape.slice(1)] };
  },
  evaluate([table, ids], _a, out) {
    const r = makeRef(out.dtype, out.shape);
    const rows = table.shape[0]!, len = numel(table.shape.slice(1));
    for (let j = 0; j < ids.data.length; j++) {
      const id = ids.data[j]!;
      if (id >= 0 && id < rows) r.data.set(table.data.subarray(id * len, (id + 1) * len), j * len);
    }
    return r;
  },
};

export const scatterAddCore: OpCore<"scatter_add"> = {
  name: "scatter_add",
  arity: 2,
  infer([ids, src], a): InferResult {
    if (ids.dtype !== "i32") return { error: "K301", message: `scatter_add needs i32 ids, got ${formatType(ids)}` };
    const lead = src.shape.slice(0, ids.shape.length);
    if (src.shape.length < ids.shape.length || lead.some((d, k) => d !== ids.shape[k])) {
      return { error: "K409", message: `scatter_add needs src [${ids.shape.join(", ")}, ...] for ids ${formatShape(ids.shape)}, got ${formatType(src)}` };
    }
    if (typeof a.n === "number" && !(Number.isInteger(a.n) && a.n >= 1)) return { error: "K411", message: `scatter_add needs a positive row count, got ${a.n}` };
    return { dtype: src.dtype, shape: [a.n, ...src.shape.slice(ids.shape.length)] };
  },
  evaluate([ids, src], _a, out) {
    const r = makeRef(out.dtype, out.shape);
    const len = numel(out.shape.slice(1));
    for (let j = 0; j < ids.data.length; j++) {
      const id = ids.data[j]!;
      if (!(id >= 0 && id < out.shape[0]!)) continue;
      for (let c = 0; c < len; c++) r.data[id * len + c]! += src.data[j * len + c]!;
    }
    return r;
  },
};
