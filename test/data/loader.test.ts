// Datasets, samplers and the DataLoader: shapes, seeded shuffling, drop-last, splits, prefetch, buffer reuse, errors.

import { describe, expect, test } from "vitest";
import { Tensor } from "../../runtime/tensor.js";
import {
  DataLoader, RandomSampler, SequentialSampler, Subset, SubsetSampler, TensorDataset, rangeSampler, trainValSplit,
  randomHorizontalFlip, type Batch, type Dataset, type Sample,
} from "../../runtime/data/index.js";
import { expectKilnError } from "./helpers.js";

/** n samples: x[i] = [i, i + 0.5, i + 0.25] (f32), label[i] = i % 3 (i32). */
function toy(n: number): TensorDataset {
  const x = new Tensor("f32", [n, 3], Float32Array.from({ length: 3 * n }, (_, k) => Math.floor(k / 3) + [0, 0.5, 0.25][k % 3]!));
  const label = new Tensor("i32", [n], Int32Array.from({ length: n }, (_, i) => i % 3));
  return new TensorDataset({ x, label });
}

/** toy(n) plus img[i] = a 2x3 image whose pixels are i*10 + 0..5 (f32), for transforms. */
function toyImages(n: number): TensorDataset {
  const img = new Tensor("f32", [n, 2, 3], Float32Array.from({ length: 6 * n }, (_, k) => Math.floor(k / 6) * 10 + (k % 6)));
  return new TensorDataset({ ...toy(n).tensors, img });
}

/** The dataset index of every sample of a batch (x[:, 0] holds it). */
const ids = (b: Batch) => Array.from({ length: b.x!.shape[0]! }, (_, r) => b.x!.data[3 * r]!);
// Read during iteration: a batch's buffers are reused two batches later.
const epochIds = (l: DataLoader, e: number) => Array.from(l.epoch(e), ids).flat();

describe("TensorDataset", () => {
  test("get returns row views and numbers; slice shares data", () => {
    const ds = toy(5);
    const s = ds.get(2);
    expect((s.x as Tensor).toArray()).toEqual([2, 2.5, 2.25]);
    expect(s.label).toBe(2);
    expect((s.x as Tensor).data.buffer).toBe(ds.tensors.x!.data.buffer);
    const sl = ds.slice(3);
    expect(sl.length).toBe(2);
    expect((sl.get(0).x as Tensor).toArray()).toEqual([3, 3.5, 3.25]);
  });

  test("mismatched lengths and bad indices are KilnErrors naming the tensor/index", () => {
    expectKilnError(() => new TensorDataset({ x: new Tensor("f32", [4, 2]), y: new Tensor("i32", [3]) }), /"y" has 3 rows but "x" has 4/);
    expectKilnError(() => toy(3).get(3), /index 3 out of range for a dataset of length 3/);
    expectKilnError(() => toy(3).get(-1), /index -1/);
    expectKilnError(() => new Subset(toy(3), [0, 7]), /index 7 out of range/);
  });
});

