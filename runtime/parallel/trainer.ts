// Data-parallel replicas, the coordinator: N replicas of a module compiled with { dataParallel: true }, replica 0
// in this thread (its module is the one users read, evaluate and checkpoint), the others in workers, each with its
// own wasm instance. A step splits the global batch (splitBatch), runs every replica's grad, all-reduces the
// gradient vectors over shared memory in a fixed order, then runs the same apply everywhere: the parameters and
// the (replicated) optimizer state stay bit-identical on every replica.

import { KilnError, type KilnErrorCode } from "../errors.js";
import { Tensor } from "../tensor.js";
import { loadKilnModule, type KilnModule } from "../wasm/module.js";
import { sharedMemorySupported } from "../wasm/threads.js";
import { evalDimPoly, HOST_ALL_REDUCE, HOST_BUCKET, type FunctionManifest, type Manifest } from "../manifest.js";
import { deriveSeed } from "../data/random.js";
import { readScaler, scaleCollapsed } from "../train/loss-scale.js";
import { checkpointParams } from "../train/checkpoint.js";
import { checkReplicas, exchangeBytes, splitBatch } from "./allreduce.js";

export { checkReplicas };
import { fromWire, parallelFunctions, ReplicaCore, toWire, wireError } from "./replica.js";
import { collectiveBytes } from "./collective.js";
import type { FromReplica, ReplicaTransport, ToReplica, WireError, WireTensor } from "./protocol.js";
import { defaultWorkerUrl, spawnWorkerTransport } from "./transport.js";

export interface DataParallelOptions {
  /** Number of replicas: an integer >= 1. */
  replicas: number;
  /** Seed of replica 0's params (the others get them by broadcast) and of the dropout streams (default 0). */
  seed?: number;
  /** The train block (default: the only one compiled in data-parallel form). */
  train?: string;
  /** replica-worker.js (default: the one beside this file). */
  workerUrl?: string | URL;
  /** Starts the replicas other than 0 (default: a worker each); for transports other than workers. */
  spawn?: (rank: number) => Promise<ReplicaTransport>;
  /**
   * Gradient vectors of at least this many elements are reduce-scattered by all replicas (default 2^18); shorter
   * ones are summed by replica 0 alone, which costs less than the message round the scatter needs. Either way
   * the sums are the same, in the same order: the results are bit-identical.
   */
  scatterFrom?: number;
  /**
   * How long a replica waits in an all_reduce (sync_batch_norm) for the others before it gives up and fails the
   * step (default 60000 ms): a replica that fails raises a shared flag at once, so this only bounds the wait for a
   * replica that died without a word (a killed worker). Replica 0 runs in the caller's thread and blocks there.
   */
  collectiveTimeoutMs?: number;
  /**
   * Reduce the gradient buckets while backward runs, inside grad: each replica posts a bucket as soon as it is
   * final and sums its chunk of every bucket all have posted, so a step is two message rounds (grad, apply). false:
   * a separate reduce round after every grad (the sums, and so the results, are the same bits). Default: true when
   * the gradients make more than one bucket. With one bucket there is nothing to overlap (it is final when backward
   * ends), and the in-grad exchange measured slower than the separate round (MNIST CNN, one bucket: 1.72x vs 1.82x
   * one replica at batch 64; the MLP, two buckets, 0.49x vs 0.45x: docs/performance.md).
   */
  overlap?: boolean;
}

/** 2^18 elements: about 0.1 ms of summing saved per replica against a message round of about that much. */
const SCATTER_FROM = 1 << 18;

/**
 * Elements per all_reduce round: the largest all_reduce of grad when its size is known (sync_batch_norm's per-channel
 * statistics plus their count), else 4096; a longer one takes several rounds.
 */
function collectiveCapacity(grad: FunctionManifest): number | undefined {
  let cap: number | undefined;
  for (const st of grad.steps) {
    if (st.kernel !== HOST_ALL_REDUCE) continue;
    let n = 4096;
    try {
      n = evalDimPoly(st.ints[0]!, {});
    } catch {
      // a symbolic size: rounds of the default
    }
    cap = Math.max(cap ?? 1, Math.min(n, 1 << 16));
  }
  return cap;
}

export interface StepResult {
  /** The loss over the global batch (each replica's mean loss weighted by its share). */
  loss: number;
  /** False when the loss scaler skipped the step because a gradient overflowed on some replica. */
  applied: boolean;
}

/** Milliseconds the coordinator spent in each phase, summed over steps (for benchmarks). */
export interface PhaseTimes {
  grad: number;
  reduce: number;
  apply: number;
  steps: number;
}

