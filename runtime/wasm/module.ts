// The loaded module object: loadKilnModule instantiates the kernels, initialises the params (seeded RNG), and
// exposes call(), one method per function (and Model.method namespaces), and param get/set.

import type { FunctionManifest, Manifest, ParamManifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import {
  allocTypedArray, assertDType, dtypeBytes, describeTypedArray, describeValue, encodeNumbersLoose, encodeValues, isTypedArray,
  typedArrayCtor, typedArrayMatches, type AnyTypedArray, type DType,
} from "../dtype.js";
import { isTensor, Tensor } from "../tensor.js";
import { bytesOf, checkKernelIntegrity, checkManifestIntegrity } from "../integrity.js";
import { initParams } from "../init.js";
import { loadKernels, type KernelLoadOptions } from "./threads-load.js";
import type { ThreadPool } from "./threads.js";
import { FunctionExecutor, type Collective, type ExecutorContext, type ParamSlot } from "./executor.js";
import type { KernelFn } from "./backend.js";
import { methodLayout } from "../layout.js";
import type { CallInputs, CallOptions, InputValue } from "../bind.js";
import type { LinearMemory } from "./memory.js";
import { withOutputNames } from "../outputs.js";
import { bumpParam, PrepackCache } from "./prepack.js";

/** `threads` (default 1) and `relaxedWasm` (the relaxed-SIMD build) are described in threads-load.ts. */
export interface LoadOptions extends KernelLoadOptions {
  /** Seed of the RNG that initialises the params (default 0). */
  seed?: number;
  /** "wasm" (the default). WebGPU modules load through loadKilnModuleWebGPU (the generated load() dispatches). */
  backend?: "wasm";
  /** Initial values for some params, by qualified name ("MLP.w1"); applied after the seeded init. */
  params?: Record<string, ArrayLike<number> | Tensor>;
}

export interface ParamInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** A function on the loaded module: one Tensor for a single output, Tensor[] (also keyed by output name) otherwise. */
export type KilnFunction = (inputs: CallInputs | InputValue, options?: CallOptions) => Tensor | Tensor[];

export interface MemoryStats {
  /** Current size of the linear memory. */
  bytes: number;
  /** Bytes used by params and consts. */
  persistentBytes: number;
  /** Highest address ever used. */
  highWater: number;
}

/** The live wasm state of a module (runtime/quantize/dynamic.ts swaps executors and adds int8 weight buffers). */
export interface WasmState {
  memory: LinearMemory;
  params: Map<string, ParamSlot>;
  executors: Map<string, FunctionExecutor>;
  pool?: ThreadPool | null;
  kernels: Map<string, KernelFn>;
  seed: number;
  /** Params whose int8 copy the running kernels use: writing them is an error (param -> why). */
  frozen?: Map<string, string>;
  /** Packed copies of weights that matmuls read prepacked (prepack.ts), shared by the executors. */
  prepacked?: PrepackCache;
  /** Threads running the kernels and which build runs (from loadKernels). */
  threads?: number;
  simd?: "plain" | "relaxed";
  /** The context every executor of the module shares (its collective hook is set by data-parallel replicas). */
  context?: ExecutorContext;
}

type State = WasmState;

/** Key of KilnModule's internal state accessor (a symbol, so no function name can shadow it). */
export const WASM_STATE: unique symbol = Symbol("kiln.wasmState");

export class KilnModule {
  readonly manifest: Manifest;
  /** Qualified names of the functions ("MLP.forward", "fn"). */
  readonly functions: string[];
  readonly backend = "wasm" as const;
  /** Threads actually running the kernels (1 when the engine cannot share memory, whatever was asked). */
  readonly threads: number;
  /** Which wasm build runs: "relaxed" (relaxed SIMD) where the engine has it and the module ships it. */
  readonly simd: "plain" | "relaxed";
  /**
   * Why the module runs with less than was asked: an earlier backend of `backend: "auto"` or a list that could not
   * start here, or fewer threads; null when it got what was asked.
   */
  readonly fallbackReason: string | null = null;
  #state: State | null;

  /** Use loadKilnModule(). */
  constructor(manifest: Manifest, state: State) {
    this.manifest = manifest;
    this.functions = manifest.functions.map((f) => f.name);
    this.threads = state.threads ?? 1;
    this.simd = state.simd ?? "plain";
    this.#state = state;
  }

  #live(what: string): State {
    if (!this.#state) throw new KilnError(`${what}: the module has been disposed`, { code: "disposed" });
    return this.#state;
  }

  /**
   * Calls a function by qualified name ("MLP.forward") or, when unambiguous, by its method name ("forward").
   * Returns a Tensor for a single output, Tensor[] (in order, and by output name: `r.loss`) otherwise.
   */
  call(name: string, inputs: CallInputs | InputValue, options?: CallOptions): Tensor | Tensor[] {
    const state = this.#live(String(name));
    const exec = this.#resolve(state, name);
    const stale = state.frozen && exec.fn.updates?.find((u) => state.frozen!.has(u.param));
    if (stale) throw new KilnError(`${exec.fn.name} updates param "${stale.param}", ${state.frozen!.get(stale.param)}`, { code: "bad_option", fn: exec.fn.name, tensor: stale.param });
    const out = exec.run(inputs, options);
    return out.length === 1 ? out[0]! : withOutputNames(exec.fn, out);
  }

  /** Resolves at once: wasm calls finish before they return (the same `await m.sync()` as on WebGPU). */
  sync(): Promise<void> {
    this.#live("sync");
    return Promise.resolve();
  }

  #resolve(state: State, name: string): FunctionExecutor {
    const exact = state.executors.get(name);
    if (exact) return exact;
    const byJs = this.manifest.functions.filter((f) => f.jsName === name);
    if (byJs.length === 1) return state.executors.get(byJs[0]!.name)!;
    if (byJs.length > 1) {
      throw new KilnError(`"${name}" is ambiguous: it is ${byJs.map((f) => f.name).join(" and ")}; call it by its qualified name`, { code: "unknown_function", fn: name });
    }
    throw new KilnError(`unknown function "${name}"; available functions: ${this.functions.join(", ") || "none"}`, { code: "unknown_function", fn: name });
  }

  /** The params, in manifest order. */
  params(): ParamInfo[] {
    return this.manifest.params.map((p) => ({ name: p.name, dtype: p.dtype, shape: [...p.shape] }));
  }

  /** A copy of a param's current value. */
  getParam(name: string): Tensor {
    const state = this.#live("getParam");
    const slot = this.#slot(state, name, "getParam");
    return new Tensor(slot.param.dtype, slot.param.shape, state.memory.read(slot.param.dtype, slot.ptr, slot.numel));
  }

  /**
   * Overwrites a param. Accepts a Tensor of the param's dtype and shape, the dtype's typed array, or plain
   * numbers (checked: integer dtypes need integers in range) with exactly the param's element count.
   */
  setParam(name: string, value: ArrayLike<number> | Tensor): void {
    const state = this.#live("setParam");
    const slot = this.#slot(state, name, "setParam");
    if (state.frozen?.has(name)) throw new KilnError(`setParam: param "${name}" ${state.frozen.get(name)}`, { code: "bad_option", tensor: name });
    if (slot.param.role === "copy") {
      throw new KilnError(`setParam: param "${name}" is the ${slot.param.dtype} copy of "${slot.param.copyOf}" that mixed precision derives from it; set "${slot.param.copyOf}" instead`, { code: "bad_option", tensor: name });
    }
    state.memory.write(slot.ptr, encodeParamValue(name, slot.param, slot.numel, value));
    bumpParam(slot);
    syncCopies(state, this.manifest, name);
  }

  /** Copies of all params, by qualified name. */
  paramsByName(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const p of this.manifest.params) out[p.name] = this.getParam(p.name);
    return out;
  }

  /** For runtime/quantize/dynamic.ts only. */
  [WASM_STATE](what: string): WasmState {
    return this.#live(what);
  }

  memoryStats(): MemoryStats {
    const { memory } = this.#live("memoryStats");
    return { bytes: memory.byteLength, persistentBytes: memory.persistentBytes, highWater: memory.highWater };
  }

  /** Drops the wasm instance and memory (and stops any worker threads); later calls throw. */
  dispose(): void {
    this.#state?.pool?.close();
    this.#state = null;
  }

  #slot(state: State, name: string, what: string): ParamSlot {
    const slot = state.params.get(name);
    if (!slot) {
      throw new KilnError(`${what}: unknown param "${name}"; params: ${this.manifest.params.map((p) => p.name).join(", ") || "none"}`, { code: "unknown_param", tensor: name });
    }
    return slot;
  }
}

