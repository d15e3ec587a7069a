// The bundled real MNIST test set: loads through the IDX reader, has the README's label counts, splits by index,
// and trains-style iteration (toTensor in the loader) gives f32 batches in [0, 1].

import { describe, expect, test } from "vitest";
import { fileURLToPath } from "node:url";
import { DataLoader, loadMnist, toTensor, MNIST_CLASSES } from "../../runtime/data/index.js";

const dir = fileURLToPath(new URL("../../data/mnist/", import.meta.url));

describe("MNIST (data/mnist)", () => {
  test("all 10000 images load with the README's label counts", async () => {
    const all = await loadMnist({ dir, split: "all" });
    const { image, label } = all.tensors;
    expect([image!.dtype, image!.shape, label!.dtype, label!.shape]).toEqual(["u8", [10000, 28, 28], "i32", [10000]]);
    const counts = new Array(10).fill(0);
    for (const v of label!.data) counts[v]++;
    expect(counts).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    // Image 0 of the test set is a 7 with background pixels 0 and some full-intensity strokes.
    expect(label!.data[0]).toBe(7);
    expect(Math.max(...image!.data.subarray(0, 784))).toBe(255);
  });

  test("train is images 0-7999 and test 8000-9999, by index", async () => {
    const [train, testSet, all] = await Promise.all(["train", "test", "all"].map((split) => loadMnist({ dir, split: split as "train" })));
    expect([train!.length, testSet!.length]).toEqual([8000, 2000]);
    expect(testSet!.tensors.label!.data[0]).toBe(all!.tensors.label!.data[8000]);
    expect(Array.from(testSet!.tensors.image!.data.subarray(0, 784))).toEqual(Array.from(all!.tensors.image!.data.subarray(8000 * 784, 8001 * 784)));
  });

  test("a shuffled loader with toTensor yields f32 [64, 28, 28] in [0, 1] and valid labels", async () => {
    const train = await loadMnist({ dir, split: "train" });
    const loader = new DataLoader(train, { batchSize: 64, shuffle: true, seed: 1, numClasses: MNIST_CLASSES, transforms: { image: toTensor() } });
    let n = 0;
    for await (const b of loader) {
      if (n === 0) {
        expect([b.image!.dtype, b.image!.shape]).toEqual(["f32", [64, 28, 28]]);
        const px = b.image!.data as Float32Array;
        expect(px.every((v) => v >= 0 && v <= 1)).toBe(true);
      }
      n += b.label!.shape[0]!;
    }
    expect(n).toBe(8000);
  });
});
