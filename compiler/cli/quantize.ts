// `kiln quantize`: loads a file's trained weights, switches its linear layers to int8 (dynamic, or
// static calibrated on MNIST training batches), prints what was quantized and its error (and with --data mnist
// the held-out accuracy in f32 and int8), and writes the int8 weights as safetensors (I8 + F32 scales).

import { mkdir, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { IRModule } from "../ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import type { FunctionManifest } from "../../runtime/manifest.js";
import type { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { loadSafetensors } from "../../runtime/safetensors.js";
import { quantizeDynamic } from "../../runtime/quantize/dynamic.js";
import { quantizeStatic, type Calibration } from "../../runtime/quantize/static.js";
import { loadWeights, saveQuantized } from "../../runtime/quantize/io.js";
import { asModelInput, mnistDir, mnistLoaders } from "./data.js";
import { checkFile, frontend, intOpt, readSource, SEED_OPTION, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

export const quantizeCommand: Command = {
  name: "quantize",
  args: "FILE.kiln --weights W.safetensors",
  summary: "switch every linear layer (matmul on a param) to int8 and report each op's error",
  details: ["--data mnist also measures held-out accuracy (static mode calibrates on training batches); --out writes I8 weights + scales"],
  options: {
    weights: { type: "string", value: "W.safetensors", help: "the trained f32 weights (kiln train --save)" },
    out: { type: "string", value: "Q.safetensors", help: "write the int8 weights and their scales here" },
    mode: { type: "string", value: "dynamic|static", help: "dynamic (default): activations quantized per call; static: calibrated ranges" },
    fn: { type: "string", value: "NAME", help: "the function to measure and calibrate (default: the forward with int8 steps)" },
    data: { type: "string", value: "mnist", help: "measure held-out accuracy (and calibrate) on the bundled MNIST images" },
    "data-dir": { type: "string", value: "DIR", help: "where the MNIST files are (default data/mnist)" },
    "calibration-batches": { type: "string", value: "N", help: "static mode: training batches to calibrate on (default 8)" },
    percentile: { type: "string", value: "P", help: "static mode: clip activation ranges at this percentile in (50, 100] (default: min/max)" },
    seed: SEED_OPTION,
  },
  run: quantize,
};

async function quantize(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const weights = str(v, "weights");
  if (!weights) throw new UsageError("kiln quantize needs --weights FILE.safetensors (f32 weights, e.g. from kiln train --save)");
  const mode = str(v, "mode") ?? "dynamic";
  if (mode !== "dynamic" && mode !== "static") throw new UsageError(`--mode must be dynamic or static, got '${mode}'`);
  const data = str(v, "data");
  if (data !== undefined && data !== "mnist") throw new UsageError(`kiln quantize --data must be mnist, got '${data}'`);
  if (str(v, "data-dir") !== undefined && data === undefined) throw new UsageError("--data-dir needs --data mnist");
  for (const o of ["calibration-batches", "percentile"]) if (str(v, o) !== undefined && mode !== "static") throw new UsageError(`--${o} calibrates static quantization; add --mode static`);
  const pct = str(v, "percentile");
  if (pct !== undefined && !(Number(pct) > 50 && Number(pct) <= 100)) throw new UsageError(`--percentile must be a number in (50, 100], got '${pct}'`);
  const opts: QuantizeCliOptions = {
    weights, mode, out: str(v, "out"), fn: str(v, "fn"), data, dataDir: str(v, "data-dir"),
    batches: intOpt(v, "calibration-batches", 8, 1), calibration: pct === undefined ? "minmax" : { percentile: Number(pct) }, seed: intOpt(v, "seed", 0, -(2 ** 31)),
  };
  await checkFile(weights, "weights");
  const r = await frontend(file, source, io);
  if (!r.ir) return 1;
  await runQuantize(r.ir, opts, io.out);
  return 0;
}

export interface QuantizeCliOptions {
  weights: string;
  out?: string;
  mode: "dynamic" | "static";
  fn?: string;
  data?: "mnist";
  dataDir?: string;
  batches: number;
  calibration: Calibration;
  seed: number;
}

/** The function to measure (and for static mode, to calibrate): --fn, else a model's forward with int8 steps. */
function targetFn(mod: KilnModule, name?: string): FunctionManifest {
  const fns = mod.manifest.functions;
  if (name) {
    const f = fns.find((x) => x.name === name) ?? fns.find((x) => x.jsName === name);
    if (!f) throw new KilnError(`kiln: no function '${name}' (functions: ${fns.map((x) => x.name).join(", ")})`);
    return f;
  }
  const withInt8 = fns.filter((f) => f.int8?.length);
  const f = withInt8.find((x) => x.jsName === "forward") ?? withInt8[0];
  if (!f) throw new KilnError(`kiln: ${mod.manifest.source} has no matmul on a param weight (a linear layer) to quantize; nothing was written`);
  return f;
}

/** MNIST batches as the function's single image input ([B, 784] or [B, 1, 28, 28]). */
function imageInput(f: FunctionManifest): (images: Tensor) => Record<string, Tensor> {
  const sig = f.inputs[0];
  const per = sig?.shape.slice(1).reduce<number>((a, d) => a * (typeof d === "number" ? d : NaN), 1);
  if (f.inputs.length !== 1 || sig!.dtype !== "f32" || per !== 784) {
    throw new KilnError(`kiln: --data mnist needs a function taking MNIST images (f32[B, 784] or f32[B, 1, 28, 28]); ${f.name} takes (${f.inputs.map((i) => `${i.name}: ${i.dtype}[${i.shape.join(", ")}]`).join(", ")}); pick one with --fn`);
  }
  return (images) => ({ [sig!.name]: asModelInput(images, sig!.shape) });
}

async function accuracy(mod: KilnModule, f: FunctionManifest, data: Awaited<ReturnType<typeof mnistLoaders>>["test"]): Promise<number> {
  const input = imageInput(f);
  let right = 0, total = 0;
  for await (const batch of data) {
    const z = mod.call(f.name, input(batch.image)) as Tensor;
    const [b, c] = z.shape as [number, number];
    const y = batch.label.data as Int32Array;
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let k = 1; k < c; k++) if ((z.data[r * c + k] as number) > (z.data[r * c + best] as number)) best = k;
      if (best === y[r]) right++;
    }
    total += b;
  }
  return right / total;
}

export async function runQuantize(ir: IRModule, opts: QuantizeCliOptions, out: (s: string) => void): Promise<KilnModule> {
  const { buildWasm } = await import("../compile.js");
  const build = await buildWasm(ir, basename(ir.source));
  const mod = await loadKilnModule(build.manifest, build.wasm, { seed: opts.seed });
  const file = await loadSafetensors(opts.weights);
  if (file.metadata.quantized) throw new KilnError(`kiln: ${opts.weights} is already quantized (${file.metadata.quantized}); pass the f32 weights (e.g. from kiln train --save)`);
  await loadWeights(mod, file);
  const f = targetFn(mod, opts.fn);
  const data = opts.data === "mnist" ? await mnistLoaders(mnistDir(opts.dataDir), 64, opts.seed) : undefined;
  if (opts.mode === "static" && !data) throw new KilnError(`kiln: static quantization calibrates on data: add --data mnist`);
  const input = data ? imageInput(f) : undefined;
  const sample = data ? { fn: f.name, inputs: input!((await data.test[Symbol.asyncIterator]().next()).value.image) } : undefined;
  const f32 = data ? await accuracy(mod, f, data.test) : undefined;
  const report = opts.mode === "dynamic"
    ? quantizeDynamic(mod, { ...(sample ? { sample } : {}) })
    : await quantizeStatic(mod, { fn: f.name, data: data!.train, inputs: (b: { image: Tensor }) => input!(b.image), batches: opts.batches, calibration: opts.calibration, sample });
  out(`kiln: ${report.text}`);
  if (data) {
    const int8 = await accuracy(mod, f, data.test);
    out(`kiln: held-out accuracy (${data.testSet.length} MNIST images, ${f.name}): f32 ${(f32! * 100).toFixed(2)}%, int8 ${(int8 * 100).toFixed(2)}% (${((int8 - f32!) * 100).toFixed(2)} points)`);
  }
  if (opts.out) {
    await mkdir(dirname(opts.out), { recursive: true });
    await saveQuantized(mod, opts.out);
    const [a, b] = await Promise.all([stat(opts.weights), stat(opts.out)]);
    out(`kiln: wrote ${opts.out}: ${b.size} bytes (f32 weights ${opts.weights}: ${a.size} bytes, ${(a.size / b.size).toFixed(2)}x smaller)`);
  }
  return mod;
}
