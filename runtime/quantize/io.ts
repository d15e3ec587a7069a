// Quantized weights as safetensors: each quantized weight as an I8 tensor in its param's shape plus an F32
// "NAME.scale" tensor (one scale per output channel), every other weight as F32, and metadata saying how (and,
// for static quantization, the calibrated activation ranges). About 4x smaller than the f32 file. Wasm and
// WebGPU modules (whose params are read back asynchronously, so only the async entry points take them).

import { checkNoMissingWeights, checkWeightType, type LoadWeightsOptions } from "../weights-check.js";
import { KilnError } from "../errors.js";
import type { KilnModule } from "../wasm/module.js";
import { Tensor } from "../tensor.js";
import { safetensorsFileOf, saveSafetensors, serializeSafetensors, type SafetensorsFile } from "../safetensors.js";
import type { Source } from "../data/source.js";
import { finish, quantizationOf, restoreFloat, type Int8Choice, type QuantizeReport } from "./dynamic.js";
import { KilnGpuModule } from "../webgpu/module.js";
import { finishGpu } from "../webgpu/quantize.js";
import { checkQuantizedWeight, dequantizeWeight, type LinearQuant, type QuantizedWeight } from "./math.js";

const META_KEY = "kiln.quantization";

interface QuantMeta {
  version: 1;
  mode: "dynamic" | "static";
  /** Quantized weight -> its scale tensor and orientation (channels along axis 1, or axis 0 when transposed). */
  weights: Record<string, { scale: string; transposed: boolean }>;
  /** Static mode: the calibrated function and, per int8 step (by the float step it replaces), its activations. */
  activations?: { fn: string; steps: { step: number; weight: string; input: LinearQuant; output?: LinearQuant }[] };
}

/** The quantized module's weights as safetensors tensors and metadata (the module must be quantized). */
export function quantizedWeightsFile(mod: KilnModule): SafetensorsFile {
  return weightsFile(mod, (n) => mod.getParam(n));
}

const notQuantized = () => new KilnError(`saveQuantized: the module is not quantized; call quantizeDynamic or quantizeStatic first`, { code: "bad_option" });

function weightsFile(mod: KilnModule | KilnGpuModule, param: (name: string) => Tensor): SafetensorsFile {
  const q = quantizationOf(mod);
  if (!q) throw notQuantized();
  const tensors: Record<string, Tensor> = {};
  const meta: QuantMeta = { version: 1, mode: q.mode, weights: {} };
  for (const p of mod.manifest.params) {
    if (p.role === "state" || p.role === "copy") continue; // copies are derived from their masters on load
    const w = q.weights.get(p.name);
    if (!w) {
      tensors[p.name] = param(p.name);
      continue;
    }
    if (tensors[`${p.name}.scale`] || mod.manifest.params.some((x) => x.name === `${p.name}.scale`)) {
      throw new KilnError(`saveQuantized: cannot name the scales of "${p.name}" "${p.name}.scale": a param has that name`, { code: "bad_option", tensor: p.name });
    }
    tensors[p.name] = new Tensor("i8", [...p.shape], w.q);
    tensors[`${p.name}.scale`] = new Tensor("f32", [w.N], w.scales);
    meta.weights[p.name] = { scale: `${p.name}.scale`, transposed: w.transposed };
  }
  if (q.mode === "static") {
    const [[fn, choices]] = [...q.choices] as [[string, Int8Choice[]]];
    meta.activations = { fn, steps: choices.map((c) => ({ step: c.variant.replaces[0]!, weight: c.variant.weight, input: c.input!, ...(c.output ? { output: c.output } : {}) })) };
  }
  const metadata = { format: "kiln-weights", source: mod.manifest.source, quantized: "int8", [META_KEY]: JSON.stringify(meta) };
  return { tensors, metadata };
}

