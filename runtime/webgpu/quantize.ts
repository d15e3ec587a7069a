/// <reference types="@webgpu/types" />
// WebGPU side of int8 quantization (docs/quantization.md): the same plan rewrite as on wasm (quantize-plan.ts),
// with the weights packed 4 int8 per u32 and uploaded once, the qmatmul pipelines compiled on demand (the
// dot4I8Packed sections where the adapter has them), and layer outputs read back as extra outputs of a call.

import type { FunctionManifest } from "../manifest.js";
import { WGSL_DOT4_SUFFIX } from "../manifest.js";
import { KilnError } from "../errors.js";
import type { AnyTypedArray } from "../dtype.js";
import type { CallInputs, CallOptions, InputValue } from "../bind.js";
import { packWeight, qpWords, type QuantizedWeight } from "../quantize/math.js";
import {
  buildReport, dequantized, eligible, frozenParams, int8Param, kernelsOf, quantizeWeights, rewrite,
  type Int8Choice, type QuantizeOptions, type QuantizeReport,
} from "../quantize/plan.js";
import { GPU_STATE, type KilnGpuModule } from "./module.js";
import { GpuFunctionExecutor, type ExecutorResources, type GpuParam, type GpuState } from "./executor.js";
import { WORD, upload } from "./buffers.js";
import { buildKernelPipelines, hasPackedDot4, splitWgsl } from "./shaders.js";

interface GpuQState {
  mode: "dynamic" | "static";
  weights: Map<string, QuantizedWeight>;
  choices: Map<string, Int8Choice[]>;
  /** The float executors, restored by restoreFloat. */
  original: Map<string, GpuFunctionExecutor>;
  /** The int8 weight and qp buffers, returned to the pool by restoreFloat. */
  buffers: GPUBuffer[];
}

const qstates = new WeakMap<KilnGpuModule, GpuQState>();

function gpuState(mod: KilnGpuModule, what: string): GpuState {
  return mod[GPU_STATE](what) as GpuState;
}

export function gpuQuantization(mod: KilnGpuModule): GpuQState | undefined {
  return qstates.get(mod);
}

/** The f32 values of the named params, read back from the GPU. */
export async function readParams(mod: KilnGpuModule, names: Iterable<string>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const n of names) out.set(n, (await mod.getParam(n)).data as Float32Array);
  return out;
}

export async function quantizeDynamicGpu(mod: KilnGpuModule, opts: QuantizeOptions): Promise<QuantizeReport> {
  const fns = eligible(mod, opts, "quantizeDynamic");
  const f32 = await readParams(mod, new Set(fns.flatMap((f) => f.variants.map((v) => v.weight))));
  const weights = quantizeWeights(mod.manifest, f32.keys(), (n) => f32.get(n)!);
  const choices = new Map(fns.map((f) => [f.fn.name, f.variants.map((variant) => ({ variant, static: false }))]));
  return finishGpu(mod, "dynamic", choices, weights, (n) => f32.get(n)!, opts.sample, opts.dot4);
}

/**
 * The pipelines of the int8 kernels the choices call, next to the module's: the dot4I8Packed sections when the
 * device has the builtin (and the file has them: older ones do not), the emulation otherwise.
 */
async function int8Pipelines(mod: KilnGpuModule, st: GpuState, choices: Map<string, Int8Choice[]>, dot4: boolean | undefined): Promise<{ pipelines: ExecutorResources["pipelines"]; dot: "dot4I8Packed" | "emulated" }> {
  const names = kernelsOf(choices);
  const ops = new Map([...choices.values()].flat().map((c) => [c.static ? c.variant.static : c.variant.dynamic, c.variant.ops.join(", ")]));
  const sections = splitWgsl(st.wgsl);
  const useDot4 = dot4 !== false && [...names].every((k) => sections.has(k + WGSL_DOT4_SUFFIX)) && (await hasPackedDot4(st.ctx.h));
  const compiled = await buildKernelPipelines(st.ctx.h, mod.manifest, st.wgsl, new Map([...names].map((k) => [k, ops.get(k)!])), "int8 kernel", (k) => (useDot4 ? k + WGSL_DOT4_SUFFIX : k));
  return { pipelines: new Map([...st.ctx.pipelines, ...compiled]), dot: useDot4 ? "dot4I8Packed" : "emulated" };
}

