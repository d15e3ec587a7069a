// Op registry, collectives: all_reduce, the sum of a tensor over the data-parallel replicas. The float64 reference
// is one replica (the identity); its gradient is all_reduce of the cotangent (vjp.ts), since every replica's copy
// of the sum depends on every replica's input. On wasm it is a host step (codegen/plan.ts) that calls the
// executor's collective hook; sync_batch_norm (sync-norm.ts) is its only user.

import type { OpCore } from "./types.js";
import { isFloat } from "../ir/types.js";
import { makeRef } from "./shape-utils.js";

export const allReduceCore: OpCore<"all_reduce"> = {
  name: "all_reduce",
  arity: 1,
  // The wasm host step sums f32 (the runtime refuses another dtype at load); sync_batch_norm casts to f32 first.
  infer: ([x]) =>
    isFloat(x.dtype)
      ? { dtype: x.dtype, shape: x.shape }
      : { error: "K301", message: `all_reduce sums float tensors, got ${x.dtype}`, hint: "cast to f32 first" },
  evaluate: ([x], _a, out) => makeRef(out.dtype, out.shape, x.data.slice()),
};
