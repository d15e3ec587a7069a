// The issue-16 layers (norms, pooling options, adaptive pooling, conv1d, conv_transpose2d, lstm/gru cells) on
// WebGPU: each golden case's outputs and input gradients against PyTorch's numbers
// (test/ops/torch-layer-goldens.json, scripts/torch-layer-goldens.py). Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { irOf } from "../helpers/backend.js";
import { LAYER_GOLDENS, layerInputs, layerProgram } from "../helpers/layer-goldens.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("issue-16 layers on WebGPU");
afterAll(() => env.h?.device.destroy());

function close(got: ArrayLike<number>, want: number[], what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  want.forEach((v, i) => {
    const g = Number(got[i]);
    if (!(Math.abs(g - v) <= 1e-5 + 1e-4 * Math.abs(v))) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

describe.skipIf(!env.h)("layers on WebGPU against PyTorch", () => {
  for (const c of LAYER_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      const ir = irOf(layerProgram(c));
      const module = await gpuModule(env, ir);
      try {
        const fwd = await runGpuVsRef(env, ir, "fwd", layerInputs(c), { module });
        c.outs.forEach((o, k) => close(fwd.gpu[k].data as ArrayLike<number>, o.y, `${c.name} WebGPU output ${k}`));
        const bwd = await runGpuVsRef(env, ir, "grads", layerInputs(c, "f32", true), { module });
        c.wrt.forEach((name, k) => close(bwd.gpu[k].data as ArrayLike<number>, c.grads[name], `${c.name} WebGPU d/d${name}`));
      } finally {
        module.dispose();
      }
    });
  }
});
