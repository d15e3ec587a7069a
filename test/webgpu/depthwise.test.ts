// depthwise conv2d (the depthwise_conv2d primitive's WGSL kernel, and its gradient's) on WebGPU: each golden case's
// output and input gradients against PyTorch's numbers (test/ops/torch-depthwise-goldens.json,
// scripts/torch-depthwise-goldens.py). Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { graphOf, irOf } from "../helpers/backend.js";
import { DEPTHWISE_GOLDENS, depthwiseInputs, depthwiseProgram } from "../helpers/depthwise-goldens.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("depthwise conv2d on WebGPU");
afterAll(() => env.h?.device.destroy());

function close(got: ArrayLike<number>, want: readonly number[], what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  want.forEach((v, i) => {
    const g = Number(got[i]);
    if (!(Math.abs(g - v) <= 1e-5 + 1e-4 * Math.abs(v))) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

describe.skipIf(!env.h)("depthwise conv2d on WebGPU against PyTorch", () => {
  for (const c of DEPTHWISE_GOLDENS) {
    it(`${c.name}: ${c.options}`, async () => {
      const ir = irOf(depthwiseProgram(c));
      expect(graphOf(ir, "fwd").nodes.some((n) => n.op === "depthwise_conv2d")).toBe(true);
      const module = await gpuModule(env, ir);
      try {
        const fwd = await runGpuVsRef(env, ir, "fwd", depthwiseInputs(c, false), { module });
        close(fwd.gpu[0]!.data as ArrayLike<number>, c.y, `${c.name} WebGPU output`);
        const bwd = await runGpuVsRef(env, ir, "grads", depthwiseInputs(c, true), { module });
        Object.keys(c.shapes).forEach((n, k) => close(bwd.gpu[k]!.data as ArrayLike<number>, c.grads[n]!, `${c.name} WebGPU d/d${n}`));
      } finally {
        module.dispose();
      }
    });
  }
});
