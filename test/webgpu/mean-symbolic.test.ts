// mean over symbolic dims on WebGPU (lavapipe or llvmpipe here, skipped with the reason when there is no adapter):
// the gradient's count is a dim_size the executor uploads per call; one module called at two sizes in turn, value
// and gradient against PyTorch (test/ops/mean-symbolic-goldens.json, scripts/torch-mean-symbolic-goldens.py).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { compileToIR } from "../../compiler/compile.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose } from "../helpers/backend.js";
import { gpuModule, webgpuEnv, type GpuEnv } from "./helpers.js";

interface Case { name: string; dims: Record<string, number>; xShape: number[]; x: number[]; w: number[]; value: number; grad: number[] }
const GOLD = JSON.parse(readFileSync(new URL("../ops/mean-symbolic-goldens.json", import.meta.url), "utf8")) as { cases: Case[] };

let env: GpuEnv = {};
beforeAll(async () => { env = await webgpuEnv("mean-symbolic-webgpu"); }, 70_000);
afterAll(() => env.h?.device.destroy());

// Two of test/ops/mean-symbolic.test.ts's losses: the batch and a known axis; two symbolic dims.
const SRC: Record<string, [string, string, string, number[]]> = {
  batch_and_known: ["f32[B, 4, 3]", "f32[4]", "sum(mean(x, axis: [0, 2]) * w)", [4]],
  two_symbolic: ["f32[B, T]", "f32[1]", "mean(x * x * w)", [1]],
};

describe("mean over symbolic dims on WebGPU", () => {
  for (const [name, [xt, wt, body, wShape]] of Object.entries(SRC)) {
    it(`${name}: value and gradient vs PyTorch at two sizes, one module`, async (ctx) => {
      if (!env.h) return ctx.skip();
      const r = compileToIR(`fn f(x: ${xt}, w: ${wt}) -> f32 { return ${body} }
fn g(x: ${xt}, w: ${wt}) -> (f32, ${xt}) { return value_and_grad(f)(x, w) }`, "mean.kiln");
      if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
      const mod = await gpuModule(env, r.ir);
      try {
        expect(mod.manifest.functions.find((f) => f.name === "g")!.values.filter((v) => v.source.kind === "dim").length).toBe(1);
        const cases = GOLD.cases.filter((c) => c.name === name);
        for (const c of [...cases, cases[0]!]) {
          const out = mod.call("g", { x: new Tensor("f32", c.xShape, Float32Array.from(c.x)), w: new Tensor("f32", wShape, Float32Array.from(c.w)) });
          const [v, gx] = await Promise.all((out as GpuTensor[]).map((t) => t.read()));
          const what = `${name} at ${JSON.stringify(c.dims)}`;
          expectClose(v!, { dtype: "f32", shape: [], data: [c.value] }, `${what}: value vs torch`, 2e-5, 1e-6);
          expectClose(gx!, { dtype: "f32", shape: c.xShape, data: c.grad }, `${what}: gradient vs torch`, 2e-5, 1e-7);
        }
      } finally {
        mod.dispose();
      }
    }, 120_000);
  }
});
