// Mixed-precision gradients of the example programs agree with their f32 gradients, on the reference
// interpreter (which rounds every f16/bf16 value, compiler/reference/interpreter.ts). Each train block is run for one step
// with sgd(lr: 1), so a weight's change is exactly minus its gradient. Tolerances: test/precision/helpers.ts.
import { describe, expect, it } from "vitest";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph, type RefInput } from "../../compiler/reference/interpreter.js";
import { RandomStreams } from "../../runtime/random.js";
import { referenceParams } from "../../compiler/cli/run.js";
import { compareGradients, compile, dimsFor, inputsFor, sgdSource, TRAIN_EXAMPLES, unitFor } from "./helpers.js";

/** Minus the change of every model weight in one step (its gradient). */
function step(ir: IRModule, name: string, inputs: Record<string, RefInput>, dims: Record<string, number>) {
  const g = ir.functions.find((f) => f.name === name)!;
  const weights = new Set(ir.params.filter((p) => !p.role).map((p) => p.name));
  const ups = g.updates!.filter((u) => weights.has(u.param));
  const params = referenceParams(ir, 0);
  const outs = evaluateGraph({ ...g, outputs: ups.map((u) => ({ name: u.param, node: u.node })) }, inputs, params, dims, { random: new RandomStreams(0) });
  return new Map(ups.map((u, i) => [u.param, Array.from(outs[i].data, (v, k) => params[u.param][k] - v)]));
}

describe("mixed-precision gradients of the examples agree with f32 (reference interpreter)", () => {
  for (const f of TRAIN_EXAMPLES) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${f} ${precision}`, () => {
        const src = sgdSource(f);
        const ref = compile(src, f, "f32"), mixed = compile(src, f, precision);
        const dims = dimsFor(f);
        const stepName = ref.functions.find((g) => g.name.endsWith(".step"))!.name;
        const inputs = inputsFor(ref.functions.find((x) => x.name === stepName)!, dims);
        const errs = compareGradients(step(ref, stepName, inputs, dims), step(mixed, stepName, inputs, dims), unitFor(f, precision), (m) => expect.fail(`${f} ${precision} ${m}`));
        if (process.env.KILN_SHOW_ERRORS) console.log(`${f} ${precision}: ${errs.join(", ")}`);
      });
    }
  }
});
