/// <reference types="@webgpu/types" />
// WebGPU runtime, calls: checks a function's plan against the WGSL kernels at load; per call binds the dims,
// uploads the inputs, encodes every kernel of the call into ONE command buffer (one compute pass), copies the
// outputs into fresh buffers and returns them as GpuTensors without waiting for the GPU.

import type { FunctionManifest, ParamManifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import { allocTypedArray, assertDType, encodeNumbersLoose, f32ArrayToBf16Bits, f32ArrayToF16Bits, type DType } from "../dtype.js";
import { Tensor } from "../tensor.js";
import { bindCall, DEVICE_PLACEHOLDER, isPlainInputValue, type CallOptions } from "../bind.js";
import { checkAlive, scoped, type GpuHandle } from "./device.js";
import { bytesOf, fillWord, fromWords, readBack, toWords, upload, wordsOf, type BufferPool } from "./buffers.js";
import type { KernelPipeline } from "./shaders.js";
import { GpuTensor, type GpuTensorStorage } from "./gpu-tensor.js";
import { buildCallPlan, type CallPlan, type PlanContext } from "./instance.js";
import { encodeGuarded, type GuardKit } from "./guards.js";
import { encodeInputConversions, type InputConversion } from "./convert.js";
import { checkDeviceInputs } from "./input-checks.js";
import { RandomStreams } from "../random.js";
import { dimsProduct } from "../dim-expr.js";

export interface GpuParam {
  readonly param: ParamManifest;
  readonly buffer: GPUBuffer;
  readonly numel: number;
}

export interface GpuModuleContext {
  readonly h: GpuHandle;
  readonly pool: BufferPool;
  readonly pipelines: Map<string, KernelPipeline>;
  readonly params: Map<string, GpuParam>;
  readonly timeoutMs: number;
  /** The load seed (random_uniform values come from streams seeded by it, as on wasm). */
  readonly seed: number;
  /** Identity of the module: GpuTensors of other modules are not accepted as inputs. */
  readonly owner: object;
  readonly guards: GuardKit | null;
  /** Set by the module's dispose(): the buffers are gone. */
  disposed: boolean;
  /** Error checks of submitted calls not yet awaited by sync(). */
  readonly pending: Set<Promise<void>>;
}

/** The live state of a WebGPU module (webgpu/quantize.ts swaps executors and adds int8 weight buffers). */
export interface GpuState {
  ctx: GpuModuleContext;
  executors: Map<string, GpuFunctionExecutor>;
  /** The module's .wgsl text: kernels no float step calls (the int8 ones) are compiled from it on demand. */
  wgsl: string;
  /** Params whose int8 copy the running kernels use: writing them is an error (param -> why). */
  frozen?: Map<string, string>;
  /** Which f16 kernels were compiled (load option f16); null when none touches f16. */
  halfStorage?: "native" | "packed" | null;
}

/** Params and pipelines of an executor, when not the module's. */
export interface ExecutorResources {
  readonly params?: ReadonlyMap<string, GpuParam>;
  readonly pipelines?: ReadonlyMap<string, KernelPipeline>;
}

/** Plans kept per function (distinct dims bindings); the least recently used one is dropped beyond this. */
const MAX_PLANS = 4;

interface StorageImpl extends GpuTensorStorage {
  readonly buffer: GPUBuffer;
}
const storageImpls = new WeakSet<GpuTensorStorage>();
/** Returns GPU memory of GpuTensors that were garbage-collected without dispose(). */
const reclaim = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<() => void>((release) => release()) : undefined;

export class GpuFunctionExecutor {
  readonly fn: FunctionManifest;
  readonly #ctx: GpuModuleContext;
  readonly #plan: PlanContext;
  readonly #plans = new Map<string, CallPlan>();
  readonly #random: RandomStreams;

  /**
   * `own` replaces the module's params and pipelines for this executor (an int8 plan reads its packed weights as
   * params and calls kernels no float step does; the module itself never sees either).
   */
  constructor(fn: FunctionManifest, ctx: GpuModuleContext, own: ExecutorResources = {}) {
    this.fn = fn;
    this.#ctx = ctx;
    this.#random = new RandomStreams(ctx.seed);
    const params = own.params ?? ctx.params;
    const pipelines = own.pipelines ?? ctx.pipelines;
    const roots = checkFunction(fn, params, pipelines);
    const needed = new Set<number>([...fn.outputValues, ...updatesOf(fn).map((u) => u.value)]);
    fn.steps.forEach((s) => {
      s.buffers.forEach((b, j) => { if (pipelines.get(s.kernel)!.meta.buffers[j] !== "none") needed.add(b); });
      for (const g of s.guard ?? []) needed.add(g.value);
    });
    const constWords = new Map<number, number>();
    const constBuffers = new Map<number, GPUBuffer>();
    fn.values.forEach((v, i) => {
      if (v.source.kind !== "const") return;
      const one = allocTypedArray(v.dtype, 1);
      encodeNumbersLoose(v.dtype, [v.source.value], one);
      const words = toWords(v.dtype, one);
      constWords.set(i, fillWord(v.dtype, new Uint32Array(words.buffer, words.byteOffset, 1)));
      if (!needed.has(i) || !v.shape.every((d) => typeof d === "number")) return;
      const numel = (v.shape as number[]).reduce((a, b) => a * b, 1);
      const buf = ctx.pool.acquire(bytesOf(v.dtype, numel));
      upload(ctx.h, buf, new Uint32Array(wordsOf(v.dtype, numel)).fill(constWords.get(i)!));
      constBuffers.set(i, buf);
    });
    this.#plan = {
      h: ctx.h, pool: ctx.pool, fn, pipelines, roots, needed, constBuffers, constWords, guards: ctx.guards,
      paramBuffer: (name) => params.get(name)!.buffer,
    };
  }

  /** Runs the function on the GPU; returns one GpuTensor per output as soon as the commands are submitted. */
  run(inputs: unknown, options: CallOptions | undefined): GpuTensor[] {
    const fn = this.fn;
    const { h, pool } = this.#ctx;
    checkAlive(h, fn.name);
    if (options?.out !== undefined) {
      throw new KilnError(`${fn.name}: options.out is not supported on WebGPU: results stay on the GPU as GpuTensors; read one with \`await t.read()\`, or load the module on wasm to write results into your own buffers`, { code: "bad_option", fn: fn.name });
    }
    const gpuInputs = new Map<number, GpuTensor>();
    const { dims, data } = bindCall(fn, this.#placeholders(inputs, gpuInputs), options);
    const dimNote = Object.keys(dims).length ? ` (${Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(", ")})` : "";
    const what = `${fn.name}${dimNote}`;
    let outputs: { vi: number; shape: number[]; dtype: DType; numel: number; buffer: GPUBuffer }[] = [];
    // Building a plan creates bind groups: inside the scopes too, so a bad one is reported with this call.
    const done = scoped(h, what, () => {
      const plan = this.#planFor(dims, what);
      outputs = fn.outputs.map((sig, k) => {
        const vi = fn.outputValues[k]!;
        const shape = sig.shape.map((d) => (typeof d === "number" ? d : dims[d]!));
        return { vi, shape, dtype: fn.values[vi]!.dtype, numel: plan.numels[vi]!, buffer: pool.acquire(bytesOf(fn.values[vi]!.dtype, plan.numels[vi]!)) };
      });
      fn.values.forEach((v, i) => {
        const s = v.source;
        // Every random value advances its stream each call, as on wasm, whether or not a kernel reads it.
        if (s.kind === "random") {
          const values = this.#random.next(fn.name, s.stream, plan.numels[i]!);
          // Random values are drawn as f32; a 16-bit random value is stored rounded, as the reference rounds it.
          if (plan.buffers[i]) upload(h, plan.buffers[i]!, v.dtype === "f32" ? values : toWords(v.dtype, encodeF32(v.dtype, values)));
        }
        // A dim size (a mean's element count): this call's product of the dims, written like an input.
        if (s.kind === "dim" && plan.buffers[i]) {
          const one = allocTypedArray(v.dtype, 1);
          encodeNumbersLoose(v.dtype, [dimsProduct(s.dims, dims, fn.name)], one);
          upload(h, plan.buffers[i]!, toWords(v.dtype, one));
        }
        if (s.kind !== "input" || !plan.buffers[i] || gpuInputs.has(s.index)) return;
        const low = fn.inputs[s.index]!.storage;
        upload(h, plan.buffers[i]!, toWords(v.dtype, low ? lowBits(low, data[s.index] as Float32Array) : data[s.index]!));
      });
      const enc = h.device.createCommandEncoder({ label: what });
      const conversions: InputConversion[] = [];
      fn.values.forEach((v, i) => {
        const t = v.source.kind === "input" ? gpuInputs.get(v.source.index) : undefined;
        if (!t || !plan.buffers[i] || plan.numels[i]! === 0) return;
        // A GpuTensor for an input stored in 16 bits: converted by the input's kernel (convert.ts), not copied.
        const convert = fn.inputs[(v.source as { index: number }).index]!.convert;
        if (convert) conversions.push({ kernel: this.#plan.pipelines.get(convert)!, src: bufferOf(t, fn.name), dst: plan.buffers[i]!, numel: plan.numels[i]! });
        else enc.copyBufferToBuffer(bufferOf(t, fn.name), 0, plan.buffers[i]!, 0, bytesOf(v.dtype, plan.numels[i]!));
      });
      const uniforms = conversions.length ? encodeInputConversions(h, pool, enc, conversions, what) : [];
      // One compute pass, interrupted only where a step's inputs must first be copied into its pack.
      let pass: GPUComputePassEncoder | null = null;
      for (const s of plan.steps) {
        if (!s) continue;
        if (s.pack) {
          pass?.end();
          pass = null;
          for (const c of s.pack.copies) enc.copyBufferToBuffer(c.src, 0, s.pack.buffer, c.dstWord * 4, c.words * 4);
        }
        pass ??= enc.beginComputePass({ label: what });
        if (s.guard) {
          encodeGuarded(pass, s.guard, s);
          continue;
        }
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.grid);
      }
      (pass as GPUComputePassEncoder | null)?.end();
      // Outputs are taken before the param updates, as on wasm.
      for (const o of outputs) if (o.numel > 0) enc.copyBufferToBuffer(plan.buffers[o.vi]!, 0, o.buffer, 0, bytesOf(o.dtype, o.numel));
      for (const u of updatesOf(fn)) {
        const dst = this.#ctx.params.get(u.param)!;
        if (plan.buffers[u.value] !== dst.buffer) enc.copyBufferToBuffer(plan.buffers[u.value]!, 0, dst.buffer, 0, bytesOf(dst.param.dtype, dst.numel));
      }
      h.device.queue.submit([enc.finish()]);
      uniforms.forEach((u) => pool.release(u));
    });
    // GPU-resident labels and indices are checked as they come back; a bad value fails the outputs' read().
    const checked = checkDeviceInputs(fn, gpuInputs, (t) => bufferOf(t, fn.name), dims, h, pool, this.#ctx.timeoutMs, what);
    const settled = checked ? Promise.all([done, checked]).then(() => undefined) : done;
    this.#track(settled);
    return outputs.map((o) => {
      const { storage, release, token } = this.#storage(o.buffer, o.dtype, o.numel, settled, what);
      const t = new GpuTensor(o.dtype, o.shape, storage);
      reclaim?.register(t, release, token);
      return t;
    });
  }

  /** Returns the pooled buffers of every cached plan and of its consts (at module dispose, or restoreFloat). */
  dispose(): void {
    for (const p of this.#plans.values()) p.owned.forEach((b) => this.#ctx.pool.release(b));
    this.#plans.clear();
    // Executors made and dropped at run time (int8 plans, sample runs) would otherwise strand their consts.
    for (const b of this.#plan.constBuffers.values()) this.#ctx.pool.release(b);
  }

  /** Failed checks stay pending until sync() reports them; successful ones are forgotten. */
  #track(done: Promise<void>): void {
    const pending = this.#ctx.pending;
    pending.add(done);
    done.then(() => pending.delete(done), () => {});
  }

  #planFor(dims: Record<string, number>, what: string): CallPlan {
    const key = JSON.stringify(Object.keys(dims).sort().map((k) => [k, dims[k]]));
    let plan = this.#plans.get(key);
    if (plan) {
      this.#plans.delete(key);
    } else {
      plan = buildCallPlan(this.#plan, dims, what);
      if (this.#plans.size >= MAX_PLANS) {
        const [oldKey, old] = this.#plans.entries().next().value as [string, CallPlan];
        this.#plans.delete(oldKey);
        old.owned.forEach((b) => this.#ctx.pool.release(b));
      }
    }
    this.#plans.set(key, plan);
    return plan;
  }

  /** GpuTensor inputs are replaced by shape-only stand-ins for bindCall (which checks dtypes and binds dims). */
  #placeholders(inputs: unknown, gpu: Map<number, GpuTensor>): unknown {
    const fn = this.fn;
    const swap = (name: string, v: unknown): unknown => {
      if (!(v instanceof GpuTensor)) return v;
      const index = fn.inputs.findIndex((s) => s.name === name);
      if (index < 0) return v;
      const storage = v.storage(`${fn.name}: input "${name}"`);
      if (storage.owner !== this.#ctx.owner) {
        throw new KilnError(`${fn.name}: input "${name}" is a GpuTensor of another module (or device); pass await t.read() instead`, { code: "input_value", fn: fn.name, tensor: name });
      }
      const sig = fn.inputs[index]!;
      if (sig.storage && !(sig.convert && this.#plan.pipelines.has(sig.convert))) {
        // Its buffer holds 16-bit values; a module compiled before input conversions existed has no kernel for it.
        throw new KilnError(`${fn.name}: input "${name}" (f32) is stored as ${fn.inputs[index]!.storage} on the GPU (mixed precision: only matmuls read it); pass its values from the host: await t.read()`, { code: "input_value", fn: fn.name, tensor: name, expected: "f32 host data" });
      }
      gpu.set(index, v);
      return Object.assign(Object.create(Tensor.prototype) as Tensor, { dtype: v.dtype, shape: v.shape, data: { length: v.size }, [DEVICE_PLACEHOLDER]: true });
    };
    if (inputs instanceof GpuTensor && fn.inputs.length === 1) return swap(fn.inputs[0]!.name, inputs);
    if (inputs === null || typeof inputs !== "object" || isPlainInputValue(inputs)) return inputs;
    return Object.fromEntries(Object.entries(inputs as Record<string, unknown>).map(([k, v]) => [k, swap(k, v)]));
  }

  #storage(buffer: GPUBuffer, dtype: DType, numel: number, done: Promise<void>, what: string): { storage: GpuTensorStorage; release: () => void; token: object } {
    const ctx = this.#ctx;
    const { h, pool, timeoutMs, owner } = ctx;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      pool.release(buffer);
    };
    const token = {};
    const s: StorageImpl = {
      owner,
      buffer,
      async read() {
        if (released || ctx.disposed) throw new KilnError(`${what}: the GpuTensor ${released ? "has been disposed" : "belongs to a disposed module"}`, { code: "disposed" });
        await done;
        checkAlive(h, what);
        return fromWords(dtype, await readBack(h, pool, buffer, bytesOf(dtype, numel), timeoutMs, what), numel);
      },
      release() {
        reclaim?.unregister(token);
        release();
      },
    };
    storageImpls.add(s);
    return { storage: s, release, token };
  }
}

/** The GPU buffer behind a GpuTensor made by an executor. */
function bufferOf(t: GpuTensor, fn: string): GPUBuffer {
  const s = t.storage(fn);
  if (!storageImpls.has(s)) throw new KilnError(`${fn}: this GpuTensor was not made by a Kiln WebGPU module`, { code: "input_value", fn });
  return (s as StorageImpl).buffer;
}

/** Param updates after the call (training steps), when the manifest has them. */
function updatesOf(fn: FunctionManifest): { param: string; value: number }[] {
  return (fn as { updates?: { param: string; value: number }[] }).updates ?? [];
}

/** Checks the plan against the kernels and params; returns the root (alias-resolved) value of each value. */
function checkFunction(fn: FunctionManifest, params: ReadonlyMap<string, GpuParam>, pipelines: ReadonlyMap<string, KernelPipeline>): number[] {
  const bad = (msg: string): never => {
    throw new KilnError(`invalid module: function ${fn.name}: ${msg}`, { code: "bad_manifest", fn: fn.name });
  };
  const nv = fn.values.length;
  fn.values.forEach((v, i) => {
    assertDType(v.dtype, `function ${fn.name}: value ${i}`);
    if (v.dtype === "f64") bad(`value ${i} is f64, which WebGPU cannot store; use the wasm backend`);
    const s = v.source;
    if (s.kind === "param") {
      const p = params.get(s.name);
      if (!p) bad(`value ${i} refers to unknown param "${s.name}"`);
      if (p!.param.dtype !== v.dtype) bad(`value ${i} (param "${s.name}") has dtype ${v.dtype}, the param is ${p!.param.dtype}`);
    } else if (s.kind === "input" && !fn.inputs[s.index]) bad(`value ${i} is input ${s.index}, but the function has ${fn.inputs.length} inputs`);
    else if (s.kind === "alias" && !(Number.isInteger(s.of) && s.of >= 0 && s.of < nv && s.of !== i)) bad(`value ${i} aliases bad value index ${s.of}`);
  });
  const roots = fn.values.map((_, i) => {
    let j = i;
    for (let hops = 0; fn.values[j]!.source.kind === "alias"; hops++) {
      if (hops > nv) bad(`value ${i} is part of an alias cycle`);
      j = (fn.values[j]!.source as { of: number }).of;
    }
    return j;
  });
  fn.steps.forEach((step, si) => {
    const k = pipelines.get(step.kernel);
    if (!k) bad(`step ${si} calls kernel "${step.kernel}", which has no WGSL shader`);
    if (k!.meta.buffers.length !== step.buffers.length || k!.meta.ints !== step.ints.length) {
      bad(`step ${si} passes ${step.buffers.length} buffers and ${step.ints.length} integers to kernel "${step.kernel}", whose shader takes ${k!.meta.buffers.length} and ${k!.meta.ints}`);
    }
    for (const b of step.buffers) if (!Number.isInteger(b) || b < 0 || b >= nv) bad(`step ${si} uses bad value index ${b}`);
    // As on wasm: a value computed inside another kernel (an epilogue, a folded cast) has no buffer to bind.
    for (const b of step.buffers) if (fn.values[b]!.source.kind === "fused") bad(`step ${si} uses value ${b}, which is fused into another kernel and has no buffer`);
  });
  if (fn.outputValues.length !== fn.outputs.length) bad(`${fn.outputs.length} outputs but ${fn.outputValues.length} output values`);
  for (const vi of fn.outputValues) if (!fn.values[vi]) bad(`an output refers to bad value index ${vi}`);
  for (const u of updatesOf(fn)) if (!params.has(u.param) || !fn.values[u.value]) bad(`bad update of param "${u.param}"`);
  return roots;
}

/** f32 values as the host elements of `dtype` (f16/bf16 bit patterns, rounded to nearest even). */
function encodeF32(dtype: DType, values: Float32Array): ReturnType<typeof allocTypedArray> {
  const out = allocTypedArray(dtype, values.length);
  encodeNumbersLoose(dtype, values, out);
  return out;
}

/** The 16-bit bits of an f32 input stored low (TensorSig.storage), rounded as the wasm runtime rounds them. */
function lowBits(low: "f16" | "bf16", src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  (low === "f16" ? f32ArrayToF16Bits : f32ArrayToBf16Bits)(src, out);
  return out;
}