/** A replica in a worker, seen through its transport: requests are answered in order, failures reject them all. */
class Remote {
  readonly rank: number;
  readonly #t: ReplicaTransport;
  readonly #pending = new Map<number, { resolve: (m: FromReplica) => void; reject: (e: Error) => void }>();
  dead?: string;

  constructor(rank: number, t: ReplicaTransport) {
    this.rank = rank;
    this.#t = t;
    t.listen(
      (m) => {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        p?.resolve(m);
      },
      (why) => {
        this.dead = why;
        for (const p of this.#pending.values()) p.reject(new Error(why));
        this.#pending.clear();
      },
    );
  }

  request(m: ToReplica): Promise<FromReplica> {
    if (this.dead) return Promise.reject(new Error(this.dead));
    const id = m.kind === "init" ? 0 : m.id;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#t.post(m);
    });
  }

  close(): void {
    this.#t.close();
  }
}

function shardOf(t: Tensor, start: number, size: number): WireTensor {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { dtype: t.dtype, shape: [size, ...t.shape.slice(1)], data: t.data.slice(start * per, (start + size) * per) };
}

export class DataParallelTrainer {
  readonly replicas: number;
  /** Replica 0's module: read params, evaluate, save and load checkpoints here (then call broadcast()). */
  readonly module: KilnModule;
  readonly train: string;
  /** Why fewer replicas run than were asked for (no shared memory), else undefined. */
  readonly fallback?: string;
  readonly times: PhaseTimes = { grad: 0, reduce: 0, apply: 0, steps: 0 };
  readonly #core: ReplicaCore;
  readonly #remotes: Remote[];
  readonly #grad: FunctionManifest;
  readonly #scatter: boolean;
  #id = 0;
  #busy = false;
  #broken?: string;

  private constructor(core: ReplicaCore, remotes: Remote[], train: string, grad: FunctionManifest, scatter: boolean, fallback?: string) {
    this.replicas = remotes.length + 1;
    this.module = core.module;
    this.train = train;
    this.#core = core;
    this.#remotes = remotes;
    this.#grad = grad;
    this.#scatter = scatter;
    if (fallback) this.fallback = fallback;
  }

  /** Starts the replicas and broadcasts replica 0's params (and optimizer state) to them. */
  static async create(manifest: Manifest, wasm: Uint8Array, opts: DataParallelOptions): Promise<DataParallelTrainer> {
    if (opts === null || typeof opts !== "object") throw new KilnError("data-parallel options must be an object, e.g. { replicas: 2 }", { code: "bad_option" });
    let replicas = checkReplicas(opts.replicas);
    const seed = opts.seed ?? 0;
    const train = opts.train ?? pickTrain(manifest);
    const { grad, layout } = parallelFunctions(manifest.functions, train);
    let fallback: string | undefined;
    if (replicas > 1 && !opts.spawn && !sharedMemorySupported()) {
      fallback = `${replicas} replicas need shared memory (SharedArrayBuffer and workers; in a browser a cross-origin-isolated page), which this engine does not offer: training on one replica`;
      replicas = 1;
    }
    const buffer = replicas > 1 ? new SharedArrayBuffer(exchangeBytes(replicas, layout.total)) : new ArrayBuffer(exchangeBytes(1, layout.total));
    const timeoutMs = opts.collectiveTimeoutMs ?? 60_000;
    if (!(timeoutMs > 0)) throw new KilnError(`collectiveTimeoutMs must be a number > 0, got ${String(timeoutMs)}`, { code: "bad_option" });
    const cap = collectiveCapacity(grad);
    const overlap = (opts.overlap ?? layout.buckets.length > 1) && grad.steps.some((s) => s.kernel === HOST_BUCKET);
    const collective = replicas > 1 && (cap !== undefined || overlap)
      ? { buffer: new SharedArrayBuffer(collectiveBytes(replicas, cap ?? 1, overlap ? layout.buckets.length : 0)), timeoutMs, overlap }
      : undefined;
    const mod = await loadKilnModule(manifest, wasm, { seed });
    const core = new ReplicaCore(0, mod, train, buffer, replicas, collective);
    const remotes: Remote[] = [];
    try {
      const url = opts.workerUrl === undefined ? defaultWorkerUrl() : new URL(String(opts.workerUrl));
      for (let rank = 1; rank < replicas; rank++) {
        const t = opts.spawn ? await opts.spawn(rank) : await spawnWorkerTransport(url);
        remotes.push(new Remote(rank, t));
      }
      // Replica r > 0 draws its own dropout masks; its initial params are replaced by replica 0's below.
      const started = await Promise.allSettled(remotes.map((r) =>
        r.request({ kind: "init", rank: r.rank, replicas, manifest, wasm, seed: deriveSeed(seed, r.rank), train, exchange: buffer as SharedArrayBuffer, ...(collective ? { collective } : {}) })));
      started.forEach((s, i) => {
        const rank = i + 1;
        if (s.status === "rejected") throw new KilnError(`data-parallel replica ${rank} failed to start: ${(s.reason as Error).message}`, { code: "load_failed", replica: rank });
        if (s.value.kind === "failed") throw new KilnError(`data-parallel replica ${rank} failed to start: ${s.value.error.message}`, { code: "load_failed", replica: rank });
      });
    } catch (e) {
      for (const r of remotes) r.close();
      mod.dispose();
      throw e instanceof KilnError ? e : new KilnError(`could not start ${replicas - 1} replica worker(s): ${(e as Error).message}`, { code: "load_failed", cause: e });
    }
    const scatterFrom = opts.scatterFrom ?? SCATTER_FROM;
    if (!(scatterFrom >= 0)) throw new KilnError(`scatterFrom must be a number >= 0, got ${String(scatterFrom)}`, { code: "bad_option" });
    const trainer = new DataParallelTrainer(core, remotes, train, grad, layout.total >= scatterFrom, fallback);
    await trainer.broadcast();
    return trainer;
  }