/** The file's bytes; on a WebGPU module a promise (its float params are read back from the GPU). */
export function serializeQuantized(mod: KilnGpuModule): Promise<Uint8Array>;
export function serializeQuantized(mod: KilnModule): Uint8Array;
export function serializeQuantized(mod: KilnModule | KilnGpuModule): Uint8Array | Promise<Uint8Array> {
  if (!(mod instanceof KilnGpuModule)) {
    const f = quantizedWeightsFile(mod);
    return serializeSafetensors(f.tensors, f.metadata);
  }
  return gpuWeightsFile(mod).then((f) => serializeSafetensors(f.tensors, f.metadata));
}

async function gpuWeightsFile(mod: KilnGpuModule): Promise<SafetensorsFile> {
  if (!quantizationOf(mod)) throw notQuantized();
  const params = await mod.paramsByName();
  return weightsFile(mod, (n) => params[n]!);
}

export async function saveQuantized(mod: KilnModule | KilnGpuModule, path: string): Promise<void> {
  const f = mod instanceof KilnGpuModule ? await gpuWeightsFile(mod) : quantizedWeightsFile(mod);
  await saveSafetensors(path, f.tensors, f.metadata);
}


function fail(msg: string, tensor?: string): never {
  throw new KilnError(msg, { code: "load_failed", ...(tensor ? { tensor } : {}) });
}

/**
 * Loads a file written by saveQuantized and runs the module on it in int8 (dynamic, or static with the saved
 * ranges). The f32 params of quantized weights get their dequantized values. Everything is checked first: a
 * float file, a weight this module has no int8 kernels for, bad shapes or values are errors naming the tensor.
 */
