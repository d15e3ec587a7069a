// `kiln run`: executes one function of a compiled module on the wasm backend (through the same runtime a
// generated module uses) or on the float64 reference interpreter, with params from the seeded init or --weights.

import { basename } from "node:path";
import { ioType, type Graph, type IRModule } from "../ir/graph.js";
import { DiagnosticBag, formatDiagnostics } from "../diagnostics.js";
import type { ParsedInput } from "./inputs.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { Rng } from "../../runtime/rng.js";
import { fillInit } from "../../runtime/init.js";
import { evaluateGraph } from "../reference/interpreter.js";
import { RandomStreams } from "../../runtime/random.js";
import { checkClassLabels } from "../../runtime/bind.js";
import { loadSafetensors, type SafetensorsFile } from "../../runtime/safetensors.js";
import { loadWeights } from "../../runtime/quantize/io.js";
import { parseInputSpec } from "./inputs.js";
import { checkFile, dimsOpt, frontend, list, PRECISION_OPTION, precisionOpt, readSource, SEED_OPTION, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

export const runCommand: Command = {
  name: "run",
  args: "FILE.kiln --fn NAME",
  summary: "run one function on given inputs and print its outputs (wasm backend, or the float64 reference)",
  details: ["SPEC: random:[4,784] | zeros:[3] | ones:[2,2] | 2.5 | [[1,2],[3,4]]"],
  options: {
    fn: { type: "string", value: "NAME", help: "the function to run (MLP.forward, or just forward)" },
    input: { type: "string", multiple: true, value: "NAME=SPEC", help: "an input's value (inputs not given are random)" },
    dims: { type: "string", multiple: true, value: "B=4", help: "sizes of symbolic dims not fixed by the inputs" },
    seed: SEED_OPTION,
    backend: { type: "string", value: "wasm|reference", help: "where to run it (default wasm)" },
    weights: { type: "string", value: "W.safetensors", help: "params from a file (kiln train --save) instead of the init rules" },
    precision: PRECISION_OPTION,
  },
  run,
};

async function run(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const fnName = str(v, "fn");
  if (!fnName) throw new UsageError("kiln run needs --fn NAME");
  const seedText = str(v, "seed") ?? "0";
  if (!/^-?\d+$/.test(seedText)) throw new UsageError(`--seed must be an integer, got '${seedText}'`);
  const seed = Number(seedText);
  const backend = str(v, "backend") ?? "wasm";
  if (backend !== "wasm" && backend !== "reference") throw new UsageError(`--backend must be wasm or reference, got '${backend}'`);
  const weightsPath = str(v, "weights");
  if (weightsPath) await checkFile(weightsPath, "weights");
  if (backend === "wasm") {
    // From the compile cache when the program is unchanged (no frontend, no Binaryen); --weights loads trained weights.
    const { runBuilt } = await import("./run-module.js");
    const code = await runBuilt(file, source, { fn: fnName, inputs: list(v, "input"), dims: dimsOpt(v), seed, precision: precisionOpt(v), ...(weightsPath ? { weights: weightsPath } : {}) }, io.out, io.err);
    if (code !== undefined) return code;
  }
  const r = await frontend(file, source, io, { precision: precisionOpt(v) });
  if (!r.ir) return 1;
  const g = r.ir.functions.find((x) => x.name === fnName) ?? r.ir.functions.filter((x) => x.name.split(".").pop() === fnName).at(0);
  if (!g) throw new KilnError(`kiln: ${file} has no function '${fnName}' (it has: ${r.ir.functions.map((x) => x.name).join(", ")})`);
  const rng = new Rng(seed + 1);
  const inputs: Record<string, ParsedInput> = {};
  for (const spec of list(v, "input")) {
    const eq = spec.indexOf("=");
    if (eq < 1) throw new UsageError(`--input '${spec}' should look like x=random:[4,784]`);
    const name = spec.slice(0, eq);
    const input = g.inputs.find((i) => i.name === name);
    if (!input) throw new KilnError(`kiln: ${g.name} has no input '${name}' (inputs: ${g.inputs.map((i) => i.name).join(", ") || "none"})`);
    const dt = ioType(g, input).dtype;
    inputs[name] = parseInputSpec(name, spec.slice(eq + 1), rng, dt === "i32" || dt === "i8" || dt === "u8");
  }
  const weights = weightsPath ? await readWeights(weightsPath) : undefined;
  const results = await runOnBackend(r.ir, g, inputs, dimsOpt(v), seed, backend, weights);
  results.forEach((t, i) => io.out(`${g.outputs[i]!.name}: ${t}`));
  return 0;
}

async function readWeights(path: string): Promise<SafetensorsFile> {
  try {
    return await loadSafetensors(path);
  } catch (e) {
    if (e instanceof KilnError) throw new KilnError(`kiln: --weights ${path}: ${e.message.replace(/^kiln: /, "")}`, { code: e.code });
    throw e;
  }
}

/** The file's tensors over the seeded init, for the reference backend: every name must be a param of the same shape. */
function referenceWeights(ir: IRModule, params: Record<string, Float64Array>, file: SafetensorsFile): void {
  for (const [name, t] of Object.entries(file.tensors)) {
    const p = ir.params.find((x) => x.name === name);
    if (!p) throw new KilnError(`kiln: --weights: tensor "${name}" is not a param of ${ir.source} (params: ${ir.params.map((x) => x.name).join(", ")})`);
    if (t.shape.join(",") !== p.type.shape.join(",")) throw new KilnError(`kiln: --weights: "${name}" is [${t.shape.join(", ")}] but the param is [${p.type.shape.join(", ")}]`);
    if (t.dtype === "f16" || t.dtype === "bf16" || t.dtype === "i8") throw new KilnError(`kiln: --weights: "${name}" is ${t.dtype}; the reference backend takes f32 weights (use the wasm backend for int8 files)`);
    params[name] = Float64Array.from(t.data as ArrayLike<number>);
  }
}

/** Param values exactly as the wasm runtime initialises them (same RNG stream, rounded to f32). */
export function referenceParams(ir: IRModule, seed: number): Record<string, Float64Array> {
  const rng = new Rng(seed);
  const out: Record<string, Float64Array> = {};
  for (const p of ir.params) {
    const data = new Float64Array((p.type.shape as number[]).reduce((a, b) => a * b, 1));
    // A mixed-precision copy holds its master's (f32) values; the reference rounds them to the copy's dtype.
    if (p.init.kind === "copy") data.set(out[p.init.of]);
    else fillInit(p.init, data, rng, p.name);
    if (p.type.dtype === "f32") for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i]);
    out[p.name] = data;
  }
  return out;
}

