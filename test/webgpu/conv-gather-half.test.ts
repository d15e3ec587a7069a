// Mixed-precision conv training on WebGPU with gathered patches (codegen/plan-conv-gather-half.ts): the WGSL matmul
// stages f16/bf16 x (or f32 x rounded to them) straight into its tiles, forward and weight gradient alike. Against
// the float64 reference of the same mixed program at the mixed tolerance (test/precision/helpers.ts). Skips, saying
// why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { buildWgsl } from "../../compiler/compile.js";
import { halfConvInputs, halfConvProgram, HALF_CASES } from "../helpers/conv-gather-half.js";
import { compile, FACTOR, relErr, UNIT } from "../precision/helpers.js";
import { runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("mixed-precision conv gathers on WebGPU");
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("mixed-precision conv training gathers its patches on WebGPU", () => {
  for (const c of [HALF_CASES[0]!, HALF_CASES[4]!]) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${c.name} ${precision}`, async () => {
        const { src, out } = halfConvProgram(c, true);
        const ir = compile(src, "conv.kiln", precision);
        const { wgsl, manifest } = buildWgsl(ir, "conv");
        expect(wgsl).toContain("a convolution's input x");
        const steps = manifest.functions.find((f) => f.name === "vg")!.steps;
        expect(steps.some((s) => s.ops.includes("window") && !s.ops.includes("matmul") && !s.ops.includes("max"))).toBe(false);
        const r = await runGpuVsRef(env, ir, "vg", halfConvInputs(c, out));
        for (let k = 0; k < 4; k++) {
          const err = relErr(Array.from(r.gpu[k]!.data as Float32Array), Array.from(r.ref[k]!.data, Number));
          expect(err, `${c.name} ${precision} output ${k}`).toBeLessThanOrEqual(FACTOR * UNIT[precision]);
        }
      }, 180_000);
    }
  }
});
