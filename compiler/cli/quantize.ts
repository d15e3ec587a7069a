// CLI helper for `kiln quantize`: loads a file's trained weights, switches its linear layers to int8 (dynamic, or
// static calibrated on MNIST training batches), prints what was quantized and its error (and with --data mnist
// the held-out accuracy in f32 and int8), and writes the int8 weights as safetensors (I8 + F32 scales).

import { mkdir, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { IRModule } from "../ir/graph.js";
import { buildWasm } from "../compile.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import type { FunctionManifest } from "../../runtime/manifest.js";
import type { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { loadSafetensors } from "../../runtime/safetensors.js";
import { quantizeDynamic } from "../../runtime/quantize/dynamic.js";
import { quantizeStatic, type Calibration } from "../../runtime/quantize/static.js";
import { loadWeights, saveQuantized } from "../../runtime/quantize/io.js";
import { asModelInput, mnistDir, mnistLoaders } from "./data.js";

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
