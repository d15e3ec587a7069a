// Mixed-precision gradients of the example programs on wasm (f16/bf16 storage in the kernels) agree with the
// wasm f32 gradients: one sgd(lr: 1) step, the weights' changes compared norm-wise (test/precision/helpers.ts).
import { describe, expect, it } from "vitest";
import type { IRModule } from "../../compiler/ir/graph.js";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { compareGradients, compile, dimsFor, inputsFor, sgdSource, TRAIN_EXAMPLES, unitFor } from "./helpers.js";

async function step(ir: IRModule, name: string, inputs: ReturnType<typeof inputsFor>) {
  const b = await buildWasm(ir, "t");
  const mod = await loadKilnModule(b.manifest, b.wasm, { seed: 0 });
  const weights = ir.params.filter((p) => !p.role).map((p) => p.name);
  const before = new Map(weights.map((w) => [w, Array.from(mod.getParam(w).data as Float32Array)]));
  const given: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) given[k] = new Tensor(v.dtype, v.shape, v.data);
  mod.call(name, given);
  const ups = new Set(ir.functions.find((g) => g.name === name)!.updates!.map((u) => u.param));
  return new Map(weights.filter((w) => ups.has(w)).map((w) => [w, Array.from(mod.getParam(w).data as Float32Array, (v, k) => before.get(w)![k] - v)]));
}

describe("mixed-precision gradients of the examples agree with f32 (wasm)", () => {
  for (const f of TRAIN_EXAMPLES) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${f} ${precision}`, async () => {
        const src = sgdSource(f);
        const ref = compile(src, f, "f32"), mixed = compile(src, f, precision);
        const stepName = ref.functions.find((g) => g.name.endsWith(".step"))!.name;
        const inputs = inputsFor(ref.functions.find((x) => x.name === stepName)!, dimsFor(f));
        const errs = compareGradients(await step(ref, stepName, inputs), await step(mixed, stepName, inputs), unitFor(f, precision), (m) => expect.fail(`${f} ${precision} ${m}`));
        if (process.env.KILN_SHOW_ERRORS) console.log(`wasm ${f} ${precision}: ${errs.join(", ")}`);
      }, 60_000);
    }
  }
});
