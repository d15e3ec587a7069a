// Op registry: every primitive in one table, keyed by name. Each entry declares its shape/dtype rule and
// float64 evaluator (OpCore), its vector-Jacobian rule, and how each backend emits it. The table is a mapped
// type over PrimOp, so adding an op without all of these fails `tsc`; rules a later issue will supply are
// `Pending` values that `pendingRules()` lists (and the test report prints).

import { WASM_LOWERING, type WasmLowering } from "../codegen/wasm/op-emitters.js";
import { WGSL_LOWERING, type WgslLowering } from "../codegen/wgsl/op-emitters.js";
import { binaryCore, castCore, compareCore, unaryCore, whereCore } from "./elementwise.js";
import { broadcastToCore, concatCore, iotaCore, stopGradientCore, permuteCore, reshapeCore, sliceCore } from "./layout.js";
import { matmulCore } from "./matmul.js";
import { allFiniteCore, argmaxCore, reduceCore } from "./reduce.js";
import { constCore, cotangentCore, gradientCore, inputCore, paramCore, randomUniformCore, dimSizeCore } from "./source.js";
import { padCore, windowCore } from "./window.js";
import { gatherCore, scatterAddCore } from "./gather.js";
import { allReduceCore } from "./collective.js";
import { depthwiseConv2dCore } from "./depthwise.js";
import { VJP_RULES, type NoGrad, type VjpRule } from "./vjp.js";
import { ALL_OPS, isPending, pending, type OpCore, type Pending, type PrimOp } from "./types.js";

export interface OpDef<P extends PrimOp> extends OpCore<P> {
  readonly vjp: VjpRule<P> | NoGrad;
  readonly wasm: WasmLowering;
  readonly wgsl: WgslLowering;
}

const CORES: { readonly [P in PrimOp]: OpCore<P> } = {
  neg: unaryCore("neg"), exp: unaryCore("exp"), log: unaryCore("log"), sqrt: unaryCore("sqrt"), rsqrt: unaryCore("rsqrt"),
  abs: unaryCore("abs"), tanh: unaryCore("tanh"), sigmoid: unaryCore("sigmoid"), relu: unaryCore("relu"),
  erf: unaryCore("erf"), sin: unaryCore("sin"), cos: unaryCore("cos"), log1p: unaryCore("log1p"), expm1: unaryCore("expm1"),
  sign: unaryCore("sign"), floor: unaryCore("floor"), ceil: unaryCore("ceil"), round: unaryCore("round"),
  add: binaryCore("add"), sub: binaryCore("sub"), mul: binaryCore("mul"), div: binaryCore("div"), pow: binaryCore("pow"),
  maximum: binaryCore("maximum"), minimum: binaryCore("minimum"), remainder: binaryCore("remainder"),
  eq: compareCore("eq"), ne: compareCore("ne"), lt: compareCore("lt"), le: compareCore("le"), gt: compareCore("gt"), ge: compareCore("ge"),
  sum: reduceCore("sum"), mean: reduceCore("mean"), max: reduceCore("max"), min: reduceCore("min"),
  reshape: reshapeCore, permute: permuteCore, broadcast_to: broadcastToCore, slice: sliceCore, concat: concatCore,
  pad: padCore, window: windowCore,
  where: whereCore, cast: castCore, matmul: matmulCore, iota: iotaCore, argmax: argmaxCore, stop_gradient: stopGradientCore, random_uniform: randomUniformCore, dim_size: dimSizeCore,
  all_finite: allFiniteCore, gather: gatherCore, scatter_add: scatterAddCore, all_reduce: allReduceCore, depthwise_conv2d: depthwiseConv2dCore,
  input: inputCore, param: paramCore, const: constCore, gradient: gradientCore, cotangent: cotangentCore,
};

function entry<P extends PrimOp>(p: P): OpDef<P> {
  return { ...CORES[p], vjp: VJP_RULES[p], wasm: WASM_LOWERING[p], wgsl: WGSL_LOWERING[p] };
}

export const OPS = Object.fromEntries(ALL_OPS.map((p) => [p, entry(p)])) as { readonly [P in PrimOp]: OpDef<P> };

export function opDef<P extends PrimOp>(p: P): OpDef<P> {
  return OPS[p];
}

/** Every rule slot still waiting for a later issue, as "op.slot (by whom)". */
export function pendingRules(): string[] {
  const out: string[] = [];
  for (const p of ALL_OPS) {
    const d = OPS[p] as OpDef<PrimOp>;
    for (const slot of ["vjp", "wasm", "wgsl"] as const) {
      const v = d[slot];
      if (isPending(v)) out.push(`${p}.${slot} (${v.pending})`);
    }
  }
  return out;
}