/**
 * Loads a compiled Kiln module. Methods are installed per function (see methodLayout): `module[jsName]` when no
 * other function shares the jsName (and it does not clash with a KilnModule member or a model name), and
 * `module[Model][jsName]` for model methods. `call()` reaches every function.
 *
 * Params are initialised in manifest order from one RNG stream seeded by `options.seed` (default 0), then
 * `options.params` overwrite the named params.
 */
export async function loadKilnModule<T extends object = Record<string, unknown>>(
  manifest: Manifest,
  wasm: BufferSource | WebAssembly.Module,
  options: LoadOptions = {},
): Promise<KilnModule & T> {
  checkManifest(manifest);
  checkManifestIntegrity(manifest);
  const plainBytes = bytesOf(wasm);
  if (plainBytes) checkKernelIntegrity(manifest, "wasm", plainBytes);
  const relaxed = options.relaxedWasm;
  if (typeof relaxed === "function" && manifest.integrity?.wasmRelaxed) {
    options = { ...options, relaxedWasm: async () => {
      const src = await relaxed();
      const bytes = bytesOf(src);
      if (bytes) checkKernelIntegrity(manifest, "wasmRelaxed", bytes);
      return src;
    } };
  }
  const seed = checkLoadOptions(manifest, options, "loadKilnModule");
  const backend = (options as { backend?: unknown }).backend;
  if (backend === "webgpu") {
    throw new KilnError(`loadKilnModule: unsupported backend "webgpu" (it runs the wasm kernels); for WebGPU use the generated load({ backend: "webgpu" }) or loadKilnModuleWebGPU(manifest, wgslText, options)`, { code: "bad_option" });
  }
  if (backend !== undefined && backend !== "wasm") {
    throw new KilnError(`loadKilnModule: unsupported backend ${JSON.stringify(backend)} (supported: "wasm", and "webgpu" through loadKilnModuleWebGPU)`, { code: "bad_option" });
  }
  if (manifest.wasm === "") {
    throw new KilnError(`this module was compiled for WebGPU only (--target wgsl): load it with { backend: "webgpu" }, or recompile with --target all for the wasm backend`, { code: "bad_option" });
  }

  const { memory, kernels, pool, threads, simd, fewerThreads, soloKernels } = await loadKernels(wasm, options);
  // A load that fails after the workers started must stop them (they would otherwise idle until exit).
  try {
    const params = new Map<string, ParamSlot>();
    const numels = manifest.params.map((p) => p.shape.reduce((a, b) => a * b, 1));
    const slots = manifest.params.map((p, i) => ({ name: p.name, init: p.init, numel: numels[i]! }));
    initParams(slots, seed, (i, values) => {
      const p = manifest.params[i]!;
      const numel = numels[i]!;
      const ptr = memory.allocPersistent(numel * dtypeBytes(p.dtype), `param "${p.name}"`);
      const encoded = allocTypedArray(p.dtype, numel);
      encodeNumbersLoose(p.dtype, values, encoded);
      memory.write(ptr, encoded);
      params.set(p.name, { param: p, ptr, numel });
    });

    const executors = new Map<string, FunctionExecutor>();
    const prepacked = new PrepackCache(memory);
    const context: ExecutorContext = { memory, kernels, params, seed, prepacked, ...(pool ? { beginCall: () => pool.beginCall(), ...(soloKernels ? { soloKernels } : {}) } : {}) };
    for (const fn of manifest.functions) executors.set(fn.name, new FunctionExecutor(fn, context));

    const mod = new KilnModule(manifest, { memory, params, executors, pool, kernels, seed, threads, simd, context, prepacked });
    if (fewerThreads) {
      // Not an error: the module runs correctly on one thread, but the caller should be able to see why.
      Object.defineProperty(mod, "fallbackReason", { value: `threads: ${options.threads} asked, ${threads} used: ${fewerThreads}` });
    }
    if (options.params) for (const [name, value] of Object.entries(options.params)) mod.setParam(name, value);
    installMethods(mod, manifest.functions);
    return mod as KilnModule & T;
  } catch (e) {
    pool?.close();
    throw e;
  }
}

