// Augmentation: geometric identities (flip twice, rotate 0 / 90), ranges and shapes, the wasm kernels against
// the JS reference (bit-exact), per-sample vs batched parameters, errors, and that the generated module is current.

import { describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Tensor } from "../../runtime/tensor.js";
import { Rng } from "../../runtime/rng.js";
import {
  BufferPool, compose, normalize, randomCrop, randomHorizontalFlip, randomRotation, randomVerticalFlip, toTensor,
  augmentKernels, loadAugmentKernels, type BackendOption, type Transform,
} from "../../runtime/data/index.js";
import { jsAugment } from "../../runtime/data/augment-ref.js";
import { AUGMENT_WASM_BASE64 } from "../../runtime/data/augment-wasm.js";
import { expectKilnError } from "./helpers.js";

function randomImages(shape: number[], seed: number, dtype: "f32" | "u8" = "f32"): Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, () => (dtype === "u8" ? Math.floor(r.uniform() * 256) : r.uniform()));
  return new Tensor(dtype, shape, vals);
}

const run = (t: Transform, x: Tensor, seed = 1, batched = false) => t.apply(x, new Rng(seed), { batched });

/** rot90 counter-clockwise of a square [n, n] image = flip-upside-down of its transpose. */
function rot90(img: number[][]): number[][] {
  const n = img.length;
  const transposed = img.map((_, y) => img.map((row) => row[y]!));
  return transposed.map((_, y) => transposed[n - 1 - y]!);
}

