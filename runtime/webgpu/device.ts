/// <reference types="@webgpu/types" />
// WebGPU runtime, device: finds an adapter (navigator.gpu in a browser, Dawn through the `webgpu` package in
// Node), requests a device with the adapter's limits, and tracks device loss. Every failure is a KilnError that
// says what happened and that the wasm backend is the alternative.

import { KilnError } from "../errors.js";
import { isNode } from "../io.js";

/** GPUBufferUsage / GPUMapMode / GPUShaderStage values, so the runtime needs no WebGPU globals in Node. */
export const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 } as const;
export const MAP_READ = 1;
export const STAGE_COMPUTE = 4;

export interface GpuHandle {
  readonly device: GPUDevice;
  /** "llvmpipe (mesa, lavapipe)", "SwiftShader (google)", ...: for messages and benchmarks. */
  readonly adapter: string;
  /** Whether this handle created the device (and destroys it on dispose). */
  readonly owned: boolean;
  /** Why the device was lost, once it is. */
  lost: string | null;
  /** Dawn's GPU object in Node: the device crashes if it is garbage-collected while the device lives. */
  readonly keepAlive?: unknown;
}

const FALLBACK_HINT = 'use the wasm backend instead (load() or load({ backend: "wasm" }))';

function unavailable(why: string, cause?: unknown): KilnError {
  return new KilnError(`WebGPU is not available: ${why}; ${FALLBACK_HINT}`, { code: "load_failed", cause });
}

// Hidden from bundlers, which would otherwise try to resolve the Node package for a browser build.
const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

interface DawnModule {
  create(flags: string[]): GPU;
}

/** Adapters to try in Node, in order: Vulkan (lavapipe on CPU-only machines), then OpenGL ES compatibility. */
async function nodeAdapter(): Promise<{ adapter: GPUAdapter; keepAlive: unknown; how: string }> {
  let dawn: DawnModule;
  try {
    const mod = (await nodeImport("webgpu")) as Partial<DawnModule> & { default?: Partial<DawnModule> };
    const create = mod.create ?? mod.default?.create;
    if (typeof create !== "function") throw new Error("it has no create()");
    dawn = { create };
  } catch (e) {
    throw unavailable(`the "webgpu" package (Dawn for Node) could not be loaded (${(e as Error).message}); install it with \`npm install webgpu\``, e);
  }
  const tried: string[] = [];
  for (const [flags, how, compat] of [[[], "vulkan", false], [["backend=opengles"], "opengles", true]] as const) {
    // Mesa's EGL needs a platform without a display server.
    if (compat && typeof process !== "undefined") process.env.EGL_PLATFORM ??= "surfaceless";
    try {
      const gpu = dawn.create([...flags]);
      const adapter = await gpu.requestAdapter(compat ? ({ featureLevel: "compatibility" } as GPURequestAdapterOptions) : {});
      if (adapter) return { adapter, keepAlive: gpu, how };
      tried.push(`${how}: no adapter`);
    } catch (e) {
      tried.push(`${how}: ${(e as Error).message}`);
    }
  }
  throw unavailable(`Dawn found no adapter (${tried.join("; ")}); on Linux without a GPU install Mesa's lavapipe (mesa-vulkan-drivers)`);
}

async function browserAdapter(): Promise<GPUAdapter> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw unavailable("this browser has no navigator.gpu (WebGPU is off, or the page is not served from a secure context)");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    throw unavailable(`navigator.gpu.requestAdapter() failed (${(e as Error).message})`, e);
  }
  if (!adapter) throw unavailable("navigator.gpu.requestAdapter() returned null (no usable GPU or WebGPU is blocked)");
  return adapter;
}

export function describeAdapter(info: Partial<GPUAdapterInfo> | undefined, how?: string): string {
  const name = info?.description || info?.device || info?.architecture || "unknown adapter";
  const extra = [info?.vendor, how].filter(Boolean).join(", ");
  return extra ? `${name} (${extra})` : name;
}

/** Limits raised to the adapter's: the defaults (128 MiB bindings, 16 KiB workgroup memory in compat) are low. */
const RAISED_LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxStorageBuffersPerShaderStage", "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ",
] as const;

export interface AcquireOptions {
  /** An existing GPUDevice to run on (not destroyed by dispose()). */
  device?: object;
  /** Features the kernels need (e.g. "shader-f16"); missing ones fail with a KilnError. */
  features?: readonly string[];
  /** Features requested when the adapter has them (e.g. "shader-f16" for native f16 storage). */
  optionalFeatures?: readonly string[];
}

export async function acquireDevice(opts: AcquireOptions = {}): Promise<GpuHandle> {
  if (opts.device) return watch({ device: opts.device as GPUDevice, adapter: describeAdapter((opts.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo), owned: false, lost: null });
  const found = isNode() && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu
    ? await nodeAdapter()
    : { adapter: await browserAdapter(), keepAlive: undefined, how: undefined };
  const { adapter } = found;
  const missing = (opts.features ?? []).filter((f) => !adapter.features.has(f));
  if (missing.length) throw unavailable(`the adapter lacks feature${missing.length > 1 ? "s" : ""} ${missing.join(", ")} that the kernels need`);
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[k];
    if (typeof v === "number") requiredLimits[k] = v;
  }
  let device: GPUDevice;
  try {
    const optional = (opts.optionalFeatures ?? []).filter((f) => adapter.features.has(f));
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures: [...(opts.features ?? []), ...optional] as GPUFeatureName[] });
  } catch (e) {
    throw unavailable(`requestDevice failed (${(e as Error).message})`, e);
  }
  return watch({ device, adapter: describeAdapter(adapter.info, found.how), owned: true, lost: null, keepAlive: found.keepAlive });
}

function watch(h: GpuHandle): GpuHandle {
  void h.device.lost.then((info) => {
    h.lost = `${info.reason === "destroyed" ? "destroyed" : "lost"}${info.message ? `: ${info.message}` : ""}`;
  });
  return h;
}

export function checkAlive(h: GpuHandle, what: string): void {
  if (h.lost !== null) {
    throw new KilnError(`${what}: the WebGPU device was ${h.lost}; load the module again, or ${FALLBACK_HINT}`, { code: "kernel_trap" });
  }
}

/**
 * Runs `encode` inside validation and out-of-memory error scopes; the returned promise rejects with a KilnError
 * (naming `what`) if either caught an error. Scopes are popped synchronously, so nothing else interleaves.
 */
export function scoped(h: GpuHandle, what: string, encode: () => void): Promise<void> {
  const d = h.device;
  d.pushErrorScope("validation");
  d.pushErrorScope("out-of-memory");
  let thrown: { e: unknown } | undefined;
  try {
    encode();
  } catch (e) {
    thrown = { e };
  }
  const oom = d.popErrorScope();
  const invalid = d.popErrorScope();
  if (thrown) {
    oom.catch(() => {});
    invalid.catch(() => {});
    throw thrown.e;
  }
  return Promise.all([oom, invalid]).then(([o, v]) => {
    if (o) throw new KilnError(`${what}: the GPU ran out of memory (${o.message}); use smaller inputs or ${FALLBACK_HINT}`, { code: "out_of_memory" });
    if (v) throw new KilnError(`internal error in ${what}: WebGPU rejected the commands (${v.message}). This is a bug in Kiln; please report it with the model source, and ${FALLBACK_HINT} meanwhile`, { code: "kernel_trap" });
  }, (e: unknown) => {
    throw new KilnError(`${what}: the WebGPU device failed (${(e as Error).message})`, { code: "kernel_trap", cause: e });
  });
}

export { FALLBACK_HINT };