/** Re-derives the mixed-precision copies of `master` from its current (f32) value in memory. */
function syncCopies(state: State, manifest: Manifest, master: string): void {
  const copies = manifest.params.filter((p) => p.role === "copy" && p.copyOf === master);
  if (!copies.length) return;
  const m = state.params.get(master)!;
  const values = state.memory.read(m.param.dtype, m.ptr, m.numel) as ArrayLike<number>;
  for (const c of copies) {
    const slot = state.params.get(c.name)!;
    const out = allocTypedArray(c.dtype, slot.numel);
    encodeNumbersLoose(c.dtype, values, out);
    state.memory.write(slot.ptr, out);
    bumpParam(slot);
  }
}

/**
 * A param's new value as the dtype's typed array: a Tensor of the param's dtype and shape, the dtype's typed
 * array, or plain numbers (checked) with exactly `numel` elements. Shared with the WebGPU backend.
 */
export function encodeParamValue(name: string, p: ParamManifest, numel: number, value: unknown): AnyTypedArray {
  const expected = `${p.dtype}[${p.shape.join(", ")}]`;
  const fail = (actual: string, code: "param_dtype" | "param_shape"): never => {
    throw new KilnError(`setParam: param "${name}" expected ${expected} (${numel} elements) but got ${actual}`, { code, tensor: name, expected, actual });
  };
  let data: AnyTypedArray;
  if (isTensor(value)) {
    if (value.dtype !== p.dtype) fail(`a Tensor of dtype ${value.dtype}`, "param_dtype");
    if (value.shape.length !== p.shape.length || value.shape.some((d, i) => d !== p.shape[i])) fail(`a Tensor of shape [${value.shape.join(", ")}]`, "param_shape");
    data = value.data;
  } else if (isTypedArray(value)) {
    if (!typedArrayMatches(p.dtype, value)) fail(`${describeTypedArray(value)} (pass a ${typedArrayCtor(p.dtype).name}, a Tensor or a number[])`, "param_dtype");
    data = value as AnyTypedArray;
  } else if (value !== null && typeof value === "object" && typeof (value as ArrayLike<number>).length === "number") {
    const enc = encodeValues(p.dtype, value as ArrayLike<number>);
    if ("bad" in enc) {
      throw new KilnError(`setParam: param "${name}" (${p.dtype}) element ${enc.index} is ${enc.bad}, not a valid ${p.dtype} value`, { code: "param_dtype", tensor: name, expected: p.dtype, actual: enc.bad });
    }
    data = enc;
  } else {
    return fail(describeValue(value), "param_dtype");
  }
  if (data.length !== numel) fail(`${isTensor(value) ? "a Tensor" : isTypedArray(value) ? describeTypedArray(value) : "an array"} of length ${data.length}`, "param_shape");
  return data;
}

