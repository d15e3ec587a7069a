// `kiln train`: compiles a file's train block, then calls its step function batch after batch and reports
// progress. Data: `synthetic` (one fixed seeded batch for --steps steps, so the loss must fall as the model fits
// it), `mnist` (the bundled images, 2000 held out) or a file of the user's (CSV, NPY, IDX: datafile.ts, a share
// held out): --epochs with a progress bar per epoch, then the held-out accuracy. Optimizer state lives in the runtime between steps; --save writes
// the trained weights as safetensors, --checkpoint the whole training state (weights, optimizer state, loss scaler)
// that --resume starts from, and --plot an SVG of loss and accuracy. --replicas N trains N data-parallel replicas
// (runtime/parallel/) on shares of each batch; checkpoints hold replica 0's state and resume on any replica count.

import { mkdir } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { ioType, type Graph, type IRModule } from "../ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import type { Manifest } from "../../runtime/manifest.js";
import type { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { saveSafetensors } from "../../runtime/safetensors.js";
import { ProgressBar } from "../../runtime/train/progress.js";
import { trainingPlotSvg, writeSvg } from "../../runtime/train/plot.js";
import { readScaler, trainStepWithScaler } from "../../runtime/train/loss-scale.js";
import { loadCheckpoint, saveCheckpoint } from "../../runtime/train/checkpoint.js";
import type { DataLoader } from "../../runtime/data/index.js";
import { DataParallelTrainer } from "../../runtime/parallel/trainer.js";
import { asModelInput, imageAndLabelInputs, mnistDir, mnistLoaders, syntheticBatch } from "./data.js";
import { dataFormat, fileLoaders, type DataFormat } from "./datafile.js";
import { closest } from "../suggest.js";
import { checkFile, flag, frontend, intOpt, PRECISION_OPTION, precisionOpt, readSource, SEED_OPTION, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

import { trainText } from "./train-text.js";

export interface TrainOptions {
  train?: string;
  /** "synthetic" (default), "mnist", "text" (a language model on `textFile`, train-text.ts), or the path of a .csv/.npy/.idx file. */
  data?: string;
  textFile?: string;
  /** Characters generated after text training (default 300). */
  sampleChars?: number;
  dataDir?: string;
  /** --data FILE (.npy/.idx): the labels file. */
  labels?: string;
  /** --data FILE.csv: the label column (name or 0-based index). */
  labelColumn?: string;
  /** --data FILE: the fraction of rows held out (default 0.2). */
  valSplit?: number;
  steps: number;
  epochs?: number;
  batch: number;
  seed: number;
  classes: number;
  checkNumerics: boolean;
  save?: string;
  /** Writes the whole training state (weights, optimizer state, loss scaler) here at the end. */
  checkpoint?: string;
  /** Starts from a checkpoint written by --checkpoint (or saveCheckpoint) instead of fresh params. */
  resume?: string;
  /** Starts from these weights (kiln import's, kiln train --save's) with fresh optimizer state. */
  weights?: string;
  plot?: string;
  /** Random rotation and crop of the training images (mnist). */
  augment?: boolean;
  /**
   * Data-parallel replicas (default 1): the IR must hold the train block's data-parallel form (compileToIR with
   * dataParallel). "auto" picks replicas or intra-op threads by pickParallelism.
   */
  replicas?: number | "auto";
  /** Where the progress bar draws (default: stderr). */
  progress?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** The module already built (e.g. from the compile cache); built from the IR otherwise. */
  build?: { manifest: Manifest; wasm?: Uint8Array };
}

export interface TrainResult {
  /** Loss per step (synthetic) or mean loss per epoch (mnist, a file). */
  losses: number[];
  /** Held-out accuracy after each epoch (mnist, a file). */
  accuracy: number[];
  /** The module's wasm memory size after each epoch (mnist, a file): flat after the first, no growth per batch. */
  memoryBytes: number[];
  /** Held-out loss after each evaluation interval (text only; `losses` then holds the train loss per interval). */
  heldOut?: number[];
  /** Text the model generated (text only). */
  sample?: string;
  module: KilnModule;
}

function stepOf(ir: IRModule, train?: string): Graph {
  const steps = ir.functions.filter((g) => g.updates?.length && !g.parallel);
  if (steps.length === 0) throw new KilnError(`kiln: ${ir.source} has no train block; add one, e.g. train Step { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
  const g = train ? steps.find((s) => s.name === `${train}.step`) : steps[0];
  if (!g) throw new KilnError(`kiln: ${ir.source} has no train block '${train}' (it has: ${steps.map((s) => s.name.replace(/\.step$/, "")).join(", ")})`);
  return g;
}

/** ", mixed precision f16 (f32 master weights, dynamic loss scale 65536)" when compiled with --precision mixed-*. */
function precisionNote(ir: IRModule): string {
  if (!ir.precision) return "";
  const scale = ir.params.find((p) => p.name.endsWith(".scaler.scale") && p.init.kind === "constant");
  const init = scale?.init.kind === "constant" ? `, dynamic loss scale from ${scale.init.value}` : "";
  return `, mixed precision ${ir.precision} (f32 master weights${init})`;
}

/** The model a train step updates (the prefix of its first weight update). */
function modelOf(g: Graph, ir: IRModule): string {
  const weights = new Set(ir.params.filter((p) => !p.role).map((p) => p.name));
  const first = g.updates!.find((u) => weights.has(u.param))!;
  return first.param.slice(0, first.param.indexOf("."));
}

/** One training step on a global batch: the loss. */
type StepFn = (inputs: Record<string, Tensor>, step: number) => Promise<number>;

function stepError(e: unknown, step: number): unknown {
  if (e instanceof KilnError && e.code === "non_finite") return new KilnError(`kiln: training step ${step}: ${e.message}`, { code: "non_finite", fn: e.fn, tensor: e.tensor, ...(e.replica !== undefined ? { replica: e.replica } : {}) });
  return e;
}

function singleStep(mod: KilnModule, train: string, check: boolean): StepFn {
  return async (inputs, step) => {
    try {
      return trainStepWithScaler(mod, train, inputs, step, check);
    } catch (e) {
      throw stepError(e, step);
    }
  };
}

function replicatedStep(t: DataParallelTrainer, check: boolean): StepFn {
  const scaled = readScaler(t.module, t.train) !== undefined;
  return async (inputs, step) => {
    try {
      return (await t.step(inputs, { checkNumerics: check })).loss;
    } catch (e) {
      // As trainStepWithScaler: under loss scaling an overflow skips the step rather than stopping the run (a
      // failed step changed nothing on any replica, so it simply runs again unchecked).
      if (!(scaled && check && e instanceof KilnError && e.code === "non_finite")) throw stepError(e, step);
      return (await t.step(inputs)).loss;
    }
  };
}

/**
 * How `kiln train` uses a second core when no --replicas is given (bench/data-parallel.js, docs/performance.md).
 * Replicas cost work in proportion to the params (the gradient vector is copied, summed and applied on every
 * replica, the optimizer runs N times) and save it in proportion to the compute per sample, so they pay on conv
 * nets (few params, much compute: about 1% more CPU per sample than one replica at batch 256) and not on an MLP
 * (about 2.4x the CPU per sample), where the intra-op thread pool splits the big matmuls instead.
 */
export function pickParallelism(batch: number, cores: number, conv: boolean): { replicas: number; threads: number } {
  if (cores < 2) return { replicas: 1, threads: 1 };
  return conv && batch >= 64 ? { replicas: 2, threads: 1 } : { replicas: 1, threads: 2 };
}

async function startReplicas(ir: IRModule, build: { manifest: Manifest; wasm?: Uint8Array }, opts: TrainOptions, name: string, out: (s: string) => void): Promise<{ replicas?: DataParallelTrainer; threads: number }> {
  const hasForm = ir.functions.some((f) => f.name === `${name}.grad`);
  let n = opts.replicas ?? 1;
  let threads = 1;
  if (n === "auto") {
    const { availableParallelism } = await import("node:os");
    const conv = ir.functions.find((f) => f.name === `${name}.step`)!.nodes.some((x) => x.op === "window");
    const pick = pickParallelism(opts.batch, availableParallelism(), conv);
    n = hasForm ? pick.replicas : 1;
    threads = n === 1 ? pick.threads : 1;
    if (threads > 1) out(`kiln: ${threads} threads per step (intra-op; --replicas N for data-parallel replicas instead)`);
  }
  if (n === 1) return { threads };
  if (!hasForm) throw new KilnError(`kiln: --replicas ${n} needs ${name} compiled in data-parallel form (compileToIR with { dataParallel: true })`, { code: "bad_option" });
  if (n > opts.batch) throw new KilnError(`kiln: --replicas ${n} is larger than the batch of ${opts.batch}: each replica needs at least one sample of every batch`, { code: "bad_option" });
  const t = await DataParallelTrainer.create(build.manifest, build.wasm!, { replicas: n, seed: opts.seed, train: name });
  if (t.fallback) out(`kiln: ${t.fallback}`);
  else out(`kiln: ${n} data-parallel replicas, each on ${Math.floor(opts.batch / n)}${opts.batch % n ? `-${Math.ceil(opts.batch / n)}` : ""} samples of every batch of ${opts.batch}`);
  return { replicas: t, threads: 1 };
}

export async function runTraining(ir: IRModule, opts: TrainOptions, out: (s: string) => void): Promise<TrainResult> {
  const g = stepOf(ir, opts.train);
  // The data first: a file's mistakes are reported before the seconds the wasm build takes.
  const data = (opts.data ?? "synthetic") === "synthetic" || opts.data === "text" ? undefined : await epochData(ir, g, opts);
  const build = opts.build?.wasm ? opts.build : await (await import("../compile.js")).buildWasm(ir, basename(ir.source));
  const name = g.name.replace(/\.step$/, "");
  const { replicas, threads } = await startReplicas(ir, build, opts, name, out);
  try {
    const mod = replicas?.module ?? (await loadKilnModule(build.manifest, build.wasm!, { seed: opts.seed, threads }));
    const step = replicas ? replicatedStep(replicas, opts.checkNumerics) : singleStep(mod, name, opts.checkNumerics);
    return await trainWith(ir, g, mod, step, replicas, opts, out, data);
  } finally {
    // Replica 0's module stays usable (the result's module); the workers stop.
    replicas?.stopWorkers();
  }
}

async function trainWith(ir: IRModule, g: Graph, mod: KilnModule, call: StepFn, replicas: DataParallelTrainer | undefined, opts: TrainOptions, out: (s: string) => void, data: EpochData | undefined): Promise<TrainResult> {
  const name = g.name.replace(/\.step$/, "");
  let plotX: string | undefined;
  const result: TrainResult = { losses: [], accuracy: [], memoryBytes: [], module: mod };
  if (opts.resume) {
    try {
      await loadCheckpoint(mod, opts.resume);
    } catch (e) {
      if (e instanceof KilnError) throw new KilnError(`kiln: --resume ${opts.resume}: ${e.message.replace(/^kiln: /, "")}`, { code: e.code, ...(e.tensor ? { tensor: e.tensor } : {}) });
      throw e;
    }
    // The checkpoint went into replica 0: every replica starts from it, whatever replica count wrote it.
    await replicas?.broadcast();
    const state = scalerState(mod, name);
    out(`kiln: resumed from ${opts.resume}${state ? `, ${state}` : ""}`);
  }
  if (opts.weights) {
    const { readFile } = await import("node:fs/promises");
    const { loadWeights } = await import("../../runtime/quantize/io.js");
    try {
      await loadWeights(mod, await readFile(opts.weights));
    } catch (e) {
      if (e instanceof KilnError) throw new KilnError(`kiln: --weights ${opts.weights}: ${e.message.replace(/^kiln: /, "")}`, { code: e.code, ...(e.tensor ? { tensor: e.tensor } : {}) });
      throw e;
    }
    await replicas?.broadcast();
    out(`kiln: starting from the weights in ${opts.weights}`);
  }
  if (opts.data === "text") {
    const t = await trainText(ir, g, mod, modelOf(g, ir), { file: opts.textFile!, steps: opts.steps, batch: opts.batch, seed: opts.seed, sampleChars: opts.sampleChars ?? 300, progress: opts.progress }, out, (inputs, s) => call(inputs, s));
    Object.assign(result, { losses: t.losses, heldOut: t.heldOut, sample: t.sample });
    plotX = `step / ${t.every}`;
  } else if (!data) {
    const inputs = syntheticBatch(g, opts.batch, opts.classes, opts.seed);
    out(`kiln: training ${name} on a synthetic batch of ${opts.batch} (seed ${opts.seed}) for ${opts.steps} steps${precisionNote(ir)}`);
    for (let s = 1; s <= opts.steps; s++) {
      const loss = await call(inputs, s);
      result.losses.push(loss);
      out(`step ${String(s).padStart(String(opts.steps).length)}/${opts.steps}  loss ${loss.toFixed(6)}`);
    }
  } else {
    await trainEpochs(ir, g, mod, call, opts, out, result, data!);
  }
  // Where the step count ended (adam, schedules) and the dynamic loss scale (halved by overflows, doubled after `interval` clean steps).
  const scaler = scalerState(mod, name);
  if (scaler) out(`kiln: ${scaler}`);
  await saveAndPlot(ir, mod, opts, out, result, name, plotX);
  return result;
}

/** What an epoch loop needs from a data source: loaders whose batches hold `xKey` and "label", and its words. */
interface EpochData {
  train: DataLoader;
  test?: DataLoader;
  xKey: string;
  /** The step input's feature shape ([B, 784], [B, 4], ...). */
  shape: readonly (number | string)[];
  headline: string;
  /** How the held-out set is called in the per-epoch line ("test" for MNIST's fixed split). */
  heldOut: string;
  final: (acc: number) => string;
}

async function epochData(ir: IRModule, g: Graph, opts: TrainOptions): Promise<EpochData> {
  const epochs = opts.epochs ?? 1;
  const name = g.name.replace(/\.step$/, "");
  if (opts.data === "mnist") {
    const { imageShape } = imageAndLabelInputs(g);
    const data = await mnistLoaders(mnistDir(opts.dataDir), opts.batch, opts.seed, opts.augment);
    return {
      train: data.train, test: data.test, xKey: "image", shape: imageShape, heldOut: "test",
      headline: `kiln: training ${name} on MNIST: ${data.trainSet.length} training images (0-7999), ${data.testSet.length} held out (8000-9999), batch ${opts.batch}, ${epochs} epoch(s)${precisionNote(ir)}`,
      final: (acc) => `kiln: final test accuracy ${(acc * 100).toFixed(2)}% on the ${data.testSet.length} held-out images`,
    };
  }
  const path = opts.data!;
  const format: DataFormat | undefined = dataFormat(path);
  if (!format) throw new KilnError(`kiln: --data ${path}: not a .csv, .npy or .idx file`);
  const { image, label, imageShape } = featureAndLabelInputs(g);
  const forward = forwardOf(ir, g);
  const last = forward?.outputs.length ? ioType(forward, forward.outputs[0]!).shape.at(-1) : undefined;
  const valSplit = opts.valSplit ?? 0.2;
  const data = await fileLoaders(path, format, { labels: opts.labels, labelColumn: opts.labelColumn, valSplit, batch: opts.batch, seed: opts.seed, shape: imageShape, ...(typeof last === "number" ? { classes: last } : {}) });
  return {
    train: data.train, test: data.test, xKey: "x", shape: imageShape, heldOut: "held-out",
    headline: `kiln: training ${name} on ${path}: ${data.description} as ${image}, labels from ${data.labelsFrom} as ${label}; ${data.trainCount} training rows, ${data.testCount} held out (${Math.round(valSplit * 100)}%, seed ${opts.seed}), batch ${opts.batch}, ${epochs} epoch(s)${precisionNote(ir)}`,
    final: (acc) => `kiln: final held-out accuracy ${(acc * 100).toFixed(2)}% on ${data.testCount} rows of ${path}`,
  };
}

/** The step's feature input (the first float input) and label input (the first integer input). */
function featureAndLabelInputs(g: Graph): { image: string; label: string; imageShape: readonly (number | string)[] } {
  const io = g.inputs.map((i) => ({ name: i.name, t: ioType(g, i) }));
  const x = io.find((i) => i.t.dtype === "f32");
  const y = io.find((i) => i.t.dtype === "i32");
  if (!x || !y || io.length !== 2) throw new KilnError(`kiln: ${g.name} takes (${io.map((i) => i.name).join(", ")}); training on a file needs (features: f32[B, ...], labels: i32[B])`);
  return { image: x.name, label: y.name, imageShape: x.t.shape };
}

function forwardOf(ir: IRModule, g: Graph): Graph | undefined {
  return ir.functions.find((f) => f.name === `${modelOf(g, ir)}.forward`);
}

async function trainEpochs(ir: IRModule, g: Graph, mod: KilnModule, call: StepFn, opts: TrainOptions, out: (s: string) => void, result: TrainResult, data: EpochData): Promise<void> {
  const { image, label } = featureAndLabelInputs(g);
  const model = modelOf(g, ir);
  const forward = forwardOf(ir, g);
  const epochs = opts.epochs ?? 1;
  out(data.headline);
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const stream = opts.progress ?? process.stderr;
    // On a terminal the bar redraws in place; in a log (CI, a pipe) one line every few seconds is enough.
    const bar = new ProgressBar({ total: data.train.length * opts.batch, label: `epoch ${epoch}/${epochs}`, stream, logIntervalMs: 5000 });
    let sum = 0, n = 0;
    for await (const batch of data.train) {
      const loss = await call({ [image]: asModelInput(batch[data.xKey]!, data.shape), [label]: batch.label! }, ++step);
      sum += loss;
      n++;
      bar.tick(batch.label!.shape[0]!, { loss: sum / n });
    }
    bar.finish({ loss: sum / n });
    result.losses.push(sum / n);
    if (forward && data.test) {
      const acc = await accuracy(mod, forward, data.test, data.xKey, data.shape);
      result.accuracy.push(acc);
      out(`epoch ${epoch}/${epochs}  train loss ${(sum / n).toFixed(4)}  ${data.heldOut} accuracy ${(acc * 100).toFixed(2)}%`);
    } else out(`epoch ${epoch}/${epochs}  train loss ${(sum / n).toFixed(4)}  (${forward ? "nothing held out" : `no ${model}.forward`}: accuracy not measured)`);
    result.memoryBytes.push(mod.memoryStats().bytes);
  }
  if (result.accuracy.length) out(data.final(result.accuracy[result.accuracy.length - 1]!));
}

/** Fraction of held-out samples whose highest logit is the label. */
async function accuracy(mod: KilnModule, forward: Graph, test: DataLoader, xKey: string, shape: readonly (number | string)[]): Promise<number> {
  let right = 0, total = 0;
  for await (const batch of test) {
    const logits = mod.call(forward.name, { [forward.inputs[0]!.name]: asModelInput(batch[xKey]!, shape) }) as Tensor;
    const [b, c] = logits.shape as [number, number];
    const z = logits.data as Float32Array;
    const y = batch.label!.data as Int32Array;
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let k = 1; k < c; k++) if (z[r * c + k]! > z[r * c + best]!) best = k;
      if (best === y[r]) right++;
    }
    total += b;
  }
  return right / total;
}

/** "loss scale 32768 after 12 clean steps" for a train block with loss scaling, else undefined. */
/** The step count (which an lr schedule reads) and the loss scaler's state, for the checkpoint messages. */
function scalerState(mod: KilnModule, train: string): string | undefined {
  const s = readScaler(mod, train);
  const count = mod.manifest.params.some((p) => p.name === `${train}.step_count`) ? Number(mod.getParam(`${train}.step_count`).data[0]) : undefined;
  const parts = [
    ...(count !== undefined ? [`${count} optimizer step${count === 1 ? "" : "s"} taken`] : []),
    ...(s ? [`loss scale ${s.scale} after ${s.goodSteps} clean step${s.goodSteps === 1 ? "" : "s"}`] : []),
  ];
  return parts.length ? parts.join(", ") : undefined;
}

async function saveAndPlot(ir: IRModule, mod: KilnModule, opts: TrainOptions, out: (s: string) => void, r: TrainResult, train: string, xLabel?: string): Promise<void> {
  if (opts.checkpoint) {
    await mkdir(dirname(opts.checkpoint), { recursive: true });
    await saveCheckpoint(mod, opts.checkpoint);
    const state = scalerState(mod, train);
    out(`kiln: saved the training state (weights, optimizer state${readScaler(mod, train) ? ", loss scaler" : ""}) to ${opts.checkpoint}${state ? `, ${state}` : ""}`);
  }
  if (opts.save) {
    const tensors: Record<string, Tensor> = {};
    const weights = ir.params.filter((p) => !p.role); // no optimizer state, no mixed-precision copies
    for (const p of weights) tensors[p.name] = mod.getParam(p.name);
    await mkdir(dirname(opts.save), { recursive: true });
    await saveSafetensors(opts.save, tensors, { source: ir.source, format: "kiln-weights" });
    out(`kiln: saved ${weights.length} weight tensors to ${opts.save}`);
  }
  if (opts.plot) {
    const per = (opts.data ?? "synthetic") === "synthetic" || opts.data === "text" ? "step" : "epoch";
    await mkdir(dirname(opts.plot), { recursive: true });
    await writeSvg(opts.plot, trainingPlotSvg({ loss: r.losses, ...(r.accuracy.length ? { valAccuracy: r.accuracy } : {}), ...(r.heldOut ? { valLoss: r.heldOut } : {}), per, title: `kiln train ${basename(ir.source)}` }, xLabel ? { xLabel } : {}));
    out(`kiln: wrote the loss${r.accuracy.length ? " and held-out accuracy" : r.heldOut ? " and held-out loss" : ""} curves to ${opts.plot}`);
  }
}

export const trainCommand: Command = {
  name: "train",
  args: "FILE.kiln",
  summary: "run a train block: on a synthetic batch (loss per step), on MNIST or on your own data file",
  details: [
    "--data mnist: images 0-7999 of the bundled set train, 8000-9999 are held out; a progress bar per epoch",
    "--data FILE.csv: one row per sample, a label column (--label-column; default \"label\", else the last)",
    "--data FILE.npy|FILE.idx with --labels FILE: features [N, ...] shaped to the train block's input",
  ],
  options: {
    train: { type: "string", value: "NAME", help: "which train block (default: the first)" },
    data: { type: "string", value: "synthetic|mnist|FILE", help: "what to train on (default synthetic); FILE: .csv, .npy or .idx (optionally .gz), or .txt (a character language model)" },
    labels: { type: "string", value: "FILE", help: "--data FILE.npy/.idx: the integer labels, one per sample (.npy or .idx)" },
    "label-column": { type: "string", value: "NAME|INDEX", help: "--data FILE.csv: the column of integer class labels" },
    "val-split": { type: "string", value: "F", help: "--data FILE: the fraction of rows held out to measure accuracy (default 0.2)" },
    "data-dir": { type: "string", value: "DIR", help: "--data mnist: where the MNIST files are (default data/mnist)" },
    epochs: { type: "string", value: "E", help: "passes over the data (mnist, FILE; default 1)" },
    steps: { type: "string", value: "N", help: "steps on the synthetic batch (default 10)" },
    batch: { type: "string", value: "B", help: "samples per step (default 32)" },
    classes: { type: "string", value: "C", help: "synthetic labels are drawn from [0, C) (default 10)" },
    seed: SEED_OPTION,
    augment: { type: "boolean", help: "--data mnist: random rotation and crop of the training images" },
    "check-numerics": { type: "boolean", help: "stop at the first NaN or infinity, naming the tensor" },
    save: { type: "string", value: "W.safetensors", help: "write the trained weights (for kiln run/quantize --weights, load())" },
    checkpoint: { type: "string", value: "C.safetensors", help: "write the whole training state (weights, optimizer, loss scaler)" },
    resume: { type: "string", value: "C.safetensors", help: "start from a --checkpoint file instead of fresh params" },
    weights: { type: "string", value: "W.safetensors", help: "start from these weights (kiln import, --save) with a fresh optimizer" },
    replicas: { type: "string", value: "N", help: "data-parallel replicas, each on a share of every batch (default: replicas for conv nets at batch >= 64 on 2+ cores, else intra-op threads)" },
    plot: { type: "string", value: "FILE.svg", help: "write the loss and held-out accuracy curves" },
    precision: PRECISION_OPTION,
  },
  run: train,
};

/** Which flags only mean something for some data sources: named in the error when given with another. */
const ONLY_FOR: Record<string, { sources: Array<"synthetic" | "mnist" | "csv" | "npy" | "idx" | "text">; words: string }> = {
  steps: { sources: ["synthetic", "text"], words: "--data synthetic or FILE.txt (files and mnist train for --epochs)" },
  classes: { sources: ["synthetic"], words: "--data synthetic (files and mnist have their own labels)" },
  epochs: { sources: ["mnist", "csv", "npy", "idx"], words: "--data mnist or a data file (synthetic training runs --steps)" },
  augment: { sources: ["mnist"], words: "--data mnist" },
  "data-dir": { sources: ["mnist"], words: "--data mnist" },
  labels: { sources: ["npy", "idx"], words: "--data FILE.npy or FILE.idx (a CSV holds its labels in a column)" },
  "label-column": { sources: ["csv"], words: "--data FILE.csv" },
  "val-split": { sources: ["csv", "npy", "idx"], words: "--data FILE (mnist has a fixed split)" },
};

async function train(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const data = str(v, "data") ?? "synthetic";
  // A .txt file trains a language model on its characters (train-text.ts).
  const format = data === "synthetic" || data === "mnist" ? data : data.toLowerCase().endsWith(".txt") ? "text" : dataFormat(data);
  if (!format) {
    const near = closest(data, ["synthetic", "mnist"]);
    throw new UsageError(`--data must be synthetic, mnist or a .csv, .npy, .idx or .txt file, got '${data}'${near ? `; did you mean ${near}?` : ""}`);
  }
  for (const [name, rule] of Object.entries(ONLY_FOR)) {
    if (v[name] !== undefined && !rule.sources.includes(format)) throw new UsageError(`--${name} applies to ${rule.words}, not to --data ${data}`);
  }
  const split = str(v, "val-split");
  if (split !== undefined && !(/^\d*\.?\d+$/.test(split) && Number(split) < 1)) throw new UsageError(`--val-split must be a fraction in [0, 1), got '${split}'`);
  const opts: TrainOptions = {
    ...(format === "text" ? { data: "text", textFile: data } : { data }),
    dataDir: str(v, "data-dir"),
    labels: str(v, "labels"),
    labelColumn: str(v, "label-column"),
    ...(split !== undefined ? { valSplit: Number(split) } : {}),
    epochs: intOpt(v, "epochs", 1, 1),
    plot: str(v, "plot"),
    augment: flag(v, "augment"),
    train: str(v, "train"),
    steps: intOpt(v, "steps", 10, 1),
    batch: intOpt(v, "batch", 32, 1),
    seed: intOpt(v, "seed", 0, -(2 ** 31)),
    classes: intOpt(v, "classes", 10, 1),
    checkNumerics: flag(v, "check-numerics"),
    save: str(v, "save"),
    checkpoint: str(v, "checkpoint"),
    resume: str(v, "resume"),
    weights: str(v, "weights"),
    replicas: str(v, "replicas") !== undefined ? intOpt(v, "replicas", 1, 1) : "auto",
    progress: io.tty,
  };
  if (format !== "synthetic" && format !== "mnist") await checkFile(data, "data");
  if (opts.labels) await checkFile(opts.labels, "labels");
  if (opts.resume) await checkFile(opts.resume, "resume");
  if (opts.weights && opts.resume) throw new UsageError("--weights and --resume both say where training starts; pass one");
  if (opts.weights) await checkFile(opts.weights, "weights");
  const r = await frontend(file, source, io, { precision: precisionOpt(v), dataParallel: true });
  if (!r.ir) return 1;
  io.status(`kiln: compiling ${file} to wasm…`);
  // The kernels from the compile cache when the program is unchanged (no Binaryen).
  const { buildSource } = await import("../build-source.js");
  const built = await buildSource(source, { file, precision: precisionOpt(v), dataParallel: true, cache: true, ir: r.ir });
  await runTraining(r.ir, { ...opts, ...(built.build ? { build: built.build } : {}) }, io.out);
  return 0;
}