/** The function with `extra` values as additional outputs (how layer outputs are read back on the GPU). */
function withOutputs(fn: FunctionManifest, extra: readonly number[]): FunctionManifest {
  const sigs = extra.map((v, i) => ({ name: `int8 layer ${i}`, dtype: fn.values[v]!.dtype, shape: [...fn.values[v]!.shape] }));
  return { ...fn, outputs: [...fn.outputs, ...sigs], outputValues: [...fn.outputValues, ...extra] };
}

/** Runs `fn` once with `extra` as additional outputs; returns the function's outputs and the extra values. */
async function runWith(st: GpuState, fn: FunctionManifest, own: ExecutorResources, extra: readonly number[], inputs: unknown, options?: CallOptions): Promise<{ outs: AnyTypedArray[]; extra: AnyTypedArray[] }> {
  const exec = new GpuFunctionExecutor(withOutputs(fn, extra), st.ctx, own);
  try {
    const ts = exec.run(inputs, options);
    try {
      const data = await Promise.all(ts.map(async (t) => (await t.read()).data));
      return { outs: data.slice(0, fn.outputs.length), extra: data.slice(fn.outputs.length) };
    } finally {
      ts.forEach((t) => t.dispose());
    }
  } finally {
    exec.dispose();
  }
}

/** The rewritten plans and the buffers they read, built (and uploaded) without switching anything yet. */
function buildInt8(mod: KilnGpuModule, st: GpuState, choices: Map<string, Int8Choice[]>, weights: Map<string, QuantizedWeight>, pipelines: ExecutorResources["pipelines"]) {
  const { h, pool } = st.ctx;
  const params = new Map(st.ctx.params);
  const buffers: GPUBuffer[] = [];
  const put = (key: string, weight: string, dtype: "i32" | "f32", data: Uint8Array | Float32Array): GpuParam => {
    const numel = Math.ceil(data.byteLength / WORD);
    const words = new Uint8Array(numel * WORD);
    words.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const buffer = pool.acquire(numel * WORD);
    buffers.push(buffer);
    upload(h, buffer, words);
    const p = { param: int8Param(key, weight, dtype, numel), buffer, numel };
    params.set(key, p);
    return p;
  };
  const plans = new Map<string, FunctionManifest>();
  const executors = new Map<string, GpuFunctionExecutor>();
  const own = { params, pipelines };
  try {
    for (const [name, list] of choices) {
      const fn = mod.manifest.functions.find((f) => f.name === name)!;
      const { fn: plan } = rewrite(fn, list, (c) => {
        const v = c.variant;
        const qw = weights.get(v.weight)!;
        // One copy of each packed weight (4 int8 per u32 word, as the WGSL kernels read it), shared by functions.
        const w = params.get(`${v.weight}#int8`) ?? put(`${v.weight}#int8`, v.weight, "i32", packWeight(qw, v.packing.wgsl));
        return { w, qp: put(`${name}#${v.replaces[0]}#qp`, v.weight, "f32", qpWords(qw, c.input, c.output)) };
      });
      plans.set(name, plan);
      executors.set(name, new GpuFunctionExecutor(plan, st.ctx, own));
    }
  } catch (e) {
    executors.forEach((x) => x.dispose());
    buffers.forEach((b) => pool.release(b));
    throw e;
  }
  return { plans, executors, buffers, own };
}

/**
 * Switches the module to the choices' int8 kernels and measures the report (the sample runs once in f32 and once
 * in int8). The kernels are compiled and the plans built before anything changes.
 */
