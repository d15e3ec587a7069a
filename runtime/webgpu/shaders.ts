/// <reference types="@webgpu/types" />
// WebGPU runtime, shaders: splits the module's WGSL file into kernels, checks each against the device limits,
// compiles it (getCompilationInfo errors name the kernel, its ops and the offending WGSL line), and builds its
// pipeline with an explicit bind group layout. Pipelines are cached per device and shader text.

import { isHostStep, WGSL_F16_SUFFIX, type Manifest, type WgslKernelManifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import { STAGE_COMPUTE, FALLBACK_HINT, type GpuHandle } from "./device.js";

const MARKER = /^\/\/ @kiln-kernel (\S+)[ \t]*$/gm;

export interface KernelPipeline {
  readonly name: string;
  readonly meta: WgslKernelManifest;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** Kernel name -> its shader text (from its marker line to the next one). */
export function splitWgsl(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const marks = [...text.matchAll(MARKER)];
  marks.forEach((m, i) => {
    const end = i + 1 < marks.length ? marks[i + 1]!.index : text.length;
    out.set(m[1]!, text.slice(m.index! + m[0].length + 1, end));
  });
  return out;
}

/** "ops: add, mul" from the steps that call each kernel, for error messages. */
function opsByKernel(manifest: Manifest): Map<string, Set<string>> {
  const ops = new Map<string, Set<string>>();
  for (const f of manifest.functions) {
    // The kernels that convert a GpuTensor for a 16-bit input (runtime/webgpu/convert.ts).
    for (const i of f.inputs) if (i.convert && !ops.has(i.convert)) ops.set(i.convert, new Set(["cast"]));
    for (const s of f.steps) {
      // Host steps (data-parallel collectives) have no shader; their functions are refused at call (module.ts).
      if (isHostStep(s)) continue;
      let set = ops.get(s.kernel);
      if (!set) ops.set(s.kernel, (set = new Set()));
      for (const o of s.ops ?? []) set.add(o);
    }
  }
  return ops;
}

function checkLimits(h: GpuHandle, name: string, meta: WgslKernelManifest): void {
  const lim = h.device.limits;
  const bound = meta.buffers.filter((b) => b === "read" || b === "write").length + (meta.buffers.includes("pack") ? 1 : 0);
  const problems: string[] = [];
  if (bound > lim.maxStorageBuffersPerShaderStage) problems.push(`${bound} storage buffers (the device allows ${lim.maxStorageBuffersPerShaderStage} per stage)`);
  if (meta.workgroupSize > lim.maxComputeInvocationsPerWorkgroup) problems.push(`${meta.workgroupSize} invocations per workgroup (the device allows ${lim.maxComputeInvocationsPerWorkgroup})`);
  if (meta.workgroupBytes > lim.maxComputeWorkgroupStorageSize) problems.push(`${meta.workgroupBytes} bytes of workgroup memory (the device allows ${lim.maxComputeWorkgroupStorageSize})`);
  if (problems.length) {
    throw new KilnError(`kernel "${name}" needs ${problems.join(" and ")} on ${h.adapter}; compile with smaller tiles, or ${FALLBACK_HINT}`, { code: "load_failed" });
  }
}

/** The WGSL error with its line and a caret under the column. */
function formatCompileErrors(code: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = code.split("\n");
  return messages.map((m) => {
    const src = lines[m.lineNum - 1] ?? "";
    const caret = m.linePos > 0 ? `\n     | ${" ".repeat(m.linePos - 1)}^` : "";
    return `  ${m.lineNum}:${m.linePos}: ${m.message}\n${String(m.lineNum).padStart(4)} | ${src}${caret}`;
  }).join("\n");
}

function layoutEntries(meta: WgslKernelManifest): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: STAGE_COMPUTE, buffer: { type: "uniform" } }];
  let binding = 1;
  let packBound = false;
  for (const b of meta.buffers) {
    if (b === "none" || (b === "pack" && packBound)) continue;
    packBound ||= b === "pack";
    entries.push({ binding: binding++, visibility: STAGE_COMPUTE, buffer: { type: b === "write" ? "storage" : "read-only-storage" } });
  }
  return entries;
}