  /**
   * Copies replica 0's params and optimizer state to every other replica: after create(), and after anything
   * changed replica 0's module (loadCheckpoint, setParam). The 16-bit copies are derived on each replica.
   */
  async broadcast(): Promise<void> {
    if (!this.#remotes.length) return;
    this.#live("broadcast");
    const values: Record<string, WireTensor> = {};
    for (const name of checkpointParams(this.module)) values[name] = toWire(this.module.getParam(name));
    const id = ++this.#id;
    await this.#all("broadcast", this.#remotes.map((r) => r.request({ kind: "params", id, values })), () => undefined, true);
  }

  /**
   * One training step on a global batch: every input whose first dim is the batch dim is split across replicas
   * (splitBatch: contiguous shares, the first `B % replicas` one sample larger), others go to every replica. A
   * replica that fails stops the step on all of them before any optimizer update, with a KilnError naming it.
   */
  async step(inputs: Record<string, Tensor>, opts: { checkNumerics?: boolean } = {}): Promise<StepResult> {
    this.#live("step");
    if (this.#busy) throw new KilnError(`data-parallel step: the previous step has not finished (await each step)`, { code: "bad_option" });
    this.#busy = true;
    try {
      return await this.#step(inputs, opts.checkNumerics ?? false);
    } finally {
      this.#busy = false;
    }
  }

  async #step(inputs: Record<string, Tensor>, checkNumerics: boolean): Promise<StepResult> {
    const n = this.replicas;
    const shards = this.#split(inputs);
    const weights = shards.sizes.map((s) => s / shards.batch);
    const scaler = readScaler(this.module, this.train);
    const t0 = performance.now();
    // No replica is inside grad now: a failed step's abort flag and half-counted barrier are cleared.
    this.#core.collective?.reset();
    const id = ++this.#id;
    const asked = this.#remotes.map((r) => r.request({ kind: "grad", id, inputs: shards.of(r.rank), checkNumerics }));
    const losses: number[] = new Array(n).fill(0);
    let local: WireError | undefined;
    // A replica known dead already would make this thread wait for its buckets until the timeout: stop them all now.
    const gone = this.#remotes.find((r) => r.dead);
    if (gone) {
      this.#core.collective?.fail();
      local = { message: `replica ${gone.rank} died before this step`, stoppedBy: gone.rank };
    } else {
      try {
        losses[0] = this.#core.grad(Object.fromEntries(Object.entries(shards.of(0)).map(([k, v]) => [k, fromWire(v)])), checkNumerics);
      } catch (e) {
        local = e instanceof KilnError ? wireError(e) : { message: String((e as Error)?.message ?? e) };
        delete local.fn;
      }
    }
    const answers = await Promise.allSettled(asked);
    const failures: [number, WireError][] = local ? [[0, local]] : [];
    answers.forEach((a, i) => {
      if (a.status === "rejected") failures.push([i + 1, { message: `the replica died: ${(a.reason as Error).message}` }]);
      else if (a.value.kind === "failed") failures.push([i + 1, a.value.error]);
      else losses[i + 1] = (a.value as { loss?: number }).loss ?? NaN;
    });
    if (failures.length) {
      // No replica has reduced or applied anything: undo the running statistics the others updated.
      if (!local) this.#core.abort(); // a replica that failed restored its own
      const ok = this.#remotes.filter((r, i) => answers[i]!.status === "fulfilled" && (answers[i] as PromiseFulfilledResult<FromReplica>).value.kind === "done");
      const abortId = ++this.#id;
      await Promise.allSettled(ok.map((r) => r.request({ kind: "abort", id: abortId })));
      const dead = failures.find(([r]) => this.#remotes[r - 1]?.dead);
      if (dead) this.#broken = `replica ${dead[0]} died (${this.#remotes[dead[0] - 1]!.dead})`;
      // A replica stopped in an all_reduce because another failed (or waited in vain for one that died) is not the
      // cause: report the one that failed, then one that died, then the waits that timed out.
      const priority = ([, e]: [number, WireError]) => (e.stoppedBy === undefined ? 0 : e.stoppedBy === -1 ? 2 : 1);
      failures.sort((a, b) => priority(a) - priority(b) || a[0] - b[0]);
      const [rank, err] = failures[0]!;
      // Replicas that only stopped because of it are not more failures.
      const others = failures.filter(([r, e]) => r !== rank && e.stoppedBy === undefined).length;
      const more = others > 0 ? ` (and ${others} more replica${others > 1 ? "s" : ""})` : "";
      throw new KilnError(`data-parallel step: replica ${rank} of ${n} failed${more}; no replica updated its params: ${err.message}`, {
        code: (err.code as KilnErrorCode | undefined) ?? "replica_failed", replica: rank, fn: err.fn ?? this.#grad.name, ...(err.tensor ? { tensor: err.tensor } : {}),
      });
    }
    const t1 = performance.now();
    if (this.#core.overlap) {
      // grad has reduced the buckets already, on every replica (overlapped with backward).
    } else if (this.#scatter && this.#remotes.length) {
      const rid = ++this.#id;
      const reducing = this.#remotes.map((r) => r.request({ kind: "reduce", id: rid }));
      this.#core.reduce();
      await this.#all("all-reduce", reducing, () => undefined);
    } else this.#core.reduceAll();
    const t2 = performance.now();
    const aid = ++this.#id;
    const applying = this.#remotes.map((r) => r.request({ kind: "apply", id: aid }));
    const applied = this.#core.apply();
    await this.#all("apply", applying, (m, rank) => {
      // The same bits in, the same kernels: a replica that decided otherwise has diverged.
      if (m.applied !== applied) this.#broken = `replica ${rank} ${m.applied ? "took" : "skipped"} a step that replica 0 ${applied ? "took" : "skipped"}`;
    });
    const t3 = performance.now();
    Object.assign(this.times, { grad: this.times.grad + (t1 - t0), reduce: this.times.reduce + (t2 - t1), apply: this.times.apply + (t3 - t2), steps: this.times.steps + 1 });
    if (this.#broken) throw new KilnError(`data-parallel step: ${this.#broken}`, { code: "replica_failed" });
    let loss = 0;
    losses.forEach((l, r) => (loss += weights[r]! * l));
    const after = readScaler(this.module, this.train);
    if (scaler && after && !applied && scaleCollapsed(scaler, after)) {
      const what = after.skipped !== undefined ? `the static loss scale ${after.scale} overflowed ${after.skipped} steps in a row` : `the loss scale collapsed to its minimum ${after.min}`;
      throw new KilnError(`data-parallel step: ${what} (every step overflows on some replica); run with checkNumerics to find the tensor`, { code: "loss_scale_collapsed", fn: `${this.train}.apply` });
    }
    return { loss, applied };
  }

  /** Waits for every replica's answer; a failure here (after the grads) leaves the replicas out of step. */
  async #all(phase: string, asked: Promise<FromReplica>[], each: (m: Extract<FromReplica, { kind: "done" }>, rank: number) => void, recoverable = false): Promise<void> {
    const answers = await Promise.allSettled(asked);
    answers.forEach((a, i) => {
      const rank = i + 1;
      const why = a.status === "rejected" ? `died: ${(a.reason as Error).message}` : a.value.kind === "failed" ? `failed: ${a.value.error.message}` : undefined;
      if (why === undefined) return each(a.status === "fulfilled" ? (a.value as Extract<FromReplica, { kind: "done" }>) : (undefined as never), rank);
      if (!recoverable) this.#broken = `replica ${rank} ${why} during the ${phase}, so the replicas may no longer agree: dispose this trainer and resume from a checkpoint`;
      throw new KilnError(`data-parallel ${phase}: replica ${rank} ${why}`, { code: "replica_failed", replica: rank });
    });
  }

