/// <reference types="@webgpu/types" />
// WebGPU runtime, the loaded module: loadKilnModuleWebGPU acquires a device, compiles every kernel's shader,
// uploads the params (initialised exactly as on wasm: same seeded RNG stream, same order) and exposes the same
// functions as the wasm module. Calls return GpuTensors at once; `await t.read()` waits for the GPU.

import { isHostStep, type FunctionManifest, type Manifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import { allocTypedArray, encodeNumbersLoose, type DType } from "../dtype.js";
import { Tensor } from "../tensor.js";
import { initParams } from "../init.js";
import { methodLayout } from "../layout.js";
import type { CallInputs, CallOptions, InputValue } from "../bind.js";
import { checkKernelIntegrity, checkManifestIntegrity } from "../integrity.js";
import { checkLoadOptions, checkManifest, encodeParamValue, type LoadOptions, type ParamInfo } from "../wasm/module.js";
import { acquireDevice, checkAlive, type GpuHandle } from "./device.js";
import { BufferPool, bytesOf, fromWords, readBack, toWords, upload } from "./buffers.js";
import { buildPipelines } from "./shaders.js";
import { buildGuardKit } from "./guards.js";
import { GpuFunctionExecutor, type GpuModuleContext, type GpuParam, type GpuState } from "./executor.js";
import { GpuTensor } from "./gpu-tensor.js";
import { GPU_MODULE_MEMBERS } from "./members.js";
import { withOutputNames } from "../outputs.js";

export interface WebGPULoadOptions extends Omit<LoadOptions, "backend"> {
  backend?: "webgpu";
  /** A GPUDevice to run on (e.g. one shared by several modules); the module does not destroy it. */
  device?: object;
  /** Longest wait for a readback before it fails with a KilnError (default 60000 ms). */
  timeoutMs?: number;
  /**
   * How kernels store f16 tensors: "native" as array<f16> (needs the adapter feature shader-f16; a KilnError
   * otherwise), "packed" two per 32-bit word (any adapter), "auto" (default) native where the device has
   * shader-f16, else packed. Results are the same bits either way; bf16 is always packed.
   */
  f16?: "auto" | "native" | "packed";
}

/** Picks the f16 kernels (native or packed) for a module on this device; null when no kernel touches f16. */
function halfStorageFor(manifest: Manifest, h: GpuHandle, mode: string): "native" | "packed" | null {
  if (!Object.values(manifest.wgsl!.kernels).some((k) => k.f16)) return null;
  const has = h.device.features.has("shader-f16");
  if (mode === "native" && !has) {
    throw new KilnError(
      `loadKilnModuleWebGPU: f16: "native" needs the WebGPU feature "shader-f16", which ${h.adapter} ${h.owned ? "does not have" : "(the device passed in) was not created with"}; ` +
        `load with { f16: "packed" } (or "auto", the default) to store f16 tensors two per 32-bit word instead (same results), or use the wasm backend`,
      { code: "load_failed" },
    );
  }
  return mode !== "packed" && has ? "native" : "packed";
}

/** What a WebGPU call accepts for one input: anything the wasm backend accepts, or a GpuTensor of this module. */
export type GpuInputValue = InputValue | GpuTensor;
export type GpuCallInputs = Record<string, GpuInputValue>;
export type KilnGpuFunction = (inputs: GpuCallInputs | GpuInputValue, options?: CallOptions) => GpuTensor | GpuTensor[];


/** Key of KilnGpuModule's internal state accessor (a symbol, so no function name can shadow it). */
export const GPU_STATE: unique symbol = Symbol("kiln.gpuState");

export class KilnGpuModule {
  readonly manifest: Manifest;
  readonly functions: string[];
  readonly backend = "webgpu" as const;
  /** CPU threads running kernels: none, the GPU runs them (the wasm module's count of threads). */
  readonly threads = null;
  /** Why an earlier backend of `backend: "auto"` or a list was passed over; null when none was. */
  readonly fallbackReason: string | null = null;
  /** The adapter the module runs on, e.g. "llvmpipe (mesa, vulkan)". */
  readonly adapter: string;
  /** How the kernels store f16 tensors ("native" array<f16> or "packed" words; load option f16); null: no f16. */
  readonly halfStorage: "native" | "packed" | null;
  #state: GpuState | null;

  /**
   * Use loadKilnModuleWebGPU() or the generated load({ backend: "webgpu" }). The state is typed `object` so the
   * public declarations need no WebGPU types.
   */
  constructor(manifest: Manifest, state: object) {
    const s = state as GpuState;
    this.manifest = manifest;
    this.functions = manifest.functions.map((f) => f.name);
    this.adapter = s.ctx.h.adapter;
    this.halfStorage = s.halfStorage ?? null;
    this.#state = s;
  }

  #live(what: string): GpuState {
    if (!this.#state) throw new KilnError(`${what}: the module has been disposed`, { code: "disposed" });
    return this.#state;
  }

  /** Runs a function (qualified or unambiguous method name); GpuTensors come back before the GPU has finished. */
  call(name: string, inputs: GpuCallInputs | GpuInputValue, options?: CallOptions): GpuTensor | GpuTensor[] {
    const state = this.#live(String(name));
    const exec = resolve(this.manifest, state.executors, name);
    const stale = state.frozen && exec.fn.updates?.find((u) => state.frozen!.has(u.param));
    if (stale) throw new KilnError(`${exec.fn.name} updates param "${stale.param}", ${state.frozen!.get(stale.param)}`, { code: "bad_option", fn: exec.fn.name, tensor: stale.param });
    const out = exec.run(inputs, options);
    return out.length === 1 ? out[0]! : withOutputNames(exec.fn, out);
  }

  params(): ParamInfo[] {
    return this.manifest.params.map((p) => ({ name: p.name, dtype: p.dtype, shape: [...p.shape] }));
  }

  /** A copy of a param's current value (read back from the GPU). */
  async getParam(name: string): Promise<Tensor> {
    const { ctx } = this.#live("getParam");
    const slot = paramSlot(ctx, this.manifest, name, "getParam");
    checkAlive(ctx.h, "getParam");
    const bytes = await readBack(ctx.h, ctx.pool, slot.buffer, bytesOf(slot.param.dtype, slot.numel), ctx.timeoutMs, `getParam("${name}")`);
    return new Tensor(slot.param.dtype, slot.param.shape, fromWords(slot.param.dtype, bytes, slot.numel));
  }

  /** Overwrites a param (same checks as the wasm module); ordered before every later call. */
  setParam(name: string, value: ArrayLike<number> | Tensor): void {
    const { ctx, frozen } = this.#live("setParam");
    const slot = paramSlot(ctx, this.manifest, name, "setParam");
    if (frozen?.has(name)) throw new KilnError(`setParam: param "${name}" ${frozen.get(name)}`, { code: "bad_option", tensor: name });
    if (slot.param.role === "copy") {
      throw new KilnError(`setParam: param "${name}" is the ${slot.param.dtype} copy of "${slot.param.copyOf}" that mixed precision derives from it; set "${slot.param.copyOf}" instead`, { code: "bad_option", tensor: name });
    }
    checkAlive(ctx.h, "setParam");
    const encoded = encodeParamValue(name, slot.param, slot.numel, value);
    upload(ctx.h, slot.buffer, toWords(slot.param.dtype, encoded));
    // Mixed-precision copies of this master follow it, rounded to their dtype (as on wasm).
    for (const c of this.manifest.params.filter((q) => q.role === "copy" && q.copyOf === name)) {
      const copy = allocTypedArray(c.dtype as DType, slot.numel);
      encodeNumbersLoose(c.dtype, encoded as ArrayLike<number>, copy);
      upload(ctx.h, ctx.params.get(c.name)!.buffer, toWords(c.dtype as DType, copy));
    }
  }

  async paramsByName(): Promise<Record<string, Tensor>> {
    const out: Record<string, Tensor> = {};
    for (const p of this.manifest.params) out[p.name] = await this.getParam(p.name);
    return out;
  }

  /** Waits until the GPU has finished every call so far; rejects with the first GPU error not yet reported. */
  async sync(): Promise<void> {
    const { ctx } = this.#live("sync");
    const pending = [...ctx.pending];
    ctx.pending.clear();
    await Promise.all(pending);
    checkAlive(ctx.h, "sync");
    await ctx.h.device.queue.onSubmittedWorkDone();
  }

  /** For runtime/webgpu/quantize.ts only (a GpuState; typed `object` so the declarations need no WebGPU types). */
  [GPU_STATE](what: string): object {
    return this.#live(what);
  }

  /** Frees the GPU buffers (and the device, unless it was passed in); later calls throw. */
  dispose(): void {
    const s = this.#state;
    if (!s) return;
    this.#state = null;
    s.ctx.disposed = true;
    for (const e of s.executors.values()) e.dispose();
    s.ctx.pool.destroyAll();
    if (s.ctx.h.owned) s.ctx.h.device.destroy();
  }
}

function resolve(manifest: Manifest, executors: Map<string, GpuFunctionExecutor>, name: string): GpuFunctionExecutor {
  const exact = executors.get(name);
  if (exact) return exact;
  const host = manifest.functions.find((f) => (f.name === name || f.jsName === name) && f.steps.some(isHostStep));
  if (host) throw new KilnError(`${host.name} has data-parallel host steps (its gradient buckets, sync_batch_norm's all_reduce), which run on the wasm backend only: train data-parallel with the wasm backend`, { code: "bad_option", fn: host.name });
  const byJs = manifest.functions.filter((f) => f.jsName === name);
  if (byJs.length === 1) return executors.get(byJs[0]!.name)!;
  if (byJs.length > 1) {
    throw new KilnError(`"${name}" is ambiguous: it is ${byJs.map((f) => f.name).join(" and ")}; call it by its qualified name`, { code: "unknown_function", fn: name });
  }
  throw new KilnError(`unknown function "${name}"; available functions: ${manifest.functions.map((f) => f.name).join(", ") || "none"}`, { code: "unknown_function", fn: name });
}

function paramSlot(ctx: GpuModuleContext, manifest: Manifest, name: string, what: string): GpuParam {
  const slot = ctx.params.get(name);
  if (!slot) {
    throw new KilnError(`${what}: unknown param "${name}"; params: ${manifest.params.map((p) => p.name).join(", ") || "none"}`, { code: "unknown_param", tensor: name });
  }
  return slot;
}

function uploadParams(h: GpuHandle, pool: BufferPool, manifest: Manifest, seed: number): Map<string, GpuParam> {
  const params = new Map<string, GpuParam>();
  const numels = manifest.params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  const slots = manifest.params.map((p, i) => ({ name: p.name, init: p.init, numel: numels[i]! }));
  // The same stream as the wasm backend (runtime/init.ts), so one seed gives both backends the same params.
  initParams(slots, seed, (i, values) => {
    const p = manifest.params[i]!;
    const encoded = allocTypedArray(p.dtype as DType, numels[i]!);
    encodeNumbersLoose(p.dtype, values, encoded);
    const buffer = pool.acquire(bytesOf(p.dtype as DType, numels[i]!));
    upload(h, buffer, toWords(p.dtype, encoded));
    params.set(p.name, { param: p, buffer, numel: numels[i]! });
  });
  return params;
}

function installMethods(mod: KilnGpuModule, fns: FunctionManifest[]): void {
  const method = (f: FunctionManifest): KilnGpuFunction => {
    const m = (inputs: GpuCallInputs | GpuInputValue, options?: CallOptions) => mod.call(f.name, inputs, options);
    Object.defineProperty(m, "name", { value: f.jsName });
    return m;
  };
  const { models, direct } = methodLayout(fns);
  for (const [model, list] of models) {
    if (GPU_MODULE_MEMBERS.includes(model)) continue;
    const ns = Object.create(null) as Record<string, KilnGpuFunction>;
    for (const f of list) ns[f.jsName] = method(f);
    Object.defineProperty(mod, model, { value: Object.freeze(ns), enumerable: true });
  }
  for (const f of direct) if (!GPU_MODULE_MEMBERS.includes(f.jsName)) Object.defineProperty(mod, f.jsName, { value: method(f), enumerable: true });
}

/**
 * Loads a compiled module on WebGPU: `wgsl` is the text of the module's .wgsl file (compiled with --target wgsl
 * or all). Same methods and params as loadKilnModule, but calls return GpuTensors (`await t.read()`) and
 * getParam is async. Without a usable adapter this fails with a KilnError of code "load_failed".
 */
export async function loadKilnModuleWebGPU<T extends object = Record<string, unknown>>(
  manifest: Manifest,
  wgsl: string,
  options: WebGPULoadOptions = {},
): Promise<KilnGpuModule & T> {
  checkManifest(manifest);
  checkManifestIntegrity(manifest);
  if (typeof wgsl === "string" && wgsl !== "") checkKernelIntegrity(manifest, "wgsl", wgsl);
  const seed = checkLoadOptions(manifest, options, "loadKilnModuleWebGPU");
  if (!manifest.wgsl || typeof wgsl !== "string" || wgsl === "") {
    throw new KilnError(`this module was compiled without the WGSL target: recompile it with \`kiln compile --target all\` (or --target wgsl) to run it on WebGPU`, { code: "bad_option" });
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(timeoutMs > 0)) throw new KilnError(`loadKilnModuleWebGPU: timeoutMs must be a positive number of milliseconds`, { code: "bad_option" });
  for (const p of manifest.params) {
    if (p.dtype === "f64") throw new KilnError(`param "${p.name}" is f64, which WebGPU cannot store; use the wasm backend`, { code: "bad_manifest", tensor: p.name });
  }
  const f16 = options.f16 ?? "auto";
  if (f16 !== "auto" && f16 !== "native" && f16 !== "packed") {
    throw new KilnError(`loadKilnModuleWebGPU: f16 must be "auto", "native" or "packed", got ${JSON.stringify(f16)}`, { code: "bad_option" });
  }
  const wantF16 = f16 !== "packed" && Object.values(manifest.wgsl.kernels).some((k) => k.f16);
  const h = await acquireDevice(options.device ? { device: options.device } : { optionalFeatures: wantF16 ? ["shader-f16"] : [] });
  const pool = new BufferPool(h);
  try {
    const halfStorage = halfStorageFor(manifest, h, f16);
    const pipelines = await buildPipelines(h, manifest, wgsl, halfStorage === "native");
    const guards = await buildGuardKit(h, manifest);
    const params = uploadParams(h, pool, manifest, seed);
    const ctx: GpuModuleContext = { h, pool, pipelines, guards, params, timeoutMs, seed, owner: {}, pending: new Set(), disposed: false };
    const executors = new Map<string, GpuFunctionExecutor>();
    // A data-parallel grad with sync_batch_norm has all_reduce host steps, which only the wasm replicas run.
    for (const fn of manifest.functions) if (!fn.steps.some(isHostStep)) executors.set(fn.name, new GpuFunctionExecutor(fn, ctx));
    const mod = new KilnGpuModule(manifest, { ctx, executors, wgsl, halfStorage } satisfies GpuState);
    if (options.params) for (const [name, value] of Object.entries(options.params)) mod.setParam(name, value);
    installMethods(mod, manifest.functions);
    return mod as KilnGpuModule & T;
  } catch (e) {
    pool.destroyAll();
    if (h.owned) h.device.destroy();
    throw e;
  }
}
