// Emit stage: the .d.ts of a generated module: per-function input interfaces, exact result types (Tensor<dtype>
// or tuples carrying each output by name), the loaded module's methods and Model namespaces, param-name literals,
// load() per backend choice; imports the runtime (the package's, or ./kiln-runtime when standalone).

import type { FunctionManifest, Manifest, ManifestDType, TensorSig } from "../../runtime/manifest.js";
import { methodLayout } from "../../runtime/layout.js";
import { GPU_MODULE_MEMBERS } from "../../runtime/webgpu/members.js";
import { namedOutputs } from "../../runtime/outputs.js";

const TYPED_ARRAY: Record<ManifestDType, string> = {
  f32: "Float32Array", f64: "Float64Array", i32: "Int32Array", i8: "Int8Array", u8: "Uint8Array",
  bool: "Uint8Array", f16: "Uint16Array", bf16: "Uint16Array",
};

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function prop(name: string): string {
  return IDENT.test(name) ? name : JSON.stringify(name);
}

function pascal(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const s = parts.map((p) => p[0]!.toUpperCase() + p.slice(1)).join("");
  return /^[A-Za-z_$]/.test(s) ? s : "F" + s;
}

function sigText(t: TensorSig): string {
  return `${t.name}: ${t.dtype}[${t.shape.join(", ")}]`;
}

function inputType(t: TensorSig): string {
  const parts = [TYPED_ARRAY[t.dtype], tensorType(t.dtype), "readonly number[]"];
  if (t.shape.length >= 2) parts.push("NestedArray");
  if (t.dtype === "bool") parts.push("readonly boolean[]");
  if (t.shape.length === 0) parts.push(t.dtype === "bool" ? "boolean" : "number");
  return parts.join(" | ");
}

function tensorType(d: ManifestDType): string {
  return `Tensor<${JSON.stringify(d)}>`;
}

/** One output's type, or the tuple of several intersected with their names (runtime/outputs.ts sets them). */
function results(f: FunctionManifest, t: (d: ManifestDType) => string): string {
  if (f.outputs.length === 1) return t(f.outputs[0]!.dtype);
  const tuple = `[${f.outputs.map((o) => t(o.dtype)).join(", ")}]`;
  const named = namedOutputs(f).flatMap((n, i) => (n === undefined ? [] : [`readonly ${n}: ${t(f.outputs[i]!.dtype)}`]));
  return named.length ? `${tuple} & { ${named.join("; ")} }` : tuple;
}

function gpuResultType(f: FunctionManifest): string {
  return results(f, (d) => `GpuTensor<${JSON.stringify(d)}>`);
}

/**
 * The WebGPU module type: the same methods taking the wasm inputs or GpuTensors of this module and returning
 * GpuTensors; getParam is async. Functions named like a KilnGpuModule member are reached through call().
 */
function renderGpuModule(manifest: Manifest, typeName: string, inputsName: ReadonlyMap<string, string>): string[] {
  const out: string[] = [`/** Inputs on WebGPU: each may also be a GpuTensor returned by this module. */\n`];
  out.push(`export type OnGpu<T> = { [K in keyof T]: T[K] | GpuTensor };\n\n`);
  const method = (f: FunctionManifest, indent: string) =>
    `${doc(f, indent)}${indent}${prop(f.jsName)}(inputs: OnGpu<${inputsName.get(f.name)}>, options?: CallOptions<never>): ${gpuResultType(f)};\n`;
  const layout = methodLayout(manifest.functions);
  out.push(`export interface ${typeName} extends KilnGpuModule {\n`);
  for (const [model, fns] of layout.models) {
    if (GPU_MODULE_MEMBERS.includes(model)) continue;
    out.push(`  /** Methods of model ${model}. */\n  readonly ${prop(model)}: {\n`);
    for (const f of fns) out.push(method(f, "    "));
    out.push(`  };\n`);
  }
  for (const f of layout.direct) if (!GPU_MODULE_MEMBERS.includes(f.jsName)) out.push(method(f, "  "));
  for (const f of manifest.functions) {
    out.push(`  call(name: ${JSON.stringify(f.name)}, inputs: OnGpu<${inputsName.get(f.name)}>, options?: CallOptions<never>): ${gpuResultType(f)};\n`);
  }
  out.push(`  call(name: string, inputs: GpuCallInputs, options?: CallOptions<never>): GpuTensor | GpuTensor[];\n`);
  for (const p of manifest.params) out.push(`  getParam(name: ${JSON.stringify(p.name)}): Promise<${tensorType(p.dtype)}>;\n`);
  out.push(`  getParam(name: ParamName): Promise<Tensor>;\n`);
  out.push(`  setParam(name: ParamName, value: ArrayLike<number> | Tensor): void;\n`);
  out.push(`}\n\n`);
  return out;
}