/** Checks the options every backend shares (object, integer seed, known param names); returns the seed. */
export function checkLoadOptions(manifest: Manifest, options: unknown, what: string): number {
  if (options === null || typeof options !== "object") throw new KilnError(`${what}: options must be an object`, { code: "bad_option" });
  const o = options as LoadOptions;
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new KilnError(`${what}: seed must be an integer, got ${String(seed)}`, { code: "bad_option" });
  if (o.params) {
    for (const name of Object.keys(o.params)) {
      if (!manifest.params.some((p) => p.name === name)) {
        throw new KilnError(`${what}: options.params names unknown param "${name}"; params: ${manifest.params.map((p) => p.name).join(", ") || "none"}`, { code: "unknown_param", tensor: name });
      }
    }
  }
  return seed;
}

function installMethods(mod: KilnModule, fns: FunctionManifest[]): void {
  const method = (f: FunctionManifest): KilnFunction => {
    const m = (inputs: CallInputs | InputValue, options?: CallOptions) => mod.call(f.name, inputs, options);
    Object.defineProperty(m, "name", { value: f.jsName });
    return m;
  };
  const { models, direct } = methodLayout(fns);
  for (const [model, list] of models) {
    const ns = Object.create(null) as Record<string, KilnFunction>;
    for (const f of list) ns[f.jsName] = method(f);
    Object.defineProperty(mod, model, { value: Object.freeze(ns), enumerable: true });
  }
  for (const f of direct) Object.defineProperty(mod, f.jsName, { value: method(f), enumerable: true });
}

export function checkManifest(m: Manifest): void {
  const bad = (msg: string): never => {
    throw new KilnError(`invalid module manifest: ${msg}`, { code: "bad_manifest" });
  };
  if (m === null || typeof m !== "object") bad(`expected an object, got ${describeValue(m)}`);
  if (m.format !== "kiln-module") bad(`format is ${JSON.stringify(m.format)}, expected "kiln-module"`);
  if (m.version !== 1) bad(`version ${JSON.stringify(m.version)} is not supported by this runtime (supports 1)`);
  if (!Array.isArray(m.params) || !Array.isArray(m.functions)) bad(`params and functions must be arrays`);
  const seen = new Set<string>();
  for (const p of m.params) {
    assertDType(p.dtype, `param "${p.name}"`);
    if (seen.has(p.name)) bad(`duplicate param "${p.name}"`);
    seen.add(p.name);
    if (!Array.isArray(p.shape) || !p.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`param "${p.name}" needs a concrete shape, got ${JSON.stringify(p.shape)}`);
  }
  const names = new Set<string>();
  for (const f of m.functions) {
    if (names.has(f.name)) bad(`duplicate function "${f.name}"`);
    names.add(f.name);
    if (typeof f.jsName !== "string" || !f.jsName) bad(`function "${f.name}" has no jsName`);
  }
}

/**
 * Makes the module's all_reduce host steps sum across data-parallel replicas through `c` (runtime/parallel);
 * undefined: one replica again (all_reduce is a copy).
 */
export function setCollective(mod: KilnModule, c: Collective | undefined): void {
  const ctx = mod[WASM_STATE]("setCollective").context;
  if (!ctx) throw new KilnError("setCollective: this module has no shared executor context", { code: "bad_option" });
  if (c) ctx.collective = c;
  else delete ctx.collective;
}
