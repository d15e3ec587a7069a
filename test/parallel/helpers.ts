// Test helpers for data-parallel training: small MLP and CNN programs, seeded batches, a compiled module with the
// data-parallel functions, trainers whose workers run the compiled runtime (dist/, built when stale), and a
// single-replica reference run on the plain step function.
import { pathToFileURL } from "node:url";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compileToIR, buildWasm, type Precision, type WasmBuild } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { DataParallelTrainer, type DataParallelOptions } from "../../runtime/parallel/trainer.js";
import { checkpointParams } from "../../runtime/train/checkpoint.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WORKER_URL = pathToFileURL(join(root, "dist", "runtime", "parallel", "replica-worker.js"));

export const mlp = (opt: string) => `
model M {
  param w1: f32[12, 16] = he()
  param b1: f32[16] = zeros()
  param w2: f32[16, 5] = xavier()
  param b2: f32[5] = zeros()
  fn forward(x: f32[B, 12]) -> f32[B, 5] { return relu(x @ w1 + b1) @ w2 + b2 }
  fn loss(x: f32[B, 12], y: i32[B]) -> f32 { return cross_entropy(forward(x), y) }
}
train T { model: M, loss: loss, optimizer: ${opt} }`;

/** conv 3x3 (4) -> [batch_norm] -> relu -> max pool 2 -> linear, on 1x8x8 images. */
export const cnn = (opt: string, bn: boolean) => `
model C {
  param k: f32[4, 1, 3, 3] = he()
  param kb: f32[4] = zeros()
${bn ? "  param g: f32[4] = ones()\n  param be: f32[4] = zeros()\n  param rm: f32[4] = zeros()\n  param rv: f32[4] = ones()" : ""}
  param fc: f32[64, 3] = xavier()
  param fcb: f32[3] = zeros()
  fn forward(x: f32[B, 1, 8, 8]) -> f32[B, 3] {
    let h = conv2d(x, k, kb, padding: 1)
    h = ${bn ? "relu(batch_norm(h, g, be, rm, rv))" : "relu(h)"}
    return flatten(max_pool2d(h, 2)) @ fc + fcb
  }
  fn loss(x: f32[B, 1, 8, 8], y: i32[B]) -> f32 { return cross_entropy(forward(x), y) }
}
train T { model: C, loss: loss, optimizer: ${opt} }`;

export async function build(src: string, precision: Precision = "f32"): Promise<WasmBuild> {
  const r = compileToIR(src, "dp.kiln", [], [], { precision, dataParallel: true });
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "dp.kiln": src }));
  return buildWasm(r.ir, "dp");
}

/** `steps` global batches of `batch` samples: floats in [-1, 1) from an LCG, labels in [0, classes). */
export function batches(shape: number[], classes: number, batch: number, steps: number, seed = 7): { x: Tensor; y: Tensor }[] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const per = shape.reduce((a, b) => a * b, 1);
  return Array.from({ length: steps }, () => ({
    x: new Tensor("f32", [batch, ...shape], Float32Array.from({ length: batch * per }, () => next() * 2 - 1)),
    y: new Tensor("i32", [batch], Int32Array.from({ length: batch }, () => Math.floor(next() * classes))),
  }));
}

export async function trainer(b: WasmBuild, replicas: number, opts: Partial<DataParallelOptions> = {}): Promise<DataParallelTrainer> {
  ensureRuntimeBuilt();
  return DataParallelTrainer.create(b.manifest, b.wasm, { replicas, seed: 3, workerUrl: WORKER_URL, ...opts });
}

/** One replica on the plain fused step (T.step), from the same seed. */
export async function reference(b: WasmBuild, data: { x: Tensor; y: Tensor }[]): Promise<KilnModule> {
  const mod = await loadKilnModule(b.manifest, b.wasm, { seed: 3 });
  for (const d of data) mod.call("T.step", { x: d.x, y: d.y });
  return mod;
}

export function allParams(mod: KilnModule): Record<string, Tensor> {
  return Object.fromEntries(checkpointParams(mod).map((n) => [n, mod.getParam(n)]));
}

/** Largest |a - b| / (atol + |b|) over every param: <= 1 means within tolerance. */
export function worstRatio(a: Record<string, Tensor>, b: Record<string, Tensor>, atol: number, rtol: number): { ratio: number; where: string } {
  let ratio = 0, where = "";
  for (const [name, t] of Object.entries(b)) {
    const x = a[name]!.data as ArrayLike<number>, y = t.data as ArrayLike<number>;
    for (let i = 0; i < y.length; i++) {
      const r = Math.abs(x[i]! - y[i]!) / (atol + rtol * Math.abs(y[i]!));
      if (!(r <= ratio)) {
        ratio = r;
        where = `${name}[${i}]: ${x[i]} vs ${y[i]}`;
      }
    }
  }
  return { ratio, where };
}

/** Whether two param sets are bit-identical (NaN payloads included). */
export function sameBits(a: Record<string, Tensor>, b: Record<string, Tensor>): string | undefined {
  for (const [name, t] of Object.entries(b)) {
    const x = new Uint8Array(a[name]!.data.buffer, a[name]!.data.byteOffset, a[name]!.data.byteLength);
    const y = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (x.length !== y.length || x.some((v, i) => v !== y[i])) return name;
  }
  return undefined;
}

/** Trains `data` step by step on `replicas` replicas and returns replica 0's params and state (then disposes). */
export async function trainedParams(b: WasmBuild, replicas: number, data: { x: Tensor; y: Tensor }[], opts: Partial<DataParallelOptions> = {}): Promise<Record<string, Tensor>> {
  const t = await trainer(b, replicas, opts);
  try {
    for (const d of data) await t.step({ x: d.x, y: d.y });
    return allParams(t.module);
  } finally {
    t.dispose();
  }
}