export async function finishGpu(
  mod: KilnGpuModule, mode: "dynamic" | "static", choices: Map<string, Int8Choice[]>, weights: Map<string, QuantizedWeight>,
  f32: (name: string) => Float32Array, sample?: QuantizeOptions["sample"], dot4?: boolean,
): Promise<QuantizeReport> {
  const st = gpuState(mod, "quantize");
  const sampleFn = sample ? mod.manifest.functions.find((f) => f.name === sample.fn || f.jsName === sample.fn) : undefined;
  if (sample && !sampleFn) throw new KilnError(`quantize: sample names unknown function "${sample.fn}"`, { code: "unknown_function", fn: sample.fn });
  const { pipelines, dot } = await int8Pipelines(mod, st, choices, dot4);
  const built = buildInt8(mod, st, choices, weights, pipelines);
  const sampleChoices = sampleFn ? choices.get(sampleFn.name) ?? [] : [];
  const run = async (fn: FunctionManifest, own: ExecutorResources) => {
    const r = await runWith(st, fn, own, sampleChoices.map((c) => c.variant.output), sample!.inputs, sample!.dims ? { dims: sample!.dims } : undefined);
    return { outs: r.outs, seen: new Map(sampleChoices.map((c, i) => [c.variant.output, dequantized(r.extra[i]!, c, mode)])) };
  };
  let ref: Awaited<ReturnType<typeof run>> | undefined;
  try {
    restoreFloatGpu(mod);
    if (sampleFn) ref = await run(sampleFn, {});
  } catch (e) {
    built.executors.forEach((x) => x.dispose());
    built.buffers.forEach((b) => st.ctx.pool.release(b));
    throw e;
  }
  const q: GpuQState = { mode, weights, choices, original: new Map(), buffers: built.buffers };
  for (const [name, exec] of built.executors) {
    q.original.set(name, st.executors.get(name)!);
    st.executors.set(name, exec);
  }
  st.frozen = frozenParams(weights.keys(), mode);
  qstates.set(mod, q);
  const got = sampleFn ? await run(built.plans.get(sampleFn.name) ?? sampleFn, built.own) : undefined;
  return buildReport({
    mode, backend: "webgpu", wgslDot: dot, choices, weights, f32,
    ...(sampleFn ? { sample: { fn: sampleFn.name, ref: ref!.seen, got: got!.seen, refOuts: ref!.outs, gotOuts: got!.outs } } : {}),
  });
}

/** Switches every function back to its float kernels (a no-op on a float module). */
export function restoreFloatGpu(mod: KilnGpuModule): void {
  const q = qstates.get(mod);
  if (!q) return;
  const st = gpuState(mod, "restoreFloat");
  for (const [name, exec] of q.original) {
    st.executors.get(name)?.dispose();
    st.executors.set(name, exec);
  }
  q.buffers.forEach((b) => st.ctx.pool.release(b));
  st.frozen = undefined;
  qstates.delete(mod);
}

/**
 * For static calibration: runs the f32 function with `values` as extra outputs and hands each one's elements to
 * `see`. One executor serves every batch; call dispose() after the last.
 */
export function gpuObserver(mod: KilnGpuModule, fnName: string, values: readonly number[]): { observe: (inputs: CallInputs | InputValue, see: (value: number, data: AnyTypedArray) => void) => Promise<void>; dispose: () => void } {
  const st = gpuState(mod, "quantizeStatic");
  const fn = mod.manifest.functions.find((f) => f.name === fnName)!;
  const exec = new GpuFunctionExecutor(withOutputs(fn, values), st.ctx);
  return {
    async observe(inputs, see) {
      const ts = exec.run(inputs, undefined);
      try {
        const data = await Promise.all(ts.slice(fn.outputs.length).map(async (t) => (await t.read()).data));
        values.forEach((v, i) => see(v, data[i]!));
      } finally {
        ts.forEach((t) => t.dispose());
      }
    },
    dispose: () => exec.dispose(),
  };
}