describe("DataLoader batching", () => {
  test("batch shapes and dtypes; the last batch is short unless dropLast", () => {
    const l = new DataLoader(toy(10), { batchSize: 4 });
    const shapes = [...l].map((b) => [b.x!.shape, b.x!.dtype, b.label!.shape, b.label!.dtype]);
    expect(shapes).toEqual([[[4, 3], "f32", [4], "i32"], [[4, 3], "f32", [4], "i32"], [[2, 3], "f32", [2], "i32"]]);
    expect(l.length).toBe(3);
    const d = new DataLoader(toy(10), { batchSize: 4, dropLast: true });
    expect([...d].map((b) => b.x!.shape[0])).toEqual([4, 4]);
    expect(d.length).toBe(2);
    expect(epochIds(d, 0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test("sequential order stacks the right rows", () => {
    const [b0] = new DataLoader(toy(6), { batchSize: 2 });
    expect(b0!.x!.toArray()).toEqual([[0, 0.5, 0.25], [1, 1.5, 1.25]]);
    expect(b0!.label!.toArray()).toEqual([0, 1]);
  });

  test("generic datasets (get only) collate numbers and tensors", () => {
    const ds: Dataset = { length: 5, get: (i): Sample => ({ v: new Tensor("f64", [2], [i, 10 - i]), y: i * 2, w: i + 0.5 }) };
    const [b] = new DataLoader(ds, { batchSize: 5 });
    expect(b!.v!.toArray()).toEqual([[0, 10], [1, 9], [2, 8], [3, 7], [4, 6]]);
    expect([b!.y!.dtype, b!.w!.dtype]).toEqual(["i32", "f32"]);
    expect(b!.y!.toArray()).toEqual([0, 2, 4, 6, 8]);
  });

  test("a generic sample with the wrong shape names the field and index", () => {
    const ds: Dataset = { length: 3, get: (i): Sample => ({ v: new Tensor("f32", [i === 2 ? 3 : 2]) }) };
    expectKilnError(() => [...new DataLoader(ds, { batchSize: 3 })], /sample 2: field "v" is f32\[3\] but sample 0's is f32\[2\]/);
  });

  test("bad batch sizes are KilnErrors", () => {
    for (const bs of [0, -2, 1.5, NaN]) expectKilnError(() => new DataLoader(toy(3), { batchSize: bs }), /batchSize must be a positive integer/);
  });

  test("numClasses checks labels, naming the field and dataset index", () => {
    const ds = toy(6);
    expect([...new DataLoader(ds, { batchSize: 4, numClasses: 3 })].length).toBe(2);
    expectKilnError(() => [...new DataLoader(ds, { batchSize: 4, numClasses: 2 })], /label "label" of dataset index 2 is 2, outside \[0, 2\)/);
    expectKilnError(() => new DataLoader(ds, { batchSize: 4, numClasses: 3, labelKey: "y" }), /no field "y"/);
  });

  test("a sampler index out of range names the position", () => {
    expectKilnError(() => [...new DataLoader(toy(4), { batchSize: 2, sampler: new SubsetSampler([0, 9]) })], /position 1 .*index 9 out of range for a dataset of length 4/);
  });
});

describe("shuffling", () => {
  test("each epoch is a permutation; same seed same order, different seed or epoch different order", () => {
    const mk = (seed: number) => new DataLoader(toy(50), { batchSize: 8, shuffle: true, seed });
    const a = epochIds(mk(1), 0);
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochIds(mk(1), 0)).toEqual(a);
    expect(epochIds(mk(2), 0)).not.toEqual(a);
    expect(epochIds(mk(1), 1)).not.toEqual(a);
    const l = mk(1);
    const first = Array.from(l, ids).flat();
    const second = Array.from(l, ids).flat();
    expect(first).toEqual(a);
    expect(second).toEqual(epochIds(mk(1), 1));
  });

  test("RandomSampler's epoch order depends on (seed, epoch) only", () => {
    const s = new RandomSampler(20, { seed: 7 });
    const e3 = Array.from(s.epochIndices(3));
    s.epochIndices(0);
    expect(Array.from(s.epochIndices(3))).toEqual(e3);
    expect(Array.from(new SequentialSampler(4).epochIndices())).toEqual([0, 1, 2, 3]);
  });
});

describe("splits and subset samplers", () => {
  test("trainValSplit partitions 0..n-1, seeded", () => {
    const { train, val } = trainValSplit(100, { valFraction: 0.2, seed: 3 });
    expect(val.length).toBe(20);
    expect([...train, ...val].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set([...train, ...val]).size).toBe(100);
    expect(trainValSplit(100, { valFraction: 0.2, seed: 3 }).val).toEqual(val);
    expect(trainValSplit(100, { valFraction: 0.2, seed: 4 }).val).not.toEqual(val);
    expect(Array.from(trainValSplit(10, { valCount: 3, shuffle: false }).val)).toEqual([7, 8, 9]);
    expectKilnError(() => trainValSplit(10, { valCount: 11 }), /valCount 11/);
    expectKilnError(() => trainValSplit(10, {}), /exactly one of valFraction and valCount/);
  });

  test("loaders over the two sides see disjoint samples; rangeSampler and Subset", () => {
    const ds = toy(30);
    const { train, val } = trainValSplit(30, { valCount: 6, seed: 1 });
    const tr = new DataLoader(ds, { batchSize: 4, sampler: new SubsetSampler(train, { shuffle: true, seed: 5 }) });
    const va = new DataLoader(ds, { batchSize: 4, sampler: new SubsetSampler(val) });
    const seen = [...epochIds(tr, 0), ...epochIds(va, 0)];
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(epochIds(va, 0)).toEqual(Array.from(val));
    expect(epochIds(new DataLoader(ds, { batchSize: 3, sampler: rangeSampler(10, 15) }), 0)).toEqual([10, 11, 12, 13, 14]);
    expect(epochIds(new DataLoader(new Subset(ds, [5, 2, 9]), { batchSize: 2 }), 0)).toEqual([5, 2, 9]);
  });
});

describe("prefetch and buffer reuse", () => {
  const opts = { batchSize: 7, shuffle: true, seed: 11, transforms: { img: randomHorizontalFlip() } };
  const all = (b: Batch) => [b.x!.toArray(), b.label!.toArray(), b.img!.toArray()];

  test("the async (prefetching) iterator yields the same batches as the sync one", async () => {
    const l = new DataLoader(toyImages(40), opts);
    const sync = Array.from(l.epoch(2), all);
    const asyncBatches: unknown[] = [];
    for await (const b of l.epoch(2)) asyncBatches.push(all(b));
    expect(asyncBatches).toEqual(sync);
    expect(asyncBatches.length).toBe(6);
    // The flips are seeded per epoch: some rows are flipped, and epoch 3 flips differently.
    const flipped = sync.flatMap(([x, , img]) => (img as number[][][]).filter((im, r) => im[0]![0] !== (x as number[][])[r]![0]! * 10));
    expect(flipped.length).toBeGreaterThan(5);
    expect(Array.from(l.epoch(3), all)).not.toEqual(sync);
  });

  test("prefetch prepares batch i+1 before batch i is handed out", async () => {
    let gets = 0;
    const ds: Dataset = { length: 8, get: (i) => (gets++, { v: i }) };
    const loader = new DataLoader(ds, { batchSize: 2 }); // reads sample 0 to learn the fields
    gets = 0;
    const it = loader[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setImmediate(r));
    expect(gets).toBe(4); // batches 0 and 1
    await it.return?.();
  });

  test("an epoch allocates no batch buffers: a fixed pool, the same across epochs", async () => {
    const l = new DataLoader(toyImages(40), opts);
    const buffers = (bs: Batch[]) => new Set(bs.flatMap((b) => [b.x!.data.buffer, b.label!.data.buffer, b.img!.data.buffer]));
    const e0 = buffers([...l]);
    const e1 = buffers([...l]);
    expect(e0.size).toBe(2 * 3); // 2 slots x (x, label, flipped img)
    expect(e1).toEqual(e0);
    const asyncBatches: Batch[] = [];
    for await (const b of l) asyncBatches.push(b);
    expect(buffers(asyncBatches).size).toBe(3 * 3);
    const again: Batch[] = [];
    for await (const b of l) again.push(b);
    expect(buffers(again)).toEqual(buffers(asyncBatches));
  });

  test("a yielded batch stays valid through the next iteration; copy gives owned batches", () => {
    const l = new DataLoader(toy(12), { batchSize: 2 });
    let prev: Batch | undefined;
    let prevIds: number[] = [];
    for (const b of l) {
      if (prev) expect(ids(prev)).toEqual(prevIds);
      prev = b;
      prevIds = ids(b);
    }
    const kept = [...new DataLoader(toy(12), { batchSize: 2, copy: true })];
    expect(kept.flatMap(ids)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  test("a nested iteration of the same shuffled loader gets its own buffers and order", () => {
    const l = new DataLoader(toy(9), { batchSize: 2, shuffle: true, seed: 4 });
    const outer: number[] = [];
    let inner: number[] = [];
    for (const b of l.epoch(0)) {
      outer.push(...ids(b));
      inner = Array.from(l.epoch(1), ids).flat();
    }
    expect(outer).toEqual(epochIds(l, 0));
    expect(inner).toEqual(epochIds(l, 1));
    expect(outer).not.toEqual(inner);
  });

  test("breaking out of an async loop releases the pool for the next epoch", async () => {
    const l = new DataLoader(toy(20), { batchSize: 3 });
    for await (const b of l) {
      expect(b.x!.shape[0]).toBe(3);
      break;
    }
    const n = [];
    for await (const b of l) n.push(b.x!.shape[0]);
    expect(n).toEqual([3, 3, 3, 3, 3, 3, 2]);
  });
});