  #split(inputs: Record<string, Tensor>): { batch: number; sizes: number[]; of: (rank: number) => Record<string, WireTensor> } {
    if (inputs === null || typeof inputs !== "object") throw new KilnError(`${this.train} step: inputs must be an object of Tensors`, { code: "bad_option" });
    let batch: number | undefined;
    const sharded = new Set<string>();
    const share = this.#grad.parallel!.share;
    const signature = this.#grad.inputs.filter((sig) => sig.name !== share);
    for (const sig of signature) {
      const t = inputs[sig.name];
      if (!(t instanceof Tensor)) {
        throw new KilnError(`data-parallel step: input "${sig.name}" must be a Tensor (its shape says how to split the batch), got ${t === undefined ? "nothing" : typeof t}`, { code: t === undefined ? "missing_input" : "input_dtype", tensor: sig.name, fn: this.#grad.name });
      }
      if (typeof sig.shape[0] !== "string" || t.rank === 0) continue;
      if (batch !== undefined && t.shape[0] !== batch) {
        throw new KilnError(`data-parallel step: input "${sig.name}" has ${t.shape[0]} samples but the others have ${batch}`, { code: "dim_conflict", tensor: sig.name, fn: this.#grad.name });
      }
      batch = t.shape[0];
      sharded.add(sig.name);
    }
    if (batch === undefined) throw new KilnError(`data-parallel step: ${this.#grad.name} has no batch input to split`, { code: "bad_option", fn: this.#grad.name });
    if (batch < this.replicas) {
      throw new KilnError(`data-parallel step: the global batch of ${batch} is smaller than the ${this.replicas} replicas (each replica needs at least one sample)`, { code: "bad_option", expected: `>= ${this.replicas} samples`, actual: `${batch}` });
    }
    const parts = splitBatch(batch, this.replicas);
    return {
      batch,
      sizes: parts.map((p) => p[1]),
      of: (rank) => ({
        ...Object.fromEntries(signature.map((sig) => {
          const t = inputs[sig.name]!;
          return [sig.name, sharded.has(sig.name) ? shardOf(t, parts[rank]![0], parts[rank]![1]) : toWire(t)];
        })),
        ...(share ? { [share]: { dtype: "f32" as const, shape: [], data: new Float32Array([parts[rank]![1] / batch]) } } : {}),
      }),
    };
  }

  /** Replica `rank`'s current values of `names` (default: every checkpointed param), to check they agree. */
  async replicaParams(rank: number, names: string[] = checkpointParams(this.module)): Promise<Record<string, Tensor>> {
    this.#live("replicaParams");
    if (rank === 0) return Object.fromEntries(names.map((n) => [n, this.module.getParam(n)]));
    const r = this.#remotes[rank - 1];
    if (!r) throw new KilnError(`replicaParams: no replica ${rank} (there are ${this.replicas})`, { code: "bad_option" });
    const m = await r.request({ kind: "read", id: ++this.#id, names });
    if (m.kind === "failed") throw new KilnError(`replica ${rank}: ${m.error.message}`, { code: "replica_failed", replica: rank });
    return Object.fromEntries(Object.entries((m as { values: Record<string, WireTensor> }).values).map(([k, v]) => [k, fromWire(v)]));
  }

  #live(what: string): void {
    if (this.#broken) throw new KilnError(`data-parallel ${what}: the trainer is unusable: ${this.#broken}`, { code: "replica_failed" });
  }

  /** Stops the workers; replica 0's module stays usable (to evaluate or save what was trained), the trainer not. */
  stopWorkers(): void {
    for (const r of this.#remotes) r.close();
    this.#broken ??= "its workers were stopped";
  }

  /** Stops the workers and drops replica 0's module. */
  dispose(): void {
    for (const r of this.#remotes) r.close();
    this.module.dispose();
    this.#broken ??= "it has been disposed";
  }
}

function pickTrain(m: Manifest): string {
  const trains = m.functions.filter((f) => f.parallel?.role === "grad").map((f) => f.parallel!.train);
  if (trains.length === 1) return trains[0]!;
  if (!trains.length) throw new KilnError(`this module has no train block compiled in data-parallel form: compile with { dataParallel: true } (kiln train --replicas does)`, { code: "bad_option" });
  throw new KilnError(`this module has several train blocks in data-parallel form (${trains.join(", ")}): pass { train }`, { code: "bad_option" });
}
