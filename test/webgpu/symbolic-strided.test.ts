// Strided conv2d and pooling over symbolic H and W ("(H+1)/2", "H/2" dims; test/lower/symbolic-strided.test.ts
// checks them on wasm) on WebGPU: outputs and gradients against the reference at an odd size. Skips, saying why,
// without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { expectClose, irOf, type Input } from "../helpers/backend.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("strided windows over symbolic sizes on WebGPU");
afterAll(() => env.h?.device.destroy());

const SRC = `
fn net(x: f32[N, 2, H, W], w: f32[3, 2, 3, 3]) -> (f32[N, 3, (H + 1) / 2, (W + 1) / 2], f32[N, 2, H / 2, W / 2]) {
  return conv2d(x, w, stride: 2, padding: 1), avg_pool2d(x, 2)
}
fn loss(x: f32[N, 2, H, W], w: f32[3, 2, 3, 3]) -> f32 { return sum(max_pool2d(tanh(conv2d(x, w, stride: 2, padding: 1)), 2)) + sum(avg_pool2d(x * x, 3, stride: 2, padding: 1, count_include_pad: false)) }
fn g(x: f32[N, 2, H, W], w: f32[3, 2, 3, 3]) -> (f32[N, 2, H, W], f32[3, 2, 3, 3]) { return grad(loss, wrt: [x, w])(x, w) }`;

const grid = (shape: number[], f: (k: number) => number): Input => ({ dtype: "f32", shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => Math.fround(f(k))) });

describe.skipIf(!env.h)("strided windows over symbolic H and W on WebGPU", () => {
  it("outputs and gradients at 7x9 match the reference", async () => {
    const ir = irOf(SRC);
    const module = await gpuModule(env, ir);
    try {
      const inputs = { x: grid([2, 2, 7, 9], (k) => Math.sin(0.3 * k)), w: grid([3, 2, 3, 3], (k) => Math.cos(k) * 0.3) };
      for (const fn of ["net", "g"]) {
        const { gpu, ref } = await runGpuVsRef(env, ir, fn, inputs, { module });
        if (fn === "net") expect(ref.map((r) => r.shape)).toEqual([[2, 3, 4, 5], [2, 2, 3, 4]]);
        ref.forEach((r, k) => expectClose(gpu[k]!, r, `${fn} output ${k} on WebGPU`, 1e-4, 1e-5));
      }
    } finally {
      module.dispose();
    }
  });
});