const cache = new WeakMap<GPUDevice, Map<string, Promise<{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>>>();

async function compile(h: GpuHandle, name: string, code: string, meta: WgslKernelManifest, ops: string): Promise<{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }> {
  const d = h.device;
  // The scope keeps a bad shader's error out of the uncaptured-error channel; getCompilationInfo reports it.
  d.pushErrorScope("validation");
  const module = d.createShaderModule({ label: name, code });
  const info = await module.getCompilationInfo();
  await d.popErrorScope();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length) {
    throw new KilnError(
      `internal error: the WGSL of kernel "${name}" (ops: ${ops}) does not compile on ${h.adapter}. This is a bug in Kiln; please report it with the model source, and ${FALLBACK_HINT} meanwhile.\n${formatCompileErrors(code, errors)}`,
      { code: "bad_manifest" },
    );
  }
  const layout = d.createBindGroupLayout({ label: name, entries: layoutEntries(meta) });
  try {
    const pipeline = await d.createComputePipelineAsync({ label: name, layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: "main" } });
    return { pipeline, layout };
  } catch (e) {
    throw new KilnError(`kernel "${name}" (ops: ${ops}): WebGPU could not create its pipeline on ${h.adapter} (${(e as Error).message}); ${FALLBACK_HINT}`, { code: "load_failed", cause: e });
  }
}

/**
 * Compiles every kernel the manifest's functions call (in parallel; identical shaders once per device). With
 * `nativeF16`, kernels that touch f16 compile from their `__f16` section (array<f16>; the device has shader-f16).
 */
export async function buildPipelines(h: GpuHandle, manifest: Manifest, wgslText: string, nativeF16 = false): Promise<Map<string, KernelPipeline>> {
  const ops = new Map([...opsByKernel(manifest)].map(([k, set]) => [k, [...set].join(", ") || "unknown"]));
  const section = (name: string) => (nativeF16 && manifest.wgsl!.kernels[name]?.f16 ? `${name}${WGSL_F16_SUFFIX}` : name);
  return buildKernelPipelines(h, manifest, wgslText, ops, "a step calls kernel", section);
}

/**
 * Compiles the named kernels (name -> ops, for messages). `section` picks the part of the file to compile for a
 * kernel (default its own; the int8 kernels' dot4I8Packed sections share their manifest entry).
 */
export async function buildKernelPipelines(
  h: GpuHandle, manifest: Manifest, wgslText: string, kernels: ReadonlyMap<string, string>, what: string, section: (name: string) => string = (n) => n,
): Promise<Map<string, KernelPipeline>> {
  const wgsl = manifest.wgsl!;
  const codes = splitWgsl(wgslText);
  let perDevice = cache.get(h.device);
  if (!perDevice) cache.set(h.device, (perDevice = new Map()));
  const out = new Map<string, KernelPipeline>();
  await Promise.all([...kernels].map(async ([name, ops]) => {
    const meta = wgsl.kernels[name];
    const code = codes.get(section(name));
    if (!meta || code === undefined) {
      throw new KilnError(`invalid module: ${what} "${section(name)}", which the WGSL file ${wgsl.file} ${meta ? "does not contain" : "manifest does not describe"}`, { code: "bad_manifest" });
    }
    checkLimits(h, name, meta);
    // The header comment names the kernel; identical bodies (from `enable f16;` if any) share one pipeline.
    const key = `${JSON.stringify(meta.buffers)}\n${code.replace(/^(\/\/.*\n|\n)*/, "")}`;
    let p = perDevice!.get(key);
    if (!p) {
      p = compile(h, name, code, meta, ops);
      perDevice!.set(key, p);
      p.catch(() => perDevice!.delete(key));
    }
    const { pipeline, layout } = await p;
    out.set(name, { name, meta, pipeline, layout });
  }));
  return out;
}

const dot4Probes = new WeakMap<GPUDevice, Promise<boolean>>();

/**
 * Whether WGSL on this device has dot4I8Packed (the packed_4x8_integer_dot_product language feature): from the
 * GPU object's wgslLanguageFeatures when known, else (a device passed in, in Node) by compiling a probe once.
 */
export function hasPackedDot4(h: GpuHandle): Promise<boolean> {
  const gpu = (h.keepAlive ?? (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) as { wgslLanguageFeatures?: ReadonlySet<string> } | undefined;
  const known = gpu?.wgslLanguageFeatures;
  if (known) return Promise.resolve(known.has("packed_4x8_integer_dot_product"));
  let p = dot4Probes.get(h.device);
  if (!p) dot4Probes.set(h.device, (p = probeDot4(h.device)));
  return p;
}

async function probeDot4(d: GPUDevice): Promise<boolean> {
  d.pushErrorScope("validation");
  const module = d.createShaderModule({ label: "kiln dot4I8Packed probe", code: "@compute @workgroup_size(1) fn main() { _ = dot4I8Packed(1u, 2u); }" });
  const info = await module.getCompilationInfo().catch(() => null);
  const err = await d.popErrorScope().catch(() => null);
  return info !== null && err === null && !info.messages.some((m) => m.type === "error");
}
