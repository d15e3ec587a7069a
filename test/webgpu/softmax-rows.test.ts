// The softmax_rows kernel on WebGPU (compiler/codegen/wgsl/softmax-rows.ts; lavapipe or llvmpipe here, skipped with
// the reason when there is no adapter): softmax and log_softmax rows with -inf masks, an all -inf row (NaN), +inf,
// NaN, huge and tiny values, against the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWgsl, compileToIR } from "../../compiler/compile.js";
import { expectClose } from "../helpers/backend.js";
import { runGpuVsRef, webgpuEnv, type GpuEnv } from "./helpers.js";
import { specialRows } from "../codegen/softmax-rows-cases.js";

let env: GpuEnv = {};
beforeAll(async () => { env = await webgpuEnv("softmax-rows-webgpu"); }, 70_000);
afterAll(() => env.h?.device.destroy());

describe("softmax rows on WebGPU", () => {
  for (const mode of ["softmax", "log_softmax"] as const) {
    it(mode, async (ctx) => {
      if (!env.h) return ctx.skip();
      for (const c of [1, 5, 17, 64, 1025]) {
        const x = specialRows(c);
        const src = `fn f(x: f32[8, ${c}]) -> f32[8, ${c}] { return ${mode}(x, axis: -1) }`;
        const r = compileToIR(src, "t.kiln");
        if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
        expect(buildWgsl(r.ir, "t").manifest.functions[0]!.steps.map((s) => s.ops.join(","))).toEqual([mode]);
        const { gpu, ref } = await runGpuVsRef(env, r.ir, "f", { x });
        expectClose(gpu[0]!, ref[0]!, `${mode} rows of ${c}`, 2e-5, mode === "softmax" ? 1e-30 : 2e-6);
      }
    }, 120_000);
  }
});
