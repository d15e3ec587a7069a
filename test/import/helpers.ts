// Test helpers for kiln import: run `kiln import` on an ONNX file, compile what it wrote for wasm with its weights,
// and run both it and onnxruntime-node on the same inputs (int64 ids for ORT are i32 for Kiln).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import * as ort from "onnxruntime-node";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { kiln } from "../export/helpers.js";
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
