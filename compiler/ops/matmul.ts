// Op registry, matmul: numpy semantics — [..., M, K] @ [..., K, N] with broadcast batch dims; a 1-D left
// operand is a row vector and a 1-D right operand a column vector, and that axis is dropped from the result.
// Mixed precision: f16/bf16 operands (both the same dtype) accumulate in f32 and give an f32 result.

import { formatShape, formatType, isFloat, type Dim, type Shape } from "../ir/types.js";
import { broadcastShapes, broadcastStrides, makeRef, numel, stridesOf } from "./shape-utils.js";
import type { InferResult, OpCore } from "./types.js";

function mismatch(a: Shape, b: Shape, what: string): InferResult {
  return {
    error: "K402",
    message: `matmul shape mismatch: ${what}`,
    hint: `matmul needs x[..., K] @ w[K, N]: got ${formatShape(a)} @ ${formatShape(b)}`,
  };
}

export const matmulCore: OpCore<"matmul"> = {
  name: "matmul",
  arity: 2,
  infer([a, b]): InferResult {
    if (a.dtype !== b.dtype) return { error: "K301", message: `matmul needs operands of one dtype, got ${formatType(a)} and ${formatType(b)}`, hint: `use cast(x, ${a.dtype})` };
    if (!isFloat(a.dtype)) return { error: "K302", message: `matmul is defined for float tensors, got ${formatType(a)}`, hint: "cast(x, f32) first" };
    if (a.shape.length === 0 || b.shape.length === 0) return mismatch(a.shape, b.shape, "operands must have rank >= 1 (use * for scalars)");
    const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
    const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const ka = as[as.length - 1];
    const kb = bs[bs.length - 2];
    if (ka !== kb) return mismatch(a.shape, b.shape, `inner dimensions ${ka} and ${kb} differ`);
    const batch = broadcastShapes([as.slice(0, -2), bs.slice(0, -2)]);
    if ("error" in batch) return mismatch(a.shape, b.shape, `batch dimensions do not broadcast (${batch.message})`);
    const shape: Dim[] = [...batch];
    if (a.shape.length > 1) shape.push(as[as.length - 2]);
    if (b.shape.length > 1) shape.push(bs[bs.length - 1]);
    return { dtype: a.dtype === "f16" || a.dtype === "bf16" ? "f32" : a.dtype, shape };
  },
  evaluate([a, b], _attrs, out) {
    const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
    const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const M = as[as.length - 2], K = as[as.length - 1], N = bs[bs.length - 1];
    const batchShape = out.shape.slice(0, out.shape.length - (a.shape.length > 1 ? 1 : 0) - (b.shape.length > 1 ? 1 : 0));
    const aBatch = broadcastStrides(as.slice(0, -2), batchShape);
    const bBatch = broadcastStrides(bs.slice(0, -2), batchShape);
    const r = makeRef(out.dtype, out.shape);
    const nb = numel(batchShape);
    const bst = stridesOf(batchShape);
    for (let t = 0; t < nb; t++) {
      let ao = 0, bo = 0;
      for (let k = 0; k < batchShape.length; k++) {
        const i = Math.floor(t / bst[k]) % batchShape[k];
        ao += i * aBatch[k];
        bo += i * bBatch[k];
      }
      ao *= M * K;
      bo *= K * N;
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a.data[ao + i * K + k] * b.data[bo + k * N + j];
          r.data[t * M * N + i * N + j] = s;
        }
    }
    return r;
  },
};
