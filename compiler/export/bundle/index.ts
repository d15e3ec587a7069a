// Bundle export: one self-contained ES module from a compiled module: the wasm builds (plain and relaxed SIMD),
// the WGSL, the manifest, the weights (as given: f32, 16-bit, or int8 from `kiln quantize --out`) and the
// runtime modules its loader imports, linked into one file. Deterministic: the same inputs give the same bytes.

import { join } from "node:path";
import type { IRModule } from "../../ir/graph.js";
import { buildWasm, withWgsl } from "../../compile.js";
import { findPackageRoot } from "../../emit/module-writer.js";
import { COMPILER_VERSION } from "../../version.js";
import { linkRuntime } from "./link.js";

export interface BundleInput {
  ir: IRModule;
  baseName: string;
  /** The checked weights file's bytes (safetensors), embedded as is; absent: params from the init rules. */
  weights?: Uint8Array;
  /** Whether `weights` holds int8-quantized layers (then the quantize loader is linked in too). */
  quantized: boolean;
}

/** Base64 in lines of 76 characters, so editors and diff tools cope with the file. */
function base64(bytes: Uint8Array): string {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < s.length; i += 76) lines.push(s.slice(i, i + 76));
  return lines.map((l) => `"${l}"`).join(" +\n  ");
}

export async function writeBundle(b: BundleInput): Promise<{ text: string; modules: string[] }> {
  const w = await buildWasm(b.ir, b.baseName);
  const g = withWgsl(w.manifest, w.plan, b.baseName);
  // The bundle reads no files: the manifest's file names only label the embedded parts.
  const manifest = g.manifest;
  const root = join(await findPackageRoot(), "dist", "runtime");
  const entries = ["wasm/module.js", "webgpu/module.js", "tensor.js", "errors.js", "safetensors.js", ...(b.quantized ? ["quantize/io.js"] : [])];
  const { script, modules } = await linkRuntime(root, entries);
  const text = `// Kiln bundle of ${b.ir.source} (kiln ${COMPILER_VERSION}): the wasm kernels, WGSL shaders, manifest, weights and the
// runtime modules they need, in one ES module that reads no other file. Generated; do not edit.
// const m = await (await import("./${b.baseName}.bundle.js")).load();   // wasm; load({ backend: "webgpu" }) for WebGPU
// Runtime modules: ${modules.join(", ")}
${script}
const { loadKilnModule } = __kiln_modules["wasm/module.js"];
const { loadKilnModuleWebGPU, GpuTensor } = __kiln_modules["webgpu/module.js"];
const { parseSafetensors } = __kiln_modules["safetensors.js"];
${b.quantized ? 'const { loadWeights } = __kiln_modules["quantize/io.js"];\n' : ""}export const Tensor = __kiln_modules["tensor.js"].Tensor;
export const KilnError = __kiln_modules["errors.js"].KilnError;
export { GpuTensor };

export const manifest = ${JSON.stringify(manifest)};

function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const WASM = ${base64(w.wasm)};
const WASM_RELAXED = ${base64(w.wasmRelaxed)};
const WGSL = ${JSON.stringify(g.wgsl)};
const WEIGHTS = ${b.weights ? base64(b.weights) : "undefined"};

/**
 * Loads the module with the embedded weights${b.weights ? "" : " (none were given: params come from their init rules and options.seed)"}.
 * Options as for a compiled module's load(): seed, params (override embedded ones), threads, backend: "webgpu".
 */
export async function load(options = {}) {
${b.quantized
    ? `  const mod = options.backend === "webgpu" ? await loadKilnModuleWebGPU(manifest, WGSL, options) : await loadKilnModule(manifest, bytes(WASM), { relaxedWasm: async () => bytes(WASM_RELAXED), ...options });
  // int8 layers: the quantized loader switches the module to its int8 kernels.
  await loadWeights(mod, bytes(WEIGHTS));
  if (options.params) for (const [k, v] of Object.entries(options.params)) mod.setParam(k, v);
  return mod;`
    : `  const embedded = WEIGHTS === undefined ? {} : parseSafetensors(bytes(WEIGHTS), { name: "${b.baseName}.bundle.js" }).tensors;
  const opts = { ...options, params: { ...embedded, ...(options.params ?? {}) } };
  if (options.backend === "webgpu") return loadKilnModuleWebGPU(manifest, WGSL, opts);
  return loadKilnModule(manifest, bytes(WASM), { relaxedWasm: async () => bytes(WASM_RELAXED), ...opts });`}
}
`;
  return { text, modules };
}
