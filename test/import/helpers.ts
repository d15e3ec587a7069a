// Test helpers for kiln import: run `kiln import` on an ONNX file, compile what it wrote for wasm with its weights,
// and run both it and onnxruntime-node on the same inputs (int64 ids for ORT are i32 for Kiln).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import * as ort from "onnxruntime-node";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { kiln, lcg } from "../export/helpers.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import type { Tensor } from "../../runtime/tensor.js";

export interface Imported {
  source: string;
  call(x: Float32Array | Int32Array, shape: number[]): Float32Array;
}

/** Runs `kiln import` on `dir/name.onnx` into `dir/name-kiln`; the program's source, IR and weights. */
export async function importToIR(dir: string, name: string): Promise<{ source: string; ir: IRModule; weights: Record<string, Tensor> }> {
  const out = join(dir, `${name}-kiln`);
  const r = await kiln("import", join(dir, `${name}.onnx`), "--out", out);
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  const file = join(out, `${name}.kiln`);
  const source = readFileSync(file, "utf8");
  const c = compileToIR(source, file);
  expect(c.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return { source, ir: c.ir!, weights: parseSafetensors(readFileSync(join(out, `${name}.safetensors`))).tensors };
}

/** Imports `name.onnx` from `dir` into `dir/name-kiln`, compiles it once and loads its weights. */
export async function importAndLoad(dir: string, name: string): Promise<Imported> {
  const { source, ir, weights } = await importToIR(dir, name);
  const b = await buildWasm(ir, name);
  const mod = await loadKilnModule(b.manifest, b.wasm);
  for (const [k, t] of Object.entries(weights)) mod.setParam(k, t);
  // Every param of the program comes from the weights file (none is left at its initialiser).
  expect(Object.keys(weights).sort()).toEqual(b.manifest.params.filter((p) => !p.role).map((p) => p.name).sort());
  const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"))!;
  const input = fn.inputs[0]!;
  return {
    source,
    call(x, shape) {
      const dims = Object.fromEntries(input.shape.flatMap((d, k) => (typeof d === "string" ? [[d, shape[k]!]] : [])));
      return (mod.call(fn.name, { [input.name]: x }, { dims }) as { data: Float32Array }).data;
    },
  };
}

/** onnxruntime-node's output for input `x` (float32, or int64 from the i32 ids). */
export async function ortOutput(file: string, x: Float32Array | Int32Array, shape: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const t = x instanceof Int32Array ? new ort.Tensor("int64", BigInt64Array.from(x, (v) => BigInt(v)), shape) : new ort.Tensor("float32", x, shape);
  return (await s.run({ [s.inputNames[0]!]: t }))[s.outputNames[0]!]!.data as Float32Array;
}

/**
 * Imports `name`.onnx (a GPT-like decoder over 40 token ids), adds a cross-entropy loss at length `T` and an Adam
 * train block, and runs `kiln train` for `steps` steps on 6000 words drawn from 12 (27 distinct characters, ln 27 =
 * 3.30 nats for uniform guessing). Returns the held-out losses of the 10 evaluations and the command's output.
 */
export async function fineTuneImportedGpt(dir: string, name: string, model: string, T: number, steps: number): Promise<{ held: number[]; out: string }> {
  const out = join(dir, `${name}-tune`);
  expect((await kiln("import", join(dir, `${name}.onnx`), "--out", out)).code).toBe(0);
  const src = readFileSync(join(out, `${name}.kiln`), "utf8").trimEnd();
  const tuned = join(out, "tune.kiln");
  writeFileSync(tuned, `${src.slice(0, -1)}
  fn loss(x: i32[batch, ${T}], y: i32[batch, ${T}]) -> f32 {
    return cross_entropy(reshape(forward(x), [${T} * batch, 40]), reshape(y, [${T} * batch]))
  }
}

train Tune {
  model: ${model}
  loss: loss
  optimizer: adam(lr: 0.003)
}
`);
  const words = "the quick brown fox jumps over a lazy dog and runs far away".split(" ");
  const text = join(out, "words.txt");
  writeFileSync(text, Array.from(lcg(6000, 5), (v) => words[Math.floor(((v + 1) / 2) * words.length) % words.length]).join(" "));
  const r = await kiln("train", tuned, "--data", text, "--steps", String(steps), "--batch", "16", "--weights", join(out, `${name}.safetensors`));
  expect(r.err).toBe("");
  const held = [...r.out.matchAll(/held-out loss ([\d.]+)\n/g)].map((m) => Number(m[1]));
  expect(held.length, r.out).toBe(10);
  return { held, out: r.out };
}
