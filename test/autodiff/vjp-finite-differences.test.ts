// Every op's VJP rule against central finite differences in float64, on random inputs with broadcasting and
// reductions over each axis. The test walks the registry: an op must either have cases here or declare that
// it has no derivative (NoGrad), so no op can be added without a checked gradient.
import { describe, expect, it } from "vitest";
import { DiagnosticBag } from "../../compiler/diagnostics.js";
import { GraphBuilder, type Graph, type IRModule } from "../../compiler/ir/graph.js";
import type { DType, Shape } from "../../compiler/ir/types.js";
import { OPS } from "../../compiler/ops/registry.js";
import { ALL_OPS, isRuleError, type AttrsOf, type PrimOp } from "../../compiler/ops/types.js";
import { isNoGrad } from "../../compiler/ops/vjp.js";
import { runPipeline } from "../../compiler/passes/pipeline.js";
import { Rng } from "../../runtime/rng.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { centralDifference } from "../helpers/finite-diff.js";

type Gen = "normal" | "positive" | "int" | "bool" | "away" | "index";
/** `max`: "index" values are integers in [0, max) (repeats included). */
interface In { dtype: DType; shape: number[]; gen?: Gen; max?: number }
interface Case { ins: In[]; attrs?: object }

const d = (...shape: number[]): In => ({ dtype: "f64", shape });
const dp = (...shape: number[]): In => ({ dtype: "f64", shape, gen: "positive" });
const da = (...shape: number[]): In => ({ dtype: "f64", shape, gen: "away" });
const b = (...shape: number[]): In => ({ dtype: "bool", shape, gen: "bool" });
const ix = (max: number, ...shape: number[]): In => ({ dtype: "i32", shape, gen: "index", max });
const UN = [[], [5], [2, 3]].map((s) => ({ ins: [d(...s)] }));
const UNP = [[], [5], [2, 3]].map((s) => ({ ins: [dp(...s)] }));
const UNA = [[], [5], [2, 3]].map((s) => ({ ins: [da(...s)] }));
const BIN: Case[] = [[[3], [3]], [[2, 3], [3]], [[2, 3], [2, 1]], [[1, 3], [2, 1]], [[], [4]], [[2, 1, 3], [4, 1]]].map(([s, t]) => ({ ins: [d(...s), d(...t)] }));
const RED: Case[] = [[[5], [0]], [[3, 4], [0]], [[3, 4], [1]], [[3, 4], [0, 1]], [[2, 3, 4], [1]], [[2, 3, 4], [0, 2]]].flatMap(([s, axes]) => [false, true].map((keepdims) => ({ ins: [d(...s)], attrs: { axes, keepdims } })));

