// The softmax_grad_rows kernel on WebGPU (compiler/codegen/wgsl/softmax-grad-rows.ts; lavapipe or llvmpipe here,
// skipped with the reason when there is no adapter): the value and gradient of sum(softmax(x) * t) and of
// sum(log_softmax(x) * t) over rows of 2 to 1027 (more columns than the workgroup's 64 invocations, and fewer; a
// mean over rows of 37), a symbolic batch, against the float64 reference interpreter; the kernel is the one planned (one step).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWgsl, compileToIR } from "../../compiler/compile.js";
import { expectClose } from "../helpers/backend.js";
import { runGpuVsRef, webgpuEnv, type GpuEnv } from "./helpers.js";

let env: GpuEnv = {};
beforeAll(async () => { env = await webgpuEnv("softmax-grad-webgpu"); }, 70_000);
afterAll(() => env.h?.device.destroy());

describe("softmax / log_softmax backward rows on WebGPU", () => {
  for (const mode of ["softmax", "log_softmax"] as const) {
    it(mode, async (ctx) => {
      for (const c of [2, 7, 64, 300, 1027, 37]) {
        // Rows of 37: a mean loss (its seed 1 / numel is one value the kernel reads).
        const src = `fn l(x: f32[B, ${c}], t: f32[B, ${c}]) -> f32 { return ${c === 37 ? "mean" : "sum"}(${mode}(x, axis: -1) * t) }
fn g(x: f32[B, ${c}], t: f32[B, ${c}]) -> (f32, f32[B, ${c}]) { return value_and_grad(l)(x, t) }`;
        const r = compileToIR(src, "t.kiln");
        if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
        const kernels = buildWgsl(r.ir, "t").manifest.functions.find((f) => f.name === "g")!.steps.map((s) => s.kernel);
        expect(kernels.filter((k) => k.startsWith(`${mode}_grad_rows`)), kernels.join(" ")).toHaveLength(1);
        if (!env.h) return ctx.skip();
        const R = 5;
        const x = { dtype: "f32" as const, shape: [R, c], data: Array.from({ length: R * c }, (_, i) => Math.sin(i * 1.3) * (i < c ? 30 : 4)) };
        const t = { dtype: "f32" as const, shape: [R, c], data: Array.from({ length: R * c }, (_, i) => Math.cos(i * 0.71)) };
        const { gpu, ref } = await runGpuVsRef(env, r.ir, "g", { x, t });
        expectClose(gpu[0]!, ref[0]!, `${mode} value, rows of ${c}`, 2e-5, 1e-5);
        expectClose(gpu[1]!, ref[1]!, `${mode} gradient, rows of ${c}`, 2e-5, c === 37 ? 1e-8 : 2e-6);
      }
    }, 120_000);
  }

  // Causal attention: dx's group reads the bool mask [T, T] under [B, 2, T, T] (a tile input, i32 words on the GPU).
  it("causal attention (a bool mask tile)", async (ctx) => {
    for (const T of [7, 64, 70]) {
      const src = `fn l(q: f32[B, 2, ${T}, 4], k: f32[B, 2, ${T}, 4], v: f32[B, 2, ${T}, 4]) -> f32 { return sum(scaled_dot_product_attention(q, k, v, causal: true) * v) }
fn g(q: f32[B, 2, ${T}, 4], k: f32[B, 2, ${T}, 4], v: f32[B, 2, ${T}, 4]) -> f32[B, 2, ${T}, 4] { return grad(l)(q, k, v) }`;
      const r = compileToIR(src, "t.kiln");
      if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
      const kernels = buildWgsl(r.ir, "t").manifest.functions.find((f) => f.name === "g")!.steps.map((s) => s.kernel);
      expect(kernels.filter((k) => k.startsWith("softmax_grad_rows")), kernels.join(" ")).toHaveLength(1);
      if (!env.h) return ctx.skip();
      const n = 3 * 2 * T * 4;
      const [q, k, v] = [1.1, 2.3, 0.7].map((f) => ({ dtype: "f32" as const, shape: [3, 2, T, 4], data: Array.from({ length: n }, (_, i) => Math.sin(i * f) * 2) }));
      const { gpu, ref } = await runGpuVsRef(env, r.ir, "g", { q: q!, k: k!, v: v! });
      expectClose(gpu[0]!, ref[0]!, `attention dq, T = ${T}`, 2e-5, 2e-6);
    }
  }, 120_000);
});