export async function loadQuantized(mod: KilnModule | KilnGpuModule, src: Source | SafetensorsFile | Uint8Array, opts: LoadWeightsOptions = {}): Promise<QuantizeReport> {
  const file = await safetensorsFileOf(src);
  if (file.metadata.quantized !== "int8" || !file.metadata[META_KEY]) {
    const first = Object.keys(file.tensors)[0];
    fail(`loadQuantized: the file holds float weights (no "quantized" metadata${first ? `, e.g. tensor "${first}" is ${file.tensors[first]!.dtype}` : ""}); set them with setParam (or loadWeights) and call quantizeDynamic`, first);
  }
  let meta: QuantMeta;
  try {
    meta = JSON.parse(file.metadata[META_KEY]!) as QuantMeta;
  } catch {
    return fail(`loadQuantized: metadata "${META_KEY}" is not valid JSON`);
  }
  if (meta.version !== 1 || (meta.mode !== "dynamic" && meta.mode !== "static")) fail(`loadQuantized: unsupported quantization metadata (version ${meta.version}, mode ${meta.mode})`);
  const params = new Map(mod.manifest.params.map((p) => [p.name, p]));
  const variants = mod.manifest.functions.flatMap((f) => (f.int8 ?? []).map((v) => ({ f, v })));
  const weights = new Map<string, QuantizedWeight>();
  for (const [name, info] of Object.entries(meta.weights)) {
    const p = params.get(name) ?? fail(`loadQuantized: quantized tensor "${name}" is not a param of this module`, name);
    const use = variants.find((x) => x.v.weight === name);
    if (!use) fail(`loadQuantized: tensor "${name}" is int8 but this module has no int8 kernel for it (a float module: not a matmul weight, or compiled by an older Kiln); load float weights instead`, name);
    if (use!.v.transposed !== info.transposed) fail(`loadQuantized: tensor "${name}" was quantized ${info.transposed ? "" : "not "}transposed, but this module reads it the other way`, name);
    const t = file.tensors[name] ?? fail(`loadQuantized: tensor "${name}" is missing`, name);
    const s = file.tensors[info.scale] ?? fail(`loadQuantized: scale tensor "${info.scale}" of "${name}" is missing`, info.scale);
    const shape = `[${p.shape.join(", ")}]`;
    if (t.dtype !== "i8" || t.shape.join() !== p.shape.join()) fail(`loadQuantized: tensor "${name}" must be i8${shape} (quantized), got ${t.dtype}[${t.shape.join(", ")}]`, name);
    const [K, N] = info.transposed ? [p.shape[1]!, p.shape[0]!] : [p.shape[0]!, p.shape[1]!];
    if (s.dtype !== "f32" || s.shape.join() !== String(N)) fail(`loadQuantized: scale tensor "${info.scale}" must be f32[${N}], got ${s.dtype}[${s.shape.join(", ")}]`, info.scale);
    const w: QuantizedWeight = { q: t.data as Int8Array, scales: s.data as Float32Array, K, N, transposed: info.transposed };
    checkQuantizedWeight(name, w);
    weights.set(name, w);
  }
  const scaleNames = new Set(Object.values(meta.weights).map((w) => w.scale));
  const floats: [string, Tensor][] = [];
  for (const [name, t] of Object.entries(file.tensors)) {
    if (weights.has(name) || scaleNames.has(name)) continue;
    const p = params.get(name) ?? fail(`loadQuantized: tensor "${name}" is not a param of this module`, name);
    if (t.dtype !== p.dtype || t.shape.join() !== p.shape.join()) fail(`loadQuantized: tensor "${name}" must be ${p.dtype}[${p.shape.join(", ")}], got ${t.dtype}[${t.shape.join(", ")}]`, name);
    floats.push([name, t]);
  }
  checkNoMissingWeights(mod.manifest, new Set([...weights.keys(), ...floats.map(([n]) => n)]), "loadQuantized", opts);
  const choices = new Map<string, Int8Choice[]>();
  if (meta.mode === "dynamic") {
    for (const { f, v } of variants) if (weights.has(v.weight)) choices.set(f.name, [...(choices.get(f.name) ?? []), { variant: v, static: false }]);
  } else {
    const a = meta.activations ?? fail(`loadQuantized: static quantization without activation ranges`);
    const fn = mod.manifest.functions.find((f) => f.name === a.fn);
    const list = (fn?.int8 ?? []).map((v) => {
      const s = a.steps.find((x) => x.step === v.replaces[0] && x.weight === v.weight);
      if (!s || (v.staticOut === "q8" && !s.output)) fail(`loadQuantized: the saved activation ranges do not match ${a.fn} in this module (recompiled since?); calibrate again with quantizeStatic`);
      return { variant: v, static: true, input: s!.input, ...(s!.output ? { output: s!.output } : {}) };
    });
    if (!fn || list.length !== a.steps.length) fail(`loadQuantized: the saved activation ranges do not match ${a.fn} in this module; calibrate again with quantizeStatic`);
    choices.set(fn!.name, list);
  }
  // Checked: now write the f32 params (dequantized weights too, for any f32 function) and switch.
  restoreFloat(mod);
  for (const [name, t] of floats) mod.setParam(name, t);
  const f32 = new Map([...weights].map(([name, w]) => [name, dequantizeWeight(w)]));
  for (const [name, w] of f32) mod.setParam(name, w);
  return mod instanceof KilnGpuModule ? finishGpu(mod, meta.mode, choices, weights, (n) => f32.get(n)!) : finish(mod, meta.mode, choices, weights);
}

/** Loads a weights file of either kind: float tensors through setParam, a quantized file through loadQuantized. */
export async function loadWeights(mod: KilnModule | KilnGpuModule, src: Source | SafetensorsFile | Uint8Array, opts: LoadWeightsOptions = {}): Promise<QuantizeReport | undefined> {
  const file = await safetensorsFileOf(src);
  if (file.metadata.quantized) return loadQuantized(mod, file, opts);
  const names = mod.manifest.params.map((p) => p.name);
  for (const [name, t] of Object.entries(file.tensors)) {
    if (!names.includes(name)) fail(`loadWeights: tensor "${name}" of the file is not a param of ${mod.manifest.source || "this module"} (params: ${names.join(", ") || "none"})`, name);
    checkWeightType(mod.manifest, name, t, "loadWeights");
  }
  checkNoMissingWeights(mod.manifest, new Set(Object.keys(file.tensors)), "loadWeights", opts);
  for (const [name, t] of Object.entries(file.tensors)) mod.setParam(name, t);
  return undefined;
}