describe("geometric identities", () => {
  test("flipping twice is the identity (horizontal and vertical, sample and batch)", () => {
    const x = randomImages([3, 5, 4], 1);
    for (const f of [randomHorizontalFlip({ p: 1 }), randomVerticalFlip({ p: 1 })]) {
      const once = run(f, x);
      expect(once.toFlatArray()).not.toEqual(x.toFlatArray());
      expect(run(f, once).toFlatArray()).toEqual(x.toFlatArray());
    }
    const b = randomImages([6, 2, 3, 3], 2);
    const hf = randomHorizontalFlip({ p: 0.5 });
    expect(run(hf, run(hf, b, 9, true), 9, true).toFlatArray()).toEqual(b.toFlatArray());
  });

  test("a horizontal flip reverses each row", () => {
    const x = new Tensor("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(run(randomHorizontalFlip({ p: 1 }), x).toArray()).toEqual([[3, 2, 1], [6, 5, 4]]);
    expect(run(randomVerticalFlip({ p: 1 }), x).toArray()).toEqual([[4, 5, 6], [1, 2, 3]]);
  });

  test("rotation by 0 is the identity; by 90 it is transpose + flip (odd and even sizes)", () => {
    for (const n of [5, 4]) {
      const x = randomImages([n, n], n);
      expect(run(randomRotation({ degrees: [0, 0] }), x).toFlatArray()).toEqual(x.toFlatArray());
      const img = x.toArray() as number[][];
      expect(run(randomRotation({ degrees: [90, 90] }), x).toArray()).toEqual(rot90(img));
      expect(run(randomRotation({ degrees: [-90, -90] }), x).toArray()).toEqual(rot90(rot90(rot90(img))));
      expect(run(randomRotation({ degrees: [180, 180] }), x).toArray()).toEqual(rot90(rot90(img)));
    }
  });

  test("rotation outputs stay in range; outside pixels take the fill", () => {
    const x = randomImages([8, 1, 9, 7], 3);
    const y = run(randomRotation({ degrees: 180 }), x, 4, true);
    expect(Math.min(...y.toFlatArray())).toBeGreaterThanOrEqual(0);
    expect(Math.max(...y.toFlatArray())).toBeLessThanOrEqual(1);
    const ones = new Tensor("f32", [9, 9], new Float32Array(81).fill(1));
    const r45 = run(randomRotation({ degrees: [45, 45], fill: 0 }), ones);
    expect(r45.get(0, 0)).toBe(0); // a corner comes from outside
    expect(r45.get(4, 4)).toBe(1); // the centre is fixed
    const u = run(randomRotation({ degrees: 30, fill: 255 }), randomImages([2, 6, 6], 5, "u8"), 2, true);
    expect(u.dtype).toBe("u8");
  });

  test("crop with padding keeps the shape and shifts the content", () => {
    const x = randomImages([5, 1, 28, 28], 6);
    const y = run(randomCrop({ size: 28, padding: 4 }), x, 7, true);
    expect(y.shape).toEqual([5, 1, 28, 28]);
    // Every output plane is the input shifted by some (dy, dx) in [-4, 4] with zeros outside.
    const shifted = (s: number, dy: number, dx: number) => {
      for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) {
        const want = r + dy >= 0 && r + dy < 28 && c + dx >= 0 && c + dx < 28 ? x.get(s, 0, r + dy, c + dx) : 0;
        if (y.get(s, 0, r, c) !== want) return false;
      }
      return true;
    };
    for (let s = 0; s < 5; s++) {
      const found = [...Array(81).keys()].some((k) => shifted(s, Math.floor(k / 9) - 4, (k % 9) - 4));
      expect(found).toBe(true);
    }
    expect(run(randomCrop({ size: [3, 2] }), randomImages([2, 5, 4], 1)).shape).toEqual([2, 3, 2]);
  });

  test("normalize and toTensor", () => {
    const x = new Tensor("f32", [2, 1, 2], [0, 1, 0.5, 0.25]);
    expect(run(normalize({ mean: [0.5, 0], std: [0.5, 0.25] }), x).toArray()).toEqual([[[-1, 1]], [[2, 1]]]);
    const u = new Tensor("u8", [2, 2], [0, 255, 51, 102]);
    expect(run(toTensor(), u).toArray()).toEqual([[0, 1], [Math.fround(0.2), Math.fround(0.4)]]);
    const hwc = new Tensor("u8", [1, 2, 3], [1, 2, 3, 4, 5, 6]); // H=1, W=2, C=3
    const chw = run(toTensor({ layout: "HWC" }), hwc);
    expect(chw.shape).toEqual([3, 1, 2]);
    expect(chw.toFlatArray().map((v) => Math.round(v * 255))).toEqual([1, 4, 2, 5, 3, 6]);
    const batch = run(toTensor({ layout: "HWC" }), new Tensor("u8", [2, 1, 2, 3]), 1, true);
    expect(batch.shape).toEqual([2, 3, 1, 2]);
  });

  test("batched transforms draw parameters per sample", () => {
    const one = randomImages([1, 4, 4], 8);
    const b = new Tensor("f32", [64, 4, 4], Float32Array.from({ length: 64 * 16 }, (_, i) => one.data[i % 16]!));
    const y = run(randomHorizontalFlip(), b, 3, true);
    const flipped = Array.from({ length: 64 }, (_, s) => y.get(s, 0, 0) !== one.get(0, 0, 0)).filter(Boolean).length;
    expect(flipped).toBeGreaterThan(16);
    expect(flipped).toBeLessThan(48);
  });
});