export async function runOnBackend(
  ir: IRModule,
  g: Graph,
  inputs: Record<string, ParsedInput>,
  dims: Record<string, number>,
  seed: number,
  backend: "wasm" | "reference",
  weights?: SafetensorsFile,
): Promise<Tensor[]> {
  if (backend === "reference") {
    // The same label check as the runtime's (bind.ts): the reference would otherwise give a loss for them.
    for (const i of g.inputs) if (i.classes !== undefined && inputs[i.name]) checkClassLabels(g.name, i.name, i.classes, inputs[i.name]!.data, i.ignoreIndex);
    const params = referenceParams(ir, seed);
    if (weights) referenceWeights(ir, params, weights);
    // The same random streams (dropout masks) as the wasm runtime for this seed.
    const outs = evaluateGraph(g, inputs, params, dims, { random: new RandomStreams(seed) });
    return outs.map((t) => new Tensor(t.dtype === "f32" ? "f64" : t.dtype, t.shape, t.dtype === "f32" ? t.data : Array.from(t.data)));
  }
  const diags = new DiagnosticBag();
  const { buildWasm, checkWasmDtypes } = await import("../compile.js");
  checkWasmDtypes({ ...ir, functions: [g] }, diags);
  if (diags.hasErrors) throw new KilnError(formatDiagnostics(diags.sorted(), {}) + "\nkiln: use --backend reference for this function");
  const build = await buildWasm(ir, basename(ir.source));
  const mod = await loadKilnModule(build.manifest, build.wasm, { seed });
  if (weights) {
    try {
      await loadWeights(mod, weights);
    } catch (e) {
      if (e instanceof KilnError) throw new KilnError(`kiln: --weights: ${e.message.replace(/^kiln: /, "")}`, { code: e.code });
      throw e;
    }
  }
  const given: Record<string, Tensor> = {};
  for (const io of g.inputs) {
    const p = inputs[io.name];
    if (!p) continue;
    const dt = ioType(g, io).dtype;
    given[io.name] = new Tensor(dt, p.shape, p.data);
  }
  const r = mod.call(g.name, given, { dims });
  return Array.isArray(r) ? r : [r];
}
