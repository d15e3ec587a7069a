// Matmul epilogues on WebGPU (wgsl/matmul-epilogue.ts): the fused bias / activation / residual / scaling, batched
// and transposed, at odd sizes, against the float64 reference. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { planModule } from "../../compiler/codegen/plan.js";
import { buildWgsl } from "../../compiler/compile.js";
import { expectClose, irOf, type Input, lcgInput as rand } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("matmul epilogues on WebGPU");
afterAll(() => env.h?.device.destroy());

const SRC = `
fn lin_relu(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f32[M, N] { return relu(x @ w + b) }
fn resid(x: f32[M, K], w: f32[K, N], r: f32[M, N]) -> f32[M, N] { return x @ w + r }
fn rowscale(x: f32[M, K], w: f32[K, N], s: f32[M, 1]) -> f32[M, N] { return (x @ w) * s - 1.0 }
fn swish(x: f32[M, K], w: f32[K, N]) -> f32[M, N] { let y = x @ w
  return y * sigmoid(y) }
fn tn(a: f32[K, M], w: f32[K, N], b: f32[N]) -> f32[M, N] { return relu(transpose(a) @ w + b) }
fn nt(x: f32[M, K], w: f32[N, K], b: f32[N]) -> f32[M, N] { return tanh(x @ transpose(w) + b) }
fn bmm(a: f32[B, M, K], w: f32[B, K, N], c: f32[B, 1, N]) -> f32[B, M, N] { return a @ w + c }
fn lin16(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f16[M, N] { return cast(relu(x @ w + b), f16) }
fn linbf(x: f32[M, K], w: f32[K, N], b: f32[N]) -> bf16[M, N] { return cast(x @ w + b, bf16) }
fn bmm_mixed(a: f32[B, M, K], w: f32[K, N], c: f32[B, 1, N]) -> f32[B, M, N] { return a @ w * c }
`;

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