/**
 * The type of `options.out` for `f` (runtime/out-buffers.ts): buffers by output name (outputs sharing a name cannot
 * be named), or one for a one-output function.
 */
function outBuffersType(f: FunctionManifest, name: string): string {
  const names = f.outputs.map((o) => o.name);
  const buf = (d: ManifestDType) => `${TYPED_ARRAY[d]} | ${tensorType(d)}`;
  const fields = f.outputs.flatMap((o) => (names.indexOf(o.name) === names.lastIndexOf(o.name) ? [`readonly ${prop(o.name)}?: ${buf(o.dtype)}`] : []));
  const byName = `{ ${fields.join("; ")}${fields.length ? " " : ""}}`;
  const one = f.outputs.length === 1 ? ` | ${buf(f.outputs[0]!.dtype)}` : "";
  return `/** Buffers ${f.name} writes its results into (options.out, wasm only). */\nexport type ${name} = ${byName}${one};\n\n`;
}

function resultType(f: FunctionManifest): string {
  return results(f, tensorType);
}

function doc(f: FunctionManifest, indent: string): string {
  const outs = f.outputs.map(sigText).join(", ");
  const dims = f.dims.length ? ` Symbolic dims: ${f.dims.join(", ")} (bound from inputs, or options.dims / options.batch).` : "";
  return `${indent}/** ${f.name}(${f.inputs.map(sigText).join(", ")}) -> ${f.outputs.length === 1 ? outs : `(${outs})`}.${dims} */\n`;
}