describe("wasm kernels", () => {
  const cases: Array<[string, (b: BackendOption) => Transform, number[], boolean]> = [
    ["flip", (b) => compose([randomHorizontalFlip(b), randomVerticalFlip(b)]), [7, 3, 5, 6], true],
    ["rotate", (b) => randomRotation({ degrees: 180, fill: 0.25, ...b }), [6, 2, 7, 5], true],
    ["rotate sample", (b) => randomRotation({ degrees: [10, 350], ...b }), [3, 9, 8], false],
    ["crop", (b) => randomCrop({ size: [6, 4], padding: [3, 2], fill: -1, ...b }), [5, 2, 7, 5], true],
    ["normalize", (b) => normalize({ mean: [0.1, 0.7], std: [0.3, 2], ...b }), [4, 2, 3, 5], true],
  ];
  for (const [name, make, shape, batched] of cases) {
    test(`${name} matches the JS reference bit for bit (f32)`, () => {
      const x = randomImages(shape, shape.length * 7);
      const w = make({ backend: "wasm" }).apply(x, new Rng(5), { batched });
      const ref = make({ backend: "js" }).apply(x, new Rng(5), { batched });
      expect(Array.from(w.data)).toEqual(Array.from(ref.data));
      expect(Array.from(w.data)).not.toEqual(Array.from(x.data));
    });
  }

  test("u8 flip / rotate / crop and toTensor match the reference", () => {
    const x = randomImages([4, 3, 6, 5], 12, "u8");
    const t = (b: BackendOption) => compose([randomRotation({ degrees: 45, fill: 7, ...b }), randomCrop({ size: 5, padding: 1, fill: 3, ...b }), randomHorizontalFlip(b)]);
    const w = t({}).apply(x, new Rng(2), { batched: true });
    const r = t({ backend: "js" }).apply(x, new Rng(2), { batched: true });
    expect(w.dtype).toBe("u8");
    expect(Array.from(w.data)).toEqual(Array.from(r.data));
    const hwc = randomImages([2, 3, 4, 3], 13, "u8");
    const a = toTensor({ layout: "HWC" }).apply(hwc, new Rng(0), { batched: true });
    const b = toTensor({ layout: "HWC", backend: "js" }).apply(hwc, new Rng(0), { batched: true });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });

  test("the backend call level: random angles on awkward sizes", async () => {
    const k = await loadAugmentKernels();
    expect(k).toBe(augmentKernels());
    const r = new Rng(3);
    for (const [h, w] of [[1, 1], [2, 9], [11, 3]] as const) {
      const d = { n: 3, c: 2, h, w };
      const src = Float32Array.from({ length: 6 * h * w }, () => r.uniform(-2, 2));
      const params = Float64Array.from({ length: 6 }, (_, i) => (i % 2 ? Math.sin(i) : Math.cos(i - 1)));
      const [a, b] = [new Float32Array(src.length), new Float32Array(src.length)];
      k.rotate(src, a, d, params, 0.5);
      jsAugment.rotate(src, b, d, params, 0.5);
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  test("regenerating the module gives the committed bytes", async () => {
    // @ts-expect-error: a plain .mjs script without types
    const script = await import("../../scripts/build-augment-wasm.mjs");
    const bytes: Uint8Array = await script.buildAugmentWasm();
    expect(Buffer.from(bytes).toString("base64")).toBe(AUGMENT_WASM_BASE64);
    const file = fileURLToPath(new URL("../../runtime/data/augment-wasm.ts", import.meta.url));
    expect(script.renderModuleFile(bytes)).toBe(readFileSync(file, "utf8"));
  });
});

describe("buffers and errors", () => {
  test("a BufferPool reuses outputs and never aliases the input", () => {
    const pool = new BufferPool();
    const f = randomHorizontalFlip({ p: 1 });
    const x = randomImages([2, 3, 3], 1);
    const y1 = f.apply(x, new Rng(1), { batched: true, buffers: pool });
    const y2 = f.apply(x, new Rng(1), { batched: true, buffers: pool });
    expect(y2).toBe(y1);
    const z = f.apply(y1, new Rng(1), { batched: true, buffers: pool });
    expect(z.data.buffer).not.toBe(y1.data.buffer);
    expect(z.toFlatArray()).toEqual(x.toFlatArray());
    expect(pool.size).toBe(2);
  });

  test("bad options and inputs are KilnErrors", () => {
    const img = randomImages([2, 4, 4], 1);
    expectKilnError(() => run(normalize({ mean: [0, 0, 0], std: [1, 1, 1] }), img), /mean has 3 values but the image has 2 channels/);
    expectKilnError(() => normalize({ mean: 0, std: 0 }), /std finite and non-zero/);
    expectKilnError(() => run(normalize({ mean: 0, std: 1 }), randomImages([4, 4], 1, "u8")), /expects f32 images but got u8 \(apply toTensor\(\) to u8 images first\)/);
    expectKilnError(() => run(randomCrop({ size: 9, padding: 2 }), img), /crop 9x9 is larger than the padded image 8x8/);
    expectKilnError(() => run(randomHorizontalFlip(), new Tensor("f32", [4])), /needs \[C, H, W\] or \[H, W\]/);
    expectKilnError(() => run(randomRotation({ degrees: 10, fill: 300 }), randomImages([3, 3], 1, "u8")), /fill 300 is not a valid u8 value/);
    expectKilnError(() => randomRotation({ degrees: [5, 1] }), /not a finite range/);
    expectKilnError(() => run(toTensor(), img), /expects u8 images but got f32/);
  });
});