const CASES: Partial<Record<PrimOp, Case[]>> = {
  neg: UN, exp: UN, log: UNP, sqrt: UNP, rsqrt: UNP, abs: UNA, tanh: UN, sigmoid: UN, relu: UNA,
  erf: UN, sin: UN, cos: UN, log1p: UNP, expm1: UN, sign: UNA, floor: UN, ceil: UN, round: UN,
  remainder: BIN.map((c) => ({ ins: [c.ins[0], { ...c.ins[1], gen: "positive" as Gen }] })),
  add: BIN, sub: BIN, mul: BIN, div: BIN.map((c) => ({ ins: [c.ins[0], { ...c.ins[1], gen: "positive" as Gen }] })),
  pow: BIN.map((c) => ({ ins: [{ ...c.ins[0], gen: "positive" as Gen }, c.ins[1]] })),
  maximum: BIN, minimum: BIN,
  where: [{ ins: [b(2, 3), d(2, 3), d(3)] }, { ins: [b(3), d(2, 3), d()] }],
  cast: [{ ins: [d(4)], attrs: { to: "f32" } }],
  sum: RED, mean: RED,
  // first: the gradient to the first extreme alone (max_pool2d's rule); random inputs have no ties.
  max: [...RED, { ins: [d(3, 4)], attrs: { axes: [1], keepdims: false, first: true } }, { ins: [d(2, 3, 4)], attrs: { axes: [0], keepdims: true, first: true } }],
  min: [...RED, { ins: [d(3, 4)], attrs: { axes: [1], keepdims: false, first: true } }],
  matmul: [{ ins: [d(2, 3), d(3, 4)] }, { ins: [d(3), d(3, 2)] }, { ins: [d(2, 3), d(3)] }, { ins: [d(2, 2, 3), d(3, 2)] }, { ins: [d(2, 1, 2, 3), d(3, 3, 2)] }],
  reshape: [{ ins: [d(2, 3)], attrs: { shape: [3, 2] } }],
  permute: [{ ins: [d(2, 3, 4)], attrs: { perm: [2, 0, 1] } }],
  broadcast_to: [{ ins: [d(3)], attrs: { shape: [2, 3] } }, { ins: [d(2, 1)], attrs: { shape: [2, 4] } }],
  slice: [{ ins: [d(6)], attrs: { axis: 0, start: 1, end: 4 } }, { ins: [d(2, 5)], attrs: { axis: 1, start: 0, end: 2 } }, { ins: [d(2, 5)], attrs: { axis: 1, start: 3, end: 5 } },
    { ins: [d(9)], attrs: { axis: 0, start: 1, end: 9, step: 3 } }, { ins: [d(2, 7)], attrs: { axis: 1, start: 0, end: 6, step: 2 } }],
  concat: [{ ins: [d(2), d(3)], attrs: { axis: 0 } }, { ins: [d(2, 3), d(2, 1)], attrs: { axis: 1 } }],
  pad: [
    { ins: [d(3)], attrs: { pads: [[2, 1, 0]], value: 0 } }, { ins: [d(2, 3)], attrs: { pads: [[1, 0, 2], [0, 2, 1]], value: 0.5 } },
    { ins: [d(1, 2, 3, 2)], attrs: { pads: [[0, 0, 0], [0, 0, 0], [1, 1, 1], [2, 0, 0]], value: 0 } },
  ],
  window: [
    { ins: [d(1, 1, 3, 3)], attrs: { kernel: [2, 2], stride: [1, 1], dilation: [1, 1] } },
    { ins: [d(2, 2, 7, 6)], attrs: { kernel: [2, 3], stride: [2, 3], dilation: [2, 1] } },
    { ins: [d(1, 3, 5, 5)], attrs: { kernel: [1, 2], stride: [3, 1], dilation: [1, 2] } },
    // Stride = kernel, dilation 1: the non-overlapping rule (one permute back), exact and with uncovered rows.
    { ins: [d(2, 2, 4, 6)], attrs: { kernel: [2, 2], stride: [2, 2], dilation: [1, 1] } },
    { ins: [d(2, 2, 7, 6)], attrs: { kernel: [2, 3], stride: [2, 3], dilation: [1, 1] } },
  ],
  depthwise_conv2d: [
    { ins: [d(1, 2, 5, 6), d(2, 1, 3, 3)], attrs: { stride: [1, 1], dilation: [1, 1], pads: [[1, 1], [1, 1]] } },
    { ins: [d(2, 3, 7, 6), d(3, 1, 2, 3)], attrs: { stride: [2, 3], dilation: [2, 1], pads: [[2, 0], [1, 3]] } },
    { ins: [d(1, 2, 6, 5), d(2, 1, 3, 3)], attrs: { stride: [1, 2], dilation: [1, 1], pads: [[-1, 1], [0, -1]] } },
  ],
  gather: [{ ins: [d(5, 3), ix(5, 6)] }, { ins: [d(4), ix(4, 2, 3)] }, { ins: [d(3, 2, 2), ix(3, 2)] }],
  scatter_add: [{ ins: [ix(4, 6), d(6, 2)], attrs: { n: 4 } }, { ins: [ix(3, 2, 2), d(2, 2)], attrs: { n: 3 } }],
  // One replica (the reference): the identity, and its gradient all_reduce(ct) is ct.
  all_reduce: [{ ins: [d(2, 3)] }, { ins: [d()] }],
};

