// CLI helper for `kiln train`: compiles a file's train block, then calls its step function batch after batch
// and reports progress. Data: `synthetic` (one fixed seeded batch for --steps steps, so the loss must fall as
// the model fits it) or `mnist` (--epochs over the bundled training images with a progress bar per epoch, then
// the accuracy on the 2000 held-out images). Optimizer state lives in the runtime between steps; --save writes
// the trained weights as safetensors, --checkpoint the whole training state (weights, optimizer state, loss scaler)
// that --resume starts from, and --plot an SVG of loss and accuracy.

import { mkdir } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Graph, IRModule } from "../ir/graph.js";
import { buildWasm } from "../compile.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import type { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { saveSafetensors } from "../../runtime/safetensors.js";
import { ProgressBar } from "../../runtime/train/progress.js";
import { trainingPlotSvg, writeSvg } from "../../runtime/train/plot.js";
import { readScaler, trainStepWithScaler } from "../../runtime/train/loss-scale.js";
import { loadCheckpoint, saveCheckpoint } from "../../runtime/train/checkpoint.js";
import { asModelInput, imageAndLabelInputs, mnistDir, mnistLoaders, syntheticBatch } from "./data.js";
import { trainText } from "./train-text.js";

export interface TrainOptions {
  train?: string;
  /** "text": a language model on `textFile` (train-text.ts). */
  data?: "synthetic" | "mnist" | "text";
  textFile?: string;
  /** Characters generated after text training (default 300). */
  sampleChars?: number;
  dataDir?: string;
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
  plot?: string;
  /** Random rotation and crop of the training images (mnist). */
  augment?: boolean;
  /** Where the progress bar draws (default: stderr). */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface TrainResult {
  /** Loss per step (synthetic) or mean loss per epoch (mnist). */
  losses: number[];
  /** Held-out accuracy after each epoch (mnist only). */
  accuracy: number[];
  /** The module's wasm memory size after each epoch (mnist only): flat after the first, no growth per batch. */
  memoryBytes: number[];
  /** Held-out loss after each evaluation interval (text only; `losses` then holds the train loss per interval). */
  heldOut?: number[];
  /** Text the model generated (text only). */
  sample?: string;
  module: KilnModule;
}

function stepOf(ir: IRModule, train?: string): Graph {
  const steps = ir.functions.filter((g) => g.updates?.length);
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

function call(mod: KilnModule, fn: string, inputs: Record<string, Tensor>, step: number, check: boolean): number {
  try {
    return trainStepWithScaler(mod, fn.replace(/\.step$/, ""), inputs, step, check);
  } catch (e) {
    if (e instanceof KilnError && e.code === "non_finite") throw new KilnError(`kiln: training step ${step}: ${e.message}`, { code: "non_finite", fn: e.fn, tensor: e.tensor });
    throw e;
  }
}

export async function runTraining(ir: IRModule, opts: TrainOptions, out: (s: string) => void): Promise<TrainResult> {
  const g = stepOf(ir, opts.train);
  const build = await buildWasm(ir, basename(ir.source));
  const mod = await loadKilnModule(build.manifest, build.wasm, { seed: opts.seed });
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
    const state = scalerState(mod, name);
    out(`kiln: resumed from ${opts.resume}${state ? `, ${state}` : ""}`);
  }
  if ((opts.data ?? "synthetic") === "synthetic") {
    const inputs = syntheticBatch(g, opts.batch, opts.classes, opts.seed);
    out(`kiln: training ${name} on a synthetic batch of ${opts.batch} (seed ${opts.seed}) for ${opts.steps} steps${precisionNote(ir)}`);
    for (let s = 1; s <= opts.steps; s++) {
      const loss = call(mod, g.name, inputs, s, opts.checkNumerics);
      result.losses.push(loss);
      out(`step ${String(s).padStart(String(opts.steps).length)}/${opts.steps}  loss ${loss.toFixed(6)}`);
    }
  } else if (opts.data === "text") {
    const t = await trainText(ir, g, mod, modelOf(g, ir), { file: opts.textFile!, steps: opts.steps, batch: opts.batch, seed: opts.seed, sampleChars: opts.sampleChars ?? 300, progress: opts.progress }, out, (inputs, s) => call(mod, g.name, inputs, s, opts.checkNumerics));
    Object.assign(result, { losses: t.losses, heldOut: t.heldOut, sample: t.sample });
    plotX = `step / ${t.every}`;
  } else {
    await trainMnist(ir, g, mod, opts, out, result);
  }
  // Dynamic loss scaling: where the scale ended (halved by overflowing steps, doubled after `interval` clean ones).
  const scaler = scalerState(mod, name);
  if (scaler) out(`kiln: ${scaler}`);
  await saveAndPlot(ir, mod, opts, out, result, name, plotX);
  return result;
}

async function trainMnist(ir: IRModule, g: Graph, mod: KilnModule, opts: TrainOptions, out: (s: string) => void, result: TrainResult): Promise<void> {
  const { image, label, imageShape } = imageAndLabelInputs(g);
  const model = modelOf(g, ir);
  const forward = ir.functions.find((f) => f.name === `${model}.forward`);
  const data = await mnistLoaders(mnistDir(opts.dataDir), opts.batch, opts.seed, opts.augment);
  const epochs = opts.epochs ?? 1;
  out(`kiln: training ${g.name.replace(/\.step$/, "")} on MNIST: ${data.trainSet.length} training images (0-7999), ${data.testSet.length} held out (8000-9999), batch ${opts.batch}, ${epochs} epoch(s)${precisionNote(ir)}`);
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const stream = opts.progress ?? process.stderr;
    // On a terminal the bar redraws in place; in a log (CI, a pipe) one line every few seconds is enough.
    const bar = new ProgressBar({ total: data.train.length * opts.batch, label: `epoch ${epoch}/${epochs}`, stream, logIntervalMs: 5000 });
    let sum = 0, n = 0;
    for await (const batch of data.train) {
      const loss = call(mod, g.name, { [image]: asModelInput(batch.image, imageShape), [label]: batch.label }, ++step, opts.checkNumerics);
      sum += loss;
      n++;
      bar.tick(batch.label.shape[0], { loss: sum / n });
    }
    bar.finish({ loss: sum / n });
    result.losses.push(sum / n);
    if (forward) {
      const acc = await accuracy(mod, forward, data.test, imageShape);
      result.accuracy.push(acc);
      out(`epoch ${epoch}/${epochs}  train loss ${(sum / n).toFixed(4)}  test accuracy ${(acc * 100).toFixed(2)}%`);
    } else out(`epoch ${epoch}/${epochs}  train loss ${(sum / n).toFixed(4)}  (no ${model}.forward: accuracy not measured)`);
    result.memoryBytes.push(mod.memoryStats().bytes);
  }
  if (forward) out(`kiln: final test accuracy ${(result.accuracy[result.accuracy.length - 1] * 100).toFixed(2)}% on the ${data.testSet.length} held-out images`);
}

