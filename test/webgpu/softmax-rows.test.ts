// The softmax_rows kernel on WebGPU (compiler/codegen/wgsl/softmax-rows.ts; lavapipe or llvmpipe here, skipped with
// the reason when there is no adapter): softmax and log_softmax rows with -inf masks, an all -inf row (NaN), +inf,
// NaN, huge and tiny values, against the float64 reference; the rows that store their exps and sums; and
// cross-entropy's rows that store their max and sums.
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

  // Exps and sums stored for the backward (codegen/plan-rows.ts `saves`): with y ("softmax_saves", z = x @ w read
  // by the backward too) and without it ("exp_sum_rows", the division fused into its consumers).
  it("softmax storing its exps and sums: value and gradient", async (ctx) => {
    if (!env.h) return ctx.skip();
    for (const c of [1, 5, 17, 64, 300]) {
      const src = `fn f(x: f32[6, 4], w: f32[4, ${c}]) -> f32 {
  let z = x @ w
  return sum(softmax(z, axis: -1) * z) + sum(softmax(x, axis: -1) * x)
}
fn g(x: f32[6, 4], w: f32[4, ${c}]) -> (f32, f32[6, 4]) { return value_and_grad(f)(x, w) }`;
      const r = compileToIR(src, "t.kiln");
      if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
      const kernels = buildWgsl(r.ir, "t").manifest.functions.find((f) => f.name === "g")!.steps.map((s) => s.kernel);
      expect(kernels.filter((k) => k.startsWith("softmax_saves") || k.startsWith("exp_sum_rows")).length, kernels.join(" ")).toBe(2);
      const x = { dtype: "f32" as const, shape: [6, 4], data: Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * 3) };
      const w = { dtype: "f32" as const, shape: [4, c], data: Array.from({ length: 4 * c }, (_, i) => Math.cos(i * 0.37)) };
      const { gpu, ref } = await runGpuVsRef(env, r.ir, "g", { x, w });
      expectClose(gpu[0]!, ref[0]!, `value, rows of ${c}`, 2e-5, 1e-5);
      expectClose(gpu[1]!, ref[1]!, `gradient, rows of ${c}`, 2e-5, 1e-5);
    }
  }, 120_000);

  // Cross-entropy's log-sum-exp rows: the max and sums stored ("lse_rows_max"), in the training step the exps too
  // ("exp_sum_rows_max"); -1e30 masks and a row spanning more than 87.6.
  it("cross-entropy's log-sum-exp rows: loss and gradient", async (ctx) => {
    if (!env.h) return ctx.skip();
    for (const c of [1, 5, 17, 300]) {
      const src = `fn f(x: f32[6, ${c}], labels: i32[6]) -> f32 { return cross_entropy(x, labels) }
fn g(x: f32[6, ${c}], labels: i32[6]) -> (f32, f32[6, ${c}]) { return value_and_grad(f)(x, labels) }`;
      const r = compileToIR(src, "t.kiln");
      if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
      const steps = (fn: string) => buildWgsl(r.ir!, "t").manifest.functions.find((f) => f.name === fn)!.steps.map((s) => s.kernel);
      expect(steps("f").filter((k) => k.startsWith("lse_rows_max")), steps("f").join(" ")).toHaveLength(1);
      expect(steps("g").filter((k) => k.startsWith("exp_sum_rows_max")), steps("g").join(" ")).toHaveLength(1);
      const x = { dtype: "f32" as const, shape: [6, c], data: Array.from({ length: 6 * c }, (_, i) => (i % 3 === 1 && i < c ? -1e30 : Math.sin(i * 1.3) * 8)) };
      if (c > 1) x.data[2 * c] = -100;
      const labels = { dtype: "i32" as const, shape: [6], data: [0, 1, 2, 3, 4, 5].map((i) => (i * 7) % c) };
      for (const fn of ["f", "g"]) {
        const { gpu, ref } = await runGpuVsRef(env, r.ir, fn, { x, labels });
        gpu.forEach((t, k) => expectClose(t, ref[k]!, `${fn} output ${k}, rows of ${c}`, 2e-5, 1e-6));
      }
    }
  }, 120_000);
});
