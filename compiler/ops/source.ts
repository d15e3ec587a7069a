// Op registry, graph leaves: function inputs, model params, scalar constants, random_uniform and dim_size. They have no
// kernel: the runtime (or the reference interpreter) binds their buffers; lowering types the first three.

import { makeRef } from "./shape-utils.js";
import type { OpCore, SourceOp } from "./types.js";

function boundByCaller<P extends SourceOp>(name: P): OpCore<P> {
  return {
    name,
    arity: 0,
    infer: () => ({ error: "K901", message: `${name} nodes are typed by lowering, not inferred` }),
    evaluate: () => {
      throw new Error(`internal: ${name} nodes are bound by the interpreter, not evaluated`);
    },
  };
}

export const inputCore = boundByCaller("input");
export const paramCore = boundByCaller("param");

export const constCore: OpCore<"const"> = {
  name: "const",
  arity: 0,
  infer: () => ({ error: "K901", message: "const nodes are typed by lowering, not inferred" }),
  evaluate: (_ins, a, out) => {
    const r = makeRef(out.dtype, out.shape);
    r.data.fill(a.value);
    return r;
  },
};

/**
 * Its values are drawn per call by whoever runs the graph (the wasm executor, or the reference interpreter with
 * the same seeded streams, see runtime/random.ts), so it has a shape rule but no evaluator of its own.
 */
export const randomUniformCore: OpCore<"random_uniform"> = {
  name: "random_uniform",
  arity: 0,
  infer: (_ins, a) =>
    Number.isInteger(a.stream) && a.stream >= 0 ? { dtype: "f32", shape: a.shape } : { error: "K901", message: `random_uniform stream ${a.stream} must be an integer >= 0` },
  evaluate: () => {
    throw new Error("internal: random_uniform values are supplied by the interpreter (runtime/random.ts), not evaluated");
  },
};

/**
 * The size of symbolic dims as a value: whoever runs the graph knows the call's dims (the wasm and WebGPU
 * executors write it like an input, the reference interpreter computes it from its binding), so no evaluator here.
 */
export const dimSizeCore: OpCore<"dim_size"> = {
  name: "dim_size",
  arity: 0,
  infer: (_ins, a) => (a.dtype === "bool" ? { error: "K302", message: "dim_size cannot be bool" } : { dtype: a.dtype, shape: [] }),
  evaluate: () => {
    throw new Error("internal: dim_size values are computed by the interpreter from the call's dims, not evaluated");
  },
};

function expandedByAutodiff<P extends "gradient" | "cotangent">(name: P): OpCore<P> {
  return {
    name,
    arity: name === "gradient" ? 2 : 0,
    // gradient(y, w) has w's type; y must be a float scalar (lowering checks it with a diagnostic first).
    infer: (ins) => (name === "gradient" ? { dtype: ins[1].dtype, shape: ins[1].shape } : { error: "K901", message: "cotangent nodes are typed by lowering" }),
    evaluate: () => {
      throw new Error(`internal: ${name} nodes are replaced by the autodiff pass before anything evaluates them`);
    },
  };
}

export const gradientCore = expandedByAutodiff("gradient");
export const cotangentCore = expandedByAutodiff("cotangent");
