// Mixed-precision convolutions in training gather their patches (codegen/plan-conv-gather-half.ts): the forward and
// the weight gradient read x (f16/bf16, or f32 rounded while packing) instead of a stored im2col matrix. Each case
// (test/helpers/conv-gather-half.ts) checks the steps, the same bits as KILN_CONV_GATHER_HALF=0, and the float64
// reference of the f32 program at the mixed tolerance; plain SIMD here, relaxed in conv-gather-half.relaxed.test.ts.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { checkHalfConv, HALF_CASES } from "../helpers/conv-gather-half.js";
import { compile } from "./helpers.js";

describe("mixed-precision conv training gathers its patches (wasm, plain SIMD)", () => {
  for (const c of HALF_CASES) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${c.name} ${precision}`, async () => {
        await checkHalfConv(c, precision, { relaxed: false, symbolic: false, threads: 1 });
        await checkHalfConv(c, precision, { relaxed: false, symbolic: true, threads: 1 });
      }, 60_000);
    }
  }
  it("two threads", async () => {
    await checkHalfConv(HALF_CASES[0]!, "mixed-bf16", { relaxed: false, symbolic: true, threads: 2 });
  }, 60_000);

  it("MNIST CNN under mixed-bf16: both convolutions and both weight gradients gathered, no stored patches", async () => {
    const cnn = readFileSync("dsl-examples/mnist_cnn.kiln", "utf8");
    const steps = async () => (await buildWasm(compile(cnn, "cnn.kiln", "mixed-bf16"), "cnn", { wat: false })).manifest.functions.find((f) => f.name === "Train.step")!.steps;
    const after = await steps();
    process.env.KILN_CONV_GATHER_HALF = "0";
    const before = await steps();
    delete process.env.KILN_CONV_GATHER_HALF;
    const shown = after.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
    expect(after.filter((s) => s.kernel.startsWith("conv_nchw_")).length, shown).toBe(2);
    expect(after.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, shown).toBe(2);
    expect(after.some((s) => s.ops.includes("window") && !s.ops.includes("matmul") && !s.ops.includes("max")), shown).toBe(false);
    expect(before.filter((s) => s.ops.join() === "window").length, "with the switch off both layers store patches").toBe(2);
    expect(after.length).toBeLessThan(before.length);
  }, 120_000);
});