function gen(rng: Rng, g: Gen | undefined, n: number, max = 1): number[] {
  return Array.from({ length: n }, () => {
    if (g === "index") return Math.floor(rng.uniform(0, max));
    if (g === "positive") return 0.3 + Math.abs(rng.normal(0, 1));
    if (g === "bool") return rng.uniform(0, 1) < 0.5 ? 1 : 0;
    if (g === "away") return (rng.uniform(0, 1) < 0.5 ? -1 : 1) * (0.2 + Math.abs(rng.normal(0, 1)));
    return rng.normal(0, 1);
  });
}

/** loss = sum(op(x...) * r) with r a fixed random weight, and the gradient of loss w.r.t. each float input. */
function lossGraphs(op: PrimOp, c: Case): { loss: Graph; grads: Graph; floatInputs: number[] } {
  const build = (withGrads: boolean) => {
    const bld = new GraphBuilder();
    const ins = c.ins.map((t, k) => bld.add("input", [], { name: `x${k}`, index: k }, { dtype: t.dtype, shape: t.shape as Shape }));
    const r = OPS[op].infer(c.ins.map((t) => ({ dtype: t.dtype, shape: t.shape })), (c.attrs ?? {}) as never);
    if (isRuleError(r)) throw new Error(`bad case ${op}: ${r.message}`);
    const out = bld.add(op, ins, (c.attrs ?? {}) as AttrsOf[PrimOp], r);
    const w = bld.add("input", [], { name: "r", index: ins.length }, r);
    const prod = bld.add("mul", [out, w], {}, r);
    const loss = bld.add("sum", [prod], { axes: r.shape.map((_, k) => k), keepdims: false }, { dtype: r.dtype, shape: [] });
    const inputs = [...c.ins.map((_, k) => ({ name: `x${k}`, node: ins[k] })), { name: "r", node: w }];
    const floatInputs = c.ins.flatMap((t, k) => (t.dtype === "f64" ? [k] : []));
    const outputs = withGrads
      ? floatInputs.map((k) => ({ name: `g${k}`, node: bld.add("gradient", [loss, ins[k]], {}, { dtype: "f64", shape: c.ins[k].shape }) }))
      : [{ name: "loss", node: loss }];
    return { g: { name: "f", nodes: bld.nodes, inputs, outputs, dims: [] } as Graph, floatInputs };
  };
  const diags = new DiagnosticBag();
  const m: IRModule = { source: "fd", params: [], functions: [build(true).g] };
  const grads = runPipeline(m, diags)!.functions[0];
  return { loss: build(false).g, grads, floatInputs: build(false).floatInputs };
}

describe("VJP rules match central finite differences (float64)", () => {
  it("every op has finite-difference cases or declares NoGrad", () => {
    for (const p of ALL_OPS) {
      const declared = isNoGrad(OPS[p].vjp);
      expect(declared || (CASES[p]?.length ?? 0) > 0, `${p}: no gradient cases and no NoGrad declaration`).toBe(true);
      if (declared) expect(CASES[p], `${p} is NoGrad but has cases`).toBeUndefined();
    }
  });

  for (const [op, cases] of Object.entries(CASES)) {
    it(op, () => {
      const rng = new Rng(op.length * 131 + 7);
      for (const c of cases!) {
        const { loss, grads, floatInputs } = lossGraphs(op as PrimOp, c);
        const outShape = loss.nodes[loss.inputs[loss.inputs.length - 1].node].type.shape as number[];
        const inputs: Record<string, { data: number[]; shape: number[] }> = {};
        c.ins.forEach((t, k) => (inputs[`x${k}`] = { data: gen(rng, t.gen, t.shape.reduce((a, x) => a * x, 1), t.max), shape: t.shape }));
        inputs.r = { data: gen(rng, "normal", outShape.reduce((a, x) => a * x, 1)), shape: outShape };
        const analytic = evaluateGraph(grads, inputs);
        const f = () => evaluateGraph(loss, inputs)[0].data[0];
        floatInputs.forEach((k, gi) => {
          const x = inputs[`x${k}`].data;
          for (let i = 0; i < x.length; i++) {
            const fd = centralDifference(x, i, f);
            const got = analytic[gi].data[i];
            expect(Math.abs(got - fd), `${op} ${JSON.stringify(c)} d/dx${k}[${i}]: VJP ${got} vs FD ${fd}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
          }
        });
      }
    });
  }
});