/** Fraction of held-out images whose highest logit is the label. */
async function accuracy(mod: KilnModule, forward: Graph, test: Awaited<ReturnType<typeof mnistLoaders>>["test"], imageShape: readonly (number | string)[]): Promise<number> {
  let right = 0, total = 0;
  for await (const batch of test) {
    const logits = mod.call(forward.name, { [forward.inputs[0].name]: asModelInput(batch.image, imageShape) }) as Tensor;
    const [b, c] = logits.shape;
    const z = logits.data as Float32Array;
    const y = batch.label.data as Int32Array;
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let k = 1; k < c; k++) if (z[r * c + k] > z[r * c + best]) best = k;
      if (best === y[r]) right++;
    }
    total += b;
  }
  return right / total;
}

/** "loss scale 32768 after 12 clean steps" for a train block with loss scaling, else undefined. */
function scalerState(mod: KilnModule, train: string): string | undefined {
  const s = readScaler(mod, train);
  return s ? `loss scale ${s.scale} after ${s.goodSteps} clean step${s.goodSteps === 1 ? "" : "s"}` : undefined;
}

async function saveAndPlot(ir: IRModule, mod: KilnModule, opts: TrainOptions, out: (s: string) => void, r: TrainResult, train: string, xLabel?: string): Promise<void> {
  if (opts.checkpoint) {
    await mkdir(dirname(opts.checkpoint), { recursive: true });
    await saveCheckpoint(mod, opts.checkpoint);
    const state = scalerState(mod, train);
    out(`kiln: saved the training state (weights, optimizer state${state ? ", loss scaler" : ""}) to ${opts.checkpoint}${state ? `, ${state}` : ""}`);
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
    const per = opts.data === "mnist" ? "epoch" : "step";
    await mkdir(dirname(opts.plot), { recursive: true });
    await writeSvg(opts.plot, trainingPlotSvg({ loss: r.losses, ...(r.accuracy.length ? { accuracy: r.accuracy } : {}), ...(r.heldOut ? { valLoss: r.heldOut } : {}), per, title: `kiln train ${basename(ir.source)}` }, xLabel ? { xLabel } : {}));
    out(`kiln: wrote the loss${r.accuracy.length ? " and accuracy" : r.heldOut ? " and held-out loss" : ""} curves to ${opts.plot}`);
  }
}
