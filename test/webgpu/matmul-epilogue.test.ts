// Matmul epilogues on WebGPU (wgsl/matmul-epilogue.ts): the fused bias / activation / residual / scaling, batched
// and transposed, at odd sizes, against the float64 reference. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { planModule } from "../../compiler/codegen/plan.js";
import { buildWgsl } from "../../compiler/compile.js";
import { expectClose, irOf, type Input, lcgInput as rand } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";
import { epilogueProgram } from "../passes/fusion-helpers.js";

const env = await webgpuEnv("matmul epilogues on WebGPU");
afterAll(() => env.h?.device.destroy());

const SRC = epilogueProgram(["lin_relu", "resid", "rowscale", "swish", "tn", "nt", "bmm", "lin16", "linbf", "bmm_mixed"]);

const ir = irOf(SRC);

describe("matmul epilogue WGSL", () => {
  it("every function is one matmul kernel with its epilogue in the shader", () => {
    const plan = planModule(ir);
    for (const f of plan.functions) expect(f.steps.length, f.name).toBe(1);
    const wgsl = buildWgsl(ir, "epi").wgsl!;
    expect(wgsl).toContain("epilogue over the sum");
    expect(wgsl).toContain("e_0");
  });
});

describe.skipIf(!env.h)("matmul epilogues on WebGPU match the reference", { timeout: 120_000 }, () => {
  it("odd sizes, transposed and batched operands", async () => {
    const mod = await gpuModule(env, ir);
    // f32 sums of K products in another order than the reference's: rtol K * 2^-24 with a factor 8.
    const run = async (fn: string, inputs: Record<string, Input>, K: number) => {
      const { gpu, ref } = await runGpuVsRef(env, ir, fn, inputs, { module: mod });
      const tol = Math.max(1e-5, K * 2 ** -24 * 8);
      expectClose(gpu[0]!, ref[0]!, `${fn} on WebGPU`, tol, tol);
    };
    for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 255, 33], [257, 3, 17]] as const) {
      const x = rand([M, K], 1), w = rand([K, N], 2), b = rand([N], 3);
      await run("lin_relu", { x, w, b }, K);
      await run("resid", { x, w, r: rand([M, N], 4) }, K);
      await run("rowscale", { x, w, s: rand([M, 1], 5) }, K);
      await run("swish", { x, w }, K);
      await run("tn", { a: rand([K, M], 6), w, b }, K);
      await run("nt", { x, w: rand([N, K], 7), b }, K);
    }
    // f16/bf16 stores: the f32 sum and the reference's float64 sum may round to neighbours, one ulp = 2u
    // relative (u = 2^-11 f16, 2^-8 bf16), plus the f32 sum's K * 2^-24 (factor 8). Decoded before comparing.
    for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 255, 33]] as const) {
      for (const [fn, u] of [["lin16", 2 ** -11], ["linbf", 2 ** -8]] as const) {
        const { gpu, ref } = await runGpuVsRef(env, ir, fn, { x: rand([M, K], 1), w: rand([K, N], 2), b: rand([N], 3) }, { module: mod });
        const tol = 2 * u + K * 2 ** -24 * 8;
        expectClose(new Tensor("f32", gpu[0]!.shape, gpu[0]!.toFlatArray()), { ...ref[0]!, dtype: "f32" }, `${fn} on WebGPU`, tol, tol);
      }
    }
    for (const [B, M, K, N] of [[1, 3, 5, 7], [3, 17, 33, 9]] as const) {
      await run("bmm", { a: rand([B, M, K], 1), w: rand([B, K, N], 2), c: rand([B, 1, N], 3) }, K);
      await run("bmm_mixed", { a: rand([B, M, K], 4), w: rand([K, N], 5), c: rand([B, 1, N], 6) }, K);
    }
  });
});
