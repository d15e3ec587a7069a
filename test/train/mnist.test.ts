// A short training run on the real MNIST images (kept small for CI): one epoch of the MLP must reach a loss
// and a held-out accuracy threshold, and --save/--plot write a safetensors file that loads back (scoring the same on
// raw pixels) and an SVG.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { irOf } from "../helpers/backend.js";
import { runTraining } from "../../compiler/cli/train.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { main } from "../../compiler/cli/main.js";
import { buildWasm } from "../../compiler/compile.js";
import { mnistDir } from "../../compiler/cli/data.js";
import { DataLoader, loadCompiled, loadMnist, Tensor, toTensor, type KilnModule } from "../../runtime/index.js";

const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });

describe("MNIST training (images 0-7999 train, 8000-9999 held out)", () => {
  it("one epoch of the MLP reaches loss < 0.6 and accuracy > 90%", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-mnist-"));
    const ir = irOf(readFileSync("dsl-examples/mnist_mlp.kiln", "utf8"), "dsl-examples/mnist_mlp.kiln");
    const lines: string[] = [];
    const r = await runTraining(ir, { data: "mnist", epochs: 1, steps: 0, batch: 64, seed: 1, classes: 10, checkNumerics: false, save: join(dir, "w.safetensors"), plot: join(dir, "curves.svg"), progress: quiet }, (s) => lines.push(s));
    expect(r.losses[0]).toBeLessThan(0.6);
    expect(r.accuracy[0]).toBeGreaterThan(0.9);
    expect(lines.join("\n")).toMatch(/final test accuracy \d+\.\d+% on the 2000 held-out images/);
    const saved = parseSafetensors(new Uint8Array(readFileSync(join(dir, "w.safetensors"))));
    expect(Object.keys(saved.tensors).sort()).toEqual(["MnistMLP.b1", "MnistMLP.b2", "MnistMLP.w1", "MnistMLP.w2"]);
    expect(saved.tensors["MnistMLP.w1"].shape).toEqual([784, 256]);
    expect(Array.from(saved.tensors["MnistMLP.b2"].data as Float32Array)).toEqual(Array.from(r.module.getParam("MnistMLP.b2").data as Float32Array));
    const svg = readFileSync(join(dir, "curves.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("accuracy");
    // The saved weights, loaded as a user would (load({ weights })), score on raw pixels exactly what training
    // printed: the normalisation is in the model, not in the CLI.
    const b = await buildWasm(ir, "mnist_mlp");
    const fresh = (await loadCompiled(b.manifest, { wasm: async () => b.wasm }, { weights: join(dir, "w.safetensors") })) as KilnModule;
    const test = new DataLoader(await loadMnist({ dir: mnistDir(), split: "test" }), { batchSize: 500, shuffle: false, transforms: { image: toTensor() } });
    let right = 0, total = 0;
    for await (const batch of test) {
      const n = batch.image.shape[0]!;
      const z = (fresh.call("MnistMLP.forward", { x: new Tensor("f32", [n, 784], batch.image.data as Float32Array) }) as Tensor).data as Float32Array;
      const y = batch.label.data as Int32Array;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (z[i * 10 + k]! > z[i * 10 + best]!) best = k;
        if (best === y[i]) right++;
      }
      total += n;
    }
    expect(total).toBe(2000);
    expect(right / total).toBe(r.accuracy[0]);
  }, 120_000);

  it("iterating epochs allocates no new wasm memory per batch", async () => {
    const ir = irOf(readFileSync("dsl-examples/mnist_mlp.kiln", "utf8"), "dsl-examples/mnist_mlp.kiln");
    const r = await runTraining(ir, { data: "mnist", epochs: 2, steps: 0, batch: 128, seed: 2, classes: 10, checkNumerics: false, progress: quiet }, () => {});
    expect(r.memoryBytes[1]).toBe(r.memoryBytes[0]);
  }, 60_000);

  it("--augment trains on rotated and cropped images (wasm augmentation kernels) and still learns", async () => {
    const ir = irOf(readFileSync("dsl-examples/mnist_mlp.kiln", "utf8"), "dsl-examples/mnist_mlp.kiln");
    const r = await runTraining(ir, { data: "mnist", epochs: 1, steps: 0, batch: 64, seed: 3, classes: 10, checkNumerics: false, augment: true, progress: quiet }, () => {});
    expect(r.accuracy[0]).toBeGreaterThan(0.85);
  }, 60_000);

  it("bad MNIST inputs are clear errors", async () => {
    const err: string[] = [];
    const code = await main(["train", "dsl-examples/mlp_train.kiln", "--data", "mnist", "--data-dir", "/nonexistent"], () => {}, (s) => err.push(s));
    expect(code).toBe(1);
    expect(err.join("\n")).toMatch(/nonexistent/);
    const wrongShape = irOf(`
model M {
  param w: f32[10, 10] = zeros()
  fn loss(x: f32[B, 10], y: i32[B]) -> f32 { return cross_entropy(x @ w, y) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
    await expect(runTraining(wrongShape, { data: "mnist", epochs: 1, steps: 0, batch: 8, seed: 0, classes: 10, checkNumerics: false }, () => {})).rejects.toThrow(/MNIST images need 784 values per sample/);
  }, 30_000);
});
