// Data-parallel replicas, one replica's side: its own loaded module (wasm instance and memory) and its view of the
// gradient exchange. It runs the train block's grad on its shard into its slot, reduces the chunks it owns, and
// applies the reduced vector; replica 0 runs this in the coordinator's thread, the others in workers (handle()).

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { loadKilnModule, setCollective, type KilnModule } from "../wasm/module.js";
import type { Collective } from "../wasm/executor.js";
import type { DataParallelLayout, FunctionManifest } from "../manifest.js";
import { exchangeViews, reduceOwned, type Exchange } from "./allreduce.js";
import { CollectiveAborted, CollectiveTimeout, SharedCollective } from "./collective.js";
import type { FromReplica, InitMessage, ToReplica, WireError, WireTensor } from "./protocol.js";

/** The grad and apply functions of train block `train`, or a KilnError saying how to get them. */
export function parallelFunctions(fns: readonly FunctionManifest[], train: string): { grad: FunctionManifest; apply: FunctionManifest; layout: DataParallelLayout } {
  const grad = fns.find((f) => f.name === `${train}.grad` && f.parallel?.role === "grad");
  const apply = fns.find((f) => f.name === `${train}.apply` && f.parallel?.role === "apply");
  if (!grad || !apply) {
    throw new KilnError(`train block "${train}" has no data-parallel form (${train}.grad and ${train}.apply): compile with { dataParallel: true } (kiln train --replicas does)`, { code: "bad_option", fn: `${train}.step` });
  }
  return { grad, apply, layout: grad.parallel! };
}

export function toWire(t: Tensor): WireTensor {
  return { dtype: t.dtype, shape: [...t.shape], data: t.data };
}

export function fromWire(w: WireTensor): Tensor {
  return new Tensor(w.dtype, w.shape, w.data as never);
}

export function wireError(e: unknown): WireError {
  if (e instanceof KilnError) return { message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.fn ? { fn: e.fn } : {}), ...(e.tensor ? { tensor: e.tensor } : {}), ...(e instanceof CollectiveAborted ? { stoppedBy: e.by } : e instanceof CollectiveTimeout ? { stoppedBy: -1 } : {}) };
  return { message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

export class ReplicaCore {
  readonly rank: number;
  readonly module: KilnModule;
  readonly #train: string;
  readonly #ex: Exchange;
  readonly #layout: DataParallelLayout;
  readonly #statNames: string[];
  /** batch_norm's running statistics before the last grad, restored when another replica fails that step. */
  #stats: Tensor[] = [];
  /** sync_batch_norm's all_reduce across the replicas (undefined: one replica, or no all_reduce in grad). */
  readonly collective?: SharedCollective;
  /** grad also all-reduces the gradient buckets (as backward finishes them): no reduce round. */
  readonly overlap: boolean = false;
  /** Installed only while this replica's grad runs: a direct call of the module's functions is one replica's. */
  readonly #hook?: Collective;

  constructor(rank: number, module: KilnModule, train: string, exchange: SharedArrayBuffer | ArrayBuffer, replicas: number, collective?: InitMessage["collective"]) {
    const { grad, layout } = parallelFunctions(module.manifest.functions, train);
    this.rank = rank;
    this.module = module;
    this.#train = train;
    this.#layout = layout;
    this.#ex = exchangeViews(exchange, replicas, layout.total);
    this.#statNames = (grad.updates ?? []).map((u) => u.param);
    if (collective && replicas > 1) {
      const c = new SharedCollective(collective.buffer, replicas, rank, collective.timeoutMs, collective.overlap ? { ex: this.#ex, layout } : undefined);
      this.collective = c;
      this.overlap = collective.overlap;
      this.#hook = { allReduce: (d) => c.allReduce(d), ...(collective.overlap ? { bucketReady: (b: number, d: Float32Array) => c.bucketReady(b, d) } : {}) };
    }
  }

  static async load(m: InitMessage): Promise<ReplicaCore> {
    const mod = await loadKilnModule(m.manifest, m.wasm, { seed: m.seed });
    return new ReplicaCore(m.rank, mod, m.train, m.exchange, m.replicas, m.collective);
  }

  /** Forward and backward on this replica's shard; the gradient vector goes into its slot. Returns the loss. */
  grad(inputs: Record<string, Tensor>, checkNumerics: boolean): number {
    this.#stats = this.#statNames.map((n) => this.module.getParam(n));
    let out: Tensor[];
    try {
      this.collective?.begin();
      if (this.#hook) setCollective(this.module, this.#hook);
      try {
        out = this.module.call(`${this.#train}.grad`, inputs, { checkNumerics }) as Tensor[];
      } finally {
        if (this.#hook) setCollective(this.module, undefined);
      }
      // Every bucket went to the slot as it was final; the rest of this replica's chunks, then everyone's.
      if (this.overlap) this.collective!.finish();
    } catch (e) {
      // The others may be waiting for this replica in an all_reduce: stop them (no effect if one failed first).
      this.collective?.fail();
      // A checked call may stop after some updates were written: this replica's step never happened.
      this.abort();
      throw e;
    }
    const [loss, grads] = out;
    if (!this.overlap) this.#ex.slots[this.rank]!.set(grads!.data as Float32Array);
    return Number(loss!.data[0]);
  }

  /** Undoes the last grad's running-statistics updates (the step failed on another replica). */
  abort(): void {
    this.#statNames.forEach((n, i) => this.module.setParam(n, this.#stats[i]!));
    this.#stats = [];
  }

  reduce(): void {
    reduceOwned(this.#ex, this.#layout, this.#ex.slots.length, this.rank);
  }

  /** Every replica's chunks, here (the same sums in the same order as reduce() on every replica). */
  reduceAll(): void {
    for (let r = 0; r < this.#ex.slots.length; r++) reduceOwned(this.#ex, this.#layout, this.#ex.slots.length, r);
  }

  /** The optimizer on the reduced vector; false when the loss scaler skipped the step (an overflow somewhere). */
  apply(): boolean {
    const out = this.module.call(`${this.#train}.apply`, { grads: new Tensor("f32", [this.#layout.total], this.#ex.reduced) }) as Tensor;
    return out.data[0] !== 0;
  }

  setParams(values: Record<string, WireTensor>): void {
    for (const [name, v] of Object.entries(values)) this.module.setParam(name, fromWire(v));
  }

  read(names: readonly string[]): Record<string, WireTensor> {
    return Object.fromEntries(names.map((n) => [n, toWire(this.module.getParam(n))]));
  }

  /** One protocol message (after init); the reply to send back. */
  handle(m: Exclude<ToReplica, InitMessage>): FromReplica {
    try {
      switch (m.kind) {
        case "params": this.setParams(m.values); return { kind: "done", id: m.id };
        case "grad": {
          const inputs = Object.fromEntries(Object.entries(m.inputs).map(([k, v]) => [k, fromWire(v)]));
          return { kind: "done", id: m.id, loss: this.grad(inputs, m.checkNumerics) };
        }
        case "reduce": this.reduce(); return { kind: "done", id: m.id };
        case "apply": return { kind: "done", id: m.id, applied: this.apply() };
        case "abort": this.abort(); return { kind: "done", id: m.id };
        case "read": return { kind: "done", id: m.id, values: this.read(m.names) };
      }
    } catch (e) {
      return { kind: "failed", id: m.id, error: wireError(e) };
    }
  }
}
