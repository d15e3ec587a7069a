// The casts the precision pass inserts are folded into kernels by fusion (elementwise groups, reduce prologues,
// matmul operand loading and epilogues, extra outputs of update kernels): the plan of a mixed-precision training
// step launches no kernel that only converts between dtypes.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { compileToIR } from "../../compiler/compile.js";
import { planModule } from "../../compiler/codegen/plan.js";
import type { EwExpr, NamedKernel } from "../../compiler/codegen/kernel.js";

const onlyCasts = (e: EwExpr): boolean => e.t === "in" || (e.t === "op" && e.op === "cast" && e.args.every(onlyCasts));

function castKernels(kernels: readonly NamedKernel[]): Set<string> {
  return new Set(kernels.filter((k) => k.spec.kind === "elementwise" && !k.spec.extraOutputs?.length && onlyCasts(k.spec.expr)).map((k) => k.name));
}

describe("no standalone cast kernels in mixed-precision training steps", () => {
  for (const [file, step] of [["mlp_train.kiln", "Sgd.step"], ["mlp_train.kiln", "Adam.step"], ["mnist_mlp.kiln", "Train.step"], ["mnist_cnn.kiln", "Train.step"]] as const) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${file} ${step} ${precision}`, () => {
        const r = compileToIR(readFileSync(`dsl-examples/${file}`, "utf8"), file, [], [], { precision });
        const plan = planModule(r.ir!);
        const casts = castKernels(plan.kernels);
        const fn = plan.functions.find((f) => f.name === step)!;
        const bad = fn.steps.filter((s) => casts.has(s.kernel)).map((s) => `${s.kernel} (${s.ops.join(",")}) values ${s.buffers.join(",")}`);
        expect(bad, `${step} launches cast-only kernels`).toEqual([]);
      });
    }
  }
});
