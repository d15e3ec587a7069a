// The MNIST MLP (dsl-examples/mnist_mlp.kiln) trained for one epoch on wasm, quantized dynamically on wasm and on
// WebGPU: the two int8 models predict the same digits for (nearly) every held-out image and have the same
// accuracy, within a point of f32. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { irOf } from "../helpers/backend.js";
import { runTraining } from "../../compiler/cli/train.js";
import { asModelInput, mnistDir, mnistLoaders } from "../../compiler/cli/data.js";
import { buildWgsl } from "../../compiler/compile.js";
import { quantizeDynamic } from "../../runtime/quantize/dynamic.js";
import { loadKilnModuleWebGPU } from "../../runtime/webgpu/module.js";
import type { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import type { Tensor } from "../../runtime/tensor.js";
import { webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("int8 MNIST MLP on WebGPU");
afterAll(() => env.h?.device.destroy());
const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
const SRC = "dsl-examples/mnist_mlp.kiln";

/** The predicted digit of every held-out image. */
async function predictions(logits: (x: Tensor) => Promise<Float32Array> | Float32Array, test: Awaited<ReturnType<typeof mnistLoaders>>["test"]): Promise<{ pred: number[]; labels: number[] }> {
  const pred: number[] = [], labels: number[] = [];
  for await (const batch of test) {
    const z = await logits(asModelInput(batch.image, ["B", 784]));
    const y = batch.label.data as Int32Array;
    for (let r = 0; r < y.length; r++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (z[r * 10 + k]! > z[r * 10 + best]!) best = k;
      pred.push(best);
      labels.push(y[r]!);
    }
  }
  return { pred, labels };
}
const accuracy = (p: { pred: number[]; labels: number[] }) => p.pred.filter((d, i) => d === p.labels[i]).length / p.labels.length;

describe.skipIf(!env.h)("int8 MNIST MLP on WebGPU", () => {
  it("webgpu int8 predicts like wasm int8, within a point of f32", async () => {
    const ir = irOf(readFileSync(SRC, "utf8"), SRC);
    const { module: wasm } = await runTraining(ir, { data: "mnist", epochs: 1, steps: 0, batch: 64, seed: 1, classes: 10, checkNumerics: false, progress: quiet }, () => {});
    const b = buildWgsl(ir, "mnist_mlp");
    const gpu = await loadKilnModuleWebGPU(b.manifest, b.wgsl, { device: env.h!.device });
    for (const p of gpu.manifest.params) gpu.setParam(p.name, wasm.getParam(p.name));
    const { test } = await mnistLoaders(mnistDir(), 250, 1);
    const onWasm = (x: Tensor) => (wasm.call("MnistMLP.forward", { x }) as Tensor).data as Float32Array;
    const onGpu = async (x: Tensor) => (await (gpu.call("MnistMLP.forward", { x }) as GpuTensor).read()).data as Float32Array;

    const f32 = await predictions(onWasm, test);
    const rw = quantizeDynamic(wasm, { ops: ["matmul"], dtype: "int8" });
    const rg = await quantizeDynamic(gpu, { ops: ["matmul"], dtype: "int8" });
    expect(rg.ops.filter((o) => o.fn === "MnistMLP.forward").map((o) => o.ops.join("+"))).toEqual(["matmul+add+relu", "matmul+add"]);
    const int8Wasm = await predictions(onWasm, test);
    const int8Gpu = await predictions(onGpu, test);
    const agree = int8Gpu.pred.filter((d, i) => d === int8Wasm.pred[i]).length / int8Gpu.pred.length;
    const [a32, aw, ag] = [f32, int8Wasm, int8Gpu].map(accuracy) as [number, number, number];
    console.log(`MNIST MLP (1 epoch) held-out accuracy: f32 ${(a32 * 100).toFixed(2)}%, wasm int8 ${(aw * 100).toFixed(2)}%, WebGPU int8 (${rg.wgslDot}) ${(ag * 100).toFixed(2)}%; predictions agree on ${(agree * 100).toFixed(2)}%\n${rg.text}`);
    expect(a32).toBeGreaterThan(0.85);
    expect(agree).toBeGreaterThanOrEqual(0.998);
    expect(Math.abs(ag - aw)).toBeLessThanOrEqual(0.002);
    expect(Math.abs(ag - a32)).toBeLessThanOrEqual(0.01);
    expect(rg.weightBytes).toEqual(rw.weightBytes);
    gpu.dispose();
  }, 60_000);
});
