// CLI helper: the data sources `kiln train` feeds a train block's step with — a fixed synthetic batch, or the
// bundled MNIST images (images 0-7999 to train, 8000-9999 to test, by index) through the runtime's DataLoader.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ioType, type Graph } from "../ir/graph.js";
import type { Tensor } from "../../runtime/tensor.js";
import { Tensor as T } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { Rng } from "../../runtime/rng.js";
import { DataLoader, loadMnist, compose, toTensor, randomCrop, randomRotation, type TensorDataset } from "../../runtime/data/index.js";

/** The bundled data folder: --data-dir, else ./data/mnist, else the one inside the Kiln package. */
export function mnistDir(given?: string): string {
  if (given) return given;
  if (existsSync("data/mnist")) return "data/mnist";
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) if (existsSync(join(dir, "data", "mnist"))) return join(dir, "data", "mnist");
  throw new KilnError("kiln: cannot find the MNIST files (data/mnist); pass --data-dir DIR");
}

/** Which step inputs take the images and the labels: the first float input and the first integer input. */
export function imageAndLabelInputs(g: Graph): { image: string; label: string; imageShape: readonly (number | string)[] } {
  const io = g.inputs.map((i) => ({ name: i.name, t: ioType(g, i) }));
  const image = io.find((i) => i.t.dtype === "f32");
  const label = io.find((i) => i.t.dtype === "i32");
  if (!image || !label || io.length !== 2) {
    throw new KilnError(`kiln: ${g.name} takes (${io.map((i) => i.name).join(", ")}); MNIST training needs (images: f32[B, 784] or f32[B, 1, 28, 28], labels: i32[B])`);
  }
  const per = image.t.shape.slice(1).reduce<number>((a, d) => a * (typeof d === "number" ? d : NaN), 1);
  if (per !== 784) throw new KilnError(`kiln: ${g.name}'s input "${image.name}" is f32[${image.t.shape.join(", ")}]; MNIST images need 784 values per sample ([B, 784] or [B, 1, 28, 28])`);
  return { image: image.name, label: label.name, imageShape: image.t.shape };
}

/** Reshapes a loader batch's images [B, 28, 28] to the model's input shape (same data, no copy). */
export function asModelInput(images: Tensor, shape: readonly (number | string)[]): Tensor {
  const b = images.shape[0];
  return new T("f32", shape.map((d) => (typeof d === "number" ? d : b)), images.data as Float32Array);
}

/**
 * Raw pixels in [0, 1]: any normalisation belongs to the model (mnist_mlp.kiln normalises in forward, mnist_cnn.kiln's
 * batch norm after its first conv does), so a saved model scores the same on these pixels wherever it runs. `augment`: random rotation (±10°,
 * bilinear) and random crop with 2 pixels of padding on the training images.
 */
export async function mnistLoaders(dir: string, batch: number, seed: number, augment = false): Promise<{ train: DataLoader; test: DataLoader; trainSet: TensorDataset; testSet: TensorDataset }> {
  const [trainSet, testSet] = await Promise.all([loadMnist({ dir, split: "train" }), loadMnist({ dir, split: "test" })]);
  const pixels = () => ({ image: toTensor() });
  const augmented = { image: compose([toTensor(), randomRotation({ degrees: 10 }), randomCrop({ size: 28, padding: 2 })]) };
  return {
    trainSet,
    testSet,
    train: new DataLoader(trainSet, { batchSize: batch, shuffle: true, seed, dropLast: true, numClasses: 10, transforms: augment ? augmented : pixels() }),
    test: new DataLoader(testSet, { batchSize: 500, shuffle: false, numClasses: 10, transforms: pixels() }),
  };
}

/** One fixed seeded batch for every step input: floats ~ N(0, 1), integers in [0, classes). */
export function syntheticBatch(g: Graph, batch: number, classes: number, seed: number): Record<string, Tensor> {
  const rng = new Rng(seed + 1);
  const inputs: Record<string, Tensor> = {};
  for (const io of g.inputs) {
    const t = ioType(g, io);
    const shape = t.shape.map((d) => (typeof d === "number" ? d : batch));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Array.from({ length: n }, () => (t.dtype === "i32" ? Math.floor(rng.uniform(0, classes)) : rng.normal(0, 1)));
    inputs[io.name] = new T(t.dtype, shape, data);
  }
  return inputs;
}

export function resolvePath(p: string): string {
  return resolve(p);
}
