// Data-parallel replicas, the distributed sampler: replica `rank`'s part of every epoch, cut from one global order
// (any Sampler: RandomSampler gives a function of seed and epoch). Each global batch of `batchSize` consecutive
// indices of the order is split with splitBatch: contiguous shares in replica order, the first `size % replicas`
// replicas one index more. So the shards are disjoint, together they are the epoch, and replicas' k-th batches
// put side by side in rank order are exactly the k-th batch one replica would train on with batch `batchSize`.
// A last global batch smaller than `batchSize` is dropped with `dropLast`, else split by the same rule (replicas
// past its size get nothing from it, and the trainer refuses a global batch smaller than the replica count).

import { KilnError } from "../errors.js";
import type { Sampler } from "../data/sampler.js";
import { checkReplicas, splitBatch } from "./allreduce.js";

export interface DistributedSamplerOptions {
  replicas: number;
  /** This replica's index in [0, replicas). */
  rank: number;
  /** The global batch (every replica's samples of one step together). */
  batchSize: number;
  /** Drop a last global batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

export class DistributedSampler implements Sampler {
  readonly base: Sampler;
  readonly replicas: number;
  readonly rank: number;
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly length: number;
  readonly #out: Int32Array;

  constructor(base: Sampler, opts: DistributedSamplerOptions) {
    this.replicas = checkReplicas(opts.replicas, "DistributedSampler: replicas");
    if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= this.replicas) {
      throw new KilnError(`DistributedSampler: rank must be an integer in [0, ${this.replicas}), got ${opts.rank}`, { code: "bad_option" });
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < this.replicas) {
      throw new KilnError(`DistributedSampler: batchSize must be an integer >= replicas (${this.replicas}), got ${opts.batchSize}`, { code: "bad_option" });
    }
    this.base = base;
    this.rank = opts.rank;
    this.batchSize = opts.batchSize;
    this.dropLast = opts.dropLast ?? false;
    let n = 0;
    for (const [, size] of this.#batches(base.length)) n += size;
    this.length = n;
    this.#out = new Int32Array(n);
  }

  /** [start, size] in the epoch order of this replica's share of each global batch. */
  *#batches(total: number): Generator<[number, number]> {
    for (let b = 0; b < total; b += this.batchSize) {
      const size = Math.min(this.batchSize, total - b);
      if (size < this.batchSize && this.dropLast) return;
      const [start, n] = splitBatch(size, this.replicas)[this.rank]!;
      yield [b + start, n];
    }
  }

  epochIndices(epoch: number): ArrayLike<number> {
    const order = this.base.epochIndices(epoch);
    let k = 0;
    for (const [start, n] of this.#batches(order.length)) for (let i = 0; i < n; i++) this.#out[k++] = order[start + i]!;
    return this.#out;
  }

  /** This replica's share of each global batch of an epoch, batch by batch (what its loader would yield). */
  *epochBatches(epoch: number): Generator<Int32Array> {
    const order = this.base.epochIndices(epoch);
    for (const [start, n] of this.#batches(order.length)) yield Int32Array.from({ length: n }, (_, i) => order[start + i]!);
  }
}