/** The .d.ts text for a generated module whose .js is `<baseName>.js`, importing the runtime from `runtime`. */
export function renderDts(manifest: Manifest, baseName: string, runtime = "./kiln-runtime/index.js", weightsFile?: string): string {
  const used = new Set<string>([
    "Tensor", "KilnModule", "CallOptions", "CallInputs", "NestedArray", "RuntimeLoadOptions", "Manifest", "ParamName", "LoadOptions", "KilnError",
    "GpuTensor", "KilnGpuModule", "GpuCallInputs", "RuntimeWebGPULoadOptions", "WebGPULoadOptions", "OnGpu",
    "LoadCompiledOptions", "BackendName", "AutoLoadOptions",
  ]);
  const unique = (base: string) => {
    let n = base;
    for (let i = 2; used.has(n); i++) n = `${base}${i}`;
    used.add(n);
    return n;
  };
  const moduleType = unique(`${pascal(baseName)}Module`);
  const gpuModuleType = unique(`${pascal(baseName)}GpuModule`);
  const inputsName = new Map<string, string>();
  for (const f of manifest.functions) inputsName.set(f.name, unique(`${pascal(f.name)}Inputs`));
  const outName = new Map<string, string>();
  for (const f of manifest.functions) outName.set(f.name, unique(`${pascal(f.name)}Out`));

  const out: string[] = [];
  out.push(`// Generated by Kiln (${manifest.compiler}) from ${manifest.source}. Do not edit.\n`);
  const rt = JSON.stringify(runtime);
  out.push(`import type { Tensor, KilnModule, CallOptions, CallInputs, NestedArray, LoadOptions as RuntimeLoadOptions, Manifest } from ${rt};\n`);
  out.push(`import type { GpuTensor, KilnGpuModule, GpuCallInputs, WebGPULoadOptions as RuntimeWebGPULoadOptions } from ${rt};\n`);
  out.push(`import type { LoadCompiledOptions, BackendName } from ${rt};\n`);
  out.push(`export { Tensor, GpuTensor, KilnError } from ${rt};\n`);
  out.push(`export type { CallOptions } from ${rt};\n\n`);
  out.push(`export declare const manifest: Manifest;\n\n`);

  // Mixed-precision copies are derived from their masters (getParam reads them; they are never set).
  const paramNames = manifest.params.filter((p) => p.role !== "copy").map((p) => JSON.stringify(p.name));
  out.push(`/** Qualified param names. */\nexport type ParamName = ${paramNames.length ? paramNames.join(" | ") : "never"};\n\n`);

  for (const f of manifest.functions) {
    out.push(`/** Inputs of ${f.name}. */\nexport interface ${inputsName.get(f.name)} {\n`);
    for (const t of f.inputs) out.push(`  /** ${t.dtype}[${t.shape.join(", ")}] */\n  ${prop(t.name)}: ${inputType(t)};\n`);
    out.push(`}\n\n`);
    out.push(outBuffersType(f, outName.get(f.name)!));
  }

  const opts = (f: FunctionManifest) => `CallOptions<${outName.get(f.name)}>`;
  const method = (f: FunctionManifest, indent: string) =>
    `${doc(f, indent)}${indent}${prop(f.jsName)}(inputs: ${inputsName.get(f.name)}, options?: ${opts(f)}): ${resultType(f)};\n`;
  const layout = methodLayout(manifest.functions);
  out.push(`export interface ${moduleType} extends KilnModule {\n`);
  for (const [model, fns] of layout.models) {
    out.push(`  /** Methods of model ${model}. */\n  readonly ${prop(model)}: {\n`);
    for (const f of fns) out.push(method(f, "    "));
    out.push(`  };\n`);
  }
  for (const f of layout.direct) out.push(method(f, "  "));
  for (const f of manifest.functions) {
    out.push(`  call(name: ${JSON.stringify(f.name)}, inputs: ${inputsName.get(f.name)}, options?: ${opts(f)}): ${resultType(f)};\n`);
  }
  out.push(`  call(name: string, inputs: CallInputs, options?: CallOptions): Tensor | Tensor[];\n`);
  for (const p of manifest.params) out.push(`  getParam(name: ${JSON.stringify(p.name)}): ${tensorType(p.dtype)};\n`);
  out.push(`  getParam(name: ParamName): Tensor;\n`);
  out.push(`  setParam(name: ParamName, value: ArrayLike<number> | Tensor): void;\n`);
  out.push(`}\n\n`);

  const params = `  params?: { [K in ParamName]?: ArrayLike<number> | Tensor };\n`;
  const given = weightsFile ? ` (default: ${weightsFile}, compiled in; null: the seeded init)` : "";
  const weights = `  /** Trained weights (safetensors path, URL or bytes)${given}, loaded strictly (partialWeights: true allows missing ones). */\n  weights?: LoadCompiledOptions["weights"];\n  partialWeights?: boolean;\n`;
  out.push(`export interface LoadOptions extends Omit<RuntimeLoadOptions, "params" | "backend"> {\n  backend?: "wasm";\n`);
  out.push(`  /** Initial values for some params (applied after the seeded init). */\n`);
  out.push(params, weights, `}\n\n`);
  out.push(...renderGpuModule(manifest, gpuModuleType, inputsName));
  out.push(`export interface WebGPULoadOptions extends Omit<RuntimeWebGPULoadOptions, "params"> {\n  backend: "webgpu";\n`);
  out.push(params, weights, `}\n\n`);
  out.push(`/** Several backends tried in order ("auto": WebGPU, then wasm); m.backend says which loaded, m.fallbackReason why. */\n`);
  out.push(`export interface AutoLoadOptions extends Omit<WebGPULoadOptions, "backend"> {\n  backend: "auto" | readonly BackendName[];\n}\n\n`);
  out.push(`/** Loads the module on WebGPU (${manifest.wgsl ? `reads ${manifest.wgsl.file}` : "needs a build with --target all"}): calls return GpuTensors, read with \`await t.read()\`. */\n`);
  out.push(`export declare function load(options: WebGPULoadOptions): Promise<${gpuModuleType}>;\n`);
  out.push(`/** Loads the module on the first backend of the list that starts here; \`await t.read()\` reads results on either. */\n`);
  out.push(`export declare function load(options: AutoLoadOptions): Promise<${moduleType} | ${gpuModuleType}>;\n`);
  out.push(`/** Loads the module: reads ${baseName}.wasm next to this file (fs under Node, fetch in a browser). */\n`);
  out.push(`export declare function load(options?: LoadOptions): Promise<${moduleType}>;\n`);
  return out.join("");
}
