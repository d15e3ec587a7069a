// The pieces of data parallelism that need no workers: the distributed sampler's shards (disjoint, covering the
// epoch, a function of seed and epoch, the uneven-batch rule), the batch split, the gradient vector's layout and
// buckets, and the reduce-scatter's chunks (every element reduced exactly once, in replica order).
import { describe, expect, it } from "vitest";
import { RandomSampler, SequentialSampler } from "../../runtime/data/sampler.js";
import { DistributedSampler } from "../../runtime/parallel/sampler.js";
import { exchangeViews, ownedRanges, reduceOwned, splitBatch } from "../../runtime/parallel/allreduce.js";
import { gradientLayout } from "../../compiler/lower/train-parallel.js";
import { KilnError } from "../../runtime/errors.js";

const shards = (base: RandomSampler | SequentialSampler, replicas: number, batchSize: number, epoch: number, dropLast = false) =>
  Array.from({ length: replicas }, (_, rank) => new DistributedSampler(base, { replicas, rank, batchSize, dropLast }));

describe("DistributedSampler", () => {
  it("gives each replica a disjoint share; side by side in rank order they are the global batches", () => {
    const base = new RandomSampler(23, { seed: 5 });
    const order = Array.from(base.epochIndices(2));
    const samplers = shards(base, 3, 6, 2);
    const per = samplers.map((s) => [...s.epochBatches(2)].map((b) => Array.from(b)));
    // 23 = 3 batches of 6 (2, 2, 2 each) + a last batch of 5 (2, 2, 1).
    expect(per.map((p) => p.map((b) => b.length))).toEqual([[2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 1]]);
    for (let k = 0; k < 4; k++) expect(per.flatMap((p) => p[k]!)).toEqual(order.slice(6 * k, 6 * k + 6));
    const all = samplers.flatMap((s) => Array.from(s.epochIndices(2)));
    expect(all.length).toBe(23);
    expect(new Set(all).size).toBe(23);
    expect(samplers.map((s) => s.length)).toEqual([8, 8, 7]);
  });

  it("is a function of the seed and the epoch", () => {
    const a = shards(new RandomSampler(40, { seed: 9 }), 2, 8, 0)[1]!;
    const b = shards(new RandomSampler(40, { seed: 9 }), 2, 8, 0)[1]!;
    expect(Array.from(a.epochIndices(3))).toEqual(Array.from(b.epochIndices(3)));
    expect(Array.from(a.epochIndices(3))).not.toEqual(Array.from(a.epochIndices(4)));
    const c = shards(new RandomSampler(40, { seed: 10 }), 2, 8, 0)[1]!;
    expect(Array.from(c.epochIndices(3))).not.toEqual(Array.from(a.epochIndices(3)));
  });

  it("drops a last partial global batch with dropLast", () => {
    const s = shards(new SequentialSampler(23), 3, 6, 0, true);
    expect(s.map((x) => Array.from(x.epochIndices(0)))).toEqual([[0, 1, 6, 7, 12, 13], [2, 3, 8, 9, 14, 15], [4, 5, 10, 11, 16, 17]]);
  });

  it("rejects a bad rank, replica count or batch size", () => {
    const base = new SequentialSampler(10);
    const bad = (o: object) => expect(() => new DistributedSampler(base, { replicas: 2, rank: 0, batchSize: 4, ...o })).toThrow(KilnError);
    bad({ rank: 2 });
    bad({ rank: -1 });
    bad({ replicas: 0 });
    bad({ replicas: 2.5 });
    bad({ batchSize: 1 });
    expect(() => new DistributedSampler(base, { replicas: 3, rank: 0, batchSize: 2 })).toThrow(/batchSize must be an integer >= replicas \(3\), got 2/);
  });
});

describe("the batch split and the gradient exchange", () => {
  it("splits a batch contiguously, the first B % N replicas one larger", () => {
    expect(splitBatch(10, 3)).toEqual([[0, 4], [4, 3], [7, 3]]);
    expect(splitBatch(8, 2)).toEqual([[0, 4], [4, 4]]);
  });

  it("lays gradients out in reverse declaration order, in buckets at tensor boundaries", () => {
    const t = (n: number) => ({ dtype: "f32" as const, shape: [n] });
    const l = gradientLayout("T", [{ name: "w1", type: t(100) }, { name: "b1", type: t(30) }, { name: "w2", type: t(50) }, { name: "b2", type: t(10) }], "grad", 64);
    expect(l.gradients).toEqual([{ param: "b2", offset: 0, numel: 10 }, { param: "w2", offset: 10, numel: 50 }, { param: "b1", offset: 60, numel: 30 }, { param: "w1", offset: 90, numel: 100 }]);
    expect(l.buckets).toEqual([{ offset: 0, numel: 60 }, { offset: 60, numel: 30 }, { offset: 90, numel: 100 }]);
    expect(l.total).toBe(190);
  });

  it("reduces every element exactly once, summing the slots in replica order", () => {
    const layout = { buckets: [{ offset: 0, numel: 37 }, { offset: 37, numel: 5 }, { offset: 42, numel: 1 }] };
    for (const n of [1, 2, 3, 4]) {
      const count = new Array(43).fill(0);
      for (let r = 0; r < n; r++) for (const [a, b] of ownedRanges(layout, n, r)) for (let i = a; i < b; i++) count[i]++;
      expect(count.every((c) => c === 1), `${n} replicas`).toBe(true);
    }
    // 1 + 2^-24 - 1 in f32 depends on the order: replica order rounds 1 + 2^-24 to 1 and gives 0; (2^-24 - 1) + 1
    // would give 2^-24.
    const ex = exchangeViews(new ArrayBuffer(4 * 4 * 43), 3, 43);
    ex.slots[0]!.fill(1);
    ex.slots[1]!.fill(2 ** -24);
    ex.slots[2]!.fill(-1);
    for (let r = 0; r < 3; r++) reduceOwned(ex, layout, 3, r);
    expect(Array.from(ex.reduced).every((v) => v === 0)).toBe(true);
  });
});
