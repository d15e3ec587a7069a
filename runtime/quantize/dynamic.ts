// Post-training int8 quantization of a loaded module (docs/quantization.md): quantizeDynamic switches every
// matmul on a param weight to the int8 variant the compiler put in the manifest, without recompiling; the
// weights are quantized per output channel and prepacked once; restoreFloat switches back. This file is the
// wasm side and the entry points; a WebGPU module is handed to webgpu/quantize.ts (same plan rewrite).

import { KilnError } from "../errors.js";
import { WASM_STATE, type KilnModule, type WasmState } from "../wasm/module.js";
import { FunctionExecutor, type ParamSlot } from "../wasm/executor.js";
import type { AnyTypedArray } from "../dtype.js";
import { packWeight, qpWords, type QuantizedWeight } from "./math.js";
import { buildReport, dequantized, eligible, frozenParams, int8Param, kernelsOf, quantizeWeights, rewrite, type Int8Choice, type QuantizeOptions, type QuantizeReport } from "./plan.js";
import { KilnGpuModule } from "../webgpu/module.js";
import { gpuQuantization, quantizeDynamicGpu, restoreFloatGpu } from "../webgpu/quantize.js";

export type { QuantizeOptions, QuantizeReport, QuantizedOp, ErrorStats, Int8Choice } from "./plan.js";
export { eligible, errorStats } from "./plan.js";

interface QState {
  mode: "dynamic" | "static";
  /** The float executors, restored by restoreFloat. */
  original: Map<string, FunctionExecutor>;
  weights: Map<string, QuantizedWeight>;
  choices: Map<string, Int8Choice[]>;
}

/** How a module is quantized now. */
export interface Quantization {
  mode: "dynamic" | "static";
  weights: Map<string, QuantizedWeight>;
  choices: Map<string, Int8Choice[]>;
}

const qstates = new WeakMap<KilnModule, QState>();
/** Persistent buffers of int8 weights and step params, reused when a module is quantized again. */
const buffers = new WeakMap<KilnModule, Map<string, ParamSlot>>();

export function wasmState(mod: KilnModule, what: string): WasmState {
  const get = (mod as unknown as { [WASM_STATE]?: (w: string) => WasmState })[WASM_STATE];
  if (typeof get !== "function") throw new KilnError(`${what}: expects a module from loadKilnModule or loadKilnModuleWebGPU`, { code: "bad_option" });
  return get.call(mod, what);
}

/** How the module (wasm or WebGPU) is quantized now (undefined: float). */
export function quantizationOf(mod: KilnModule | KilnGpuModule): Quantization | undefined {
  return mod instanceof KilnGpuModule ? gpuQuantization(mod) : qstates.get(mod);
}

function slot(mod: KilnModule, st: WasmState, key: string, weight: string, dtype: "u8" | "f32", numel: number, data: ArrayBufferView): ParamSlot {
  let map = buffers.get(mod);
  if (!map) buffers.set(mod, (map = new Map()));
  let s = map.get(key);
  if (!s || s.numel !== numel || s.param.dtype !== dtype) {
    s = { param: int8Param(key, weight, dtype, numel), ptr: st.memory.allocPersistent(numel * (dtype === "u8" ? 1 : 4), `int8 buffer ${key}`), numel };
    map.set(key, s);
  }
  st.memory.write(s.ptr, data);
  return s;
}

function checkKernels(st: WasmState, choices: Map<string, Int8Choice[]>): void {
  for (const k of kernelsOf(choices)) {
    if (!st.kernels.has(k)) throw new KilnError(`quantize: the wasm has no kernel "${k}"; recompile the module with this Kiln`, { code: "bad_wasm" });
  }
}

/**
 * Switches the listed functions to their int8 calls (the kernels were checked and the weights quantized before).
 * Returns each function's new step index per choice.
 */
export function applyInt8(mod: KilnModule, mode: "dynamic" | "static", choices: Map<string, Int8Choice[]>, weights: Map<string, QuantizedWeight>): Map<string, number[]> {
  const st = wasmState(mod, "quantize");
  checkKernels(st, choices);
  restoreFloat(mod);
  const q: QState = { mode, original: new Map(), weights, choices };
  const params = new Map(st.params);
  const packed = new Map<string, ParamSlot>();
  const steps = new Map<string, number[]>();
  for (const [name, list] of choices) {
    const fn = mod.manifest.functions.find((f) => f.name === name)!;
    const { fn: plan, at } = rewrite(fn, list, (c) => {
      const v = c.variant;
      const qw = weights.get(v.weight)!;
      let w = packed.get(v.weight);
      if (!w) {
        const bytes = packWeight(qw, v.packing.wasm);
        packed.set(v.weight, (w = slot(mod, st, `${v.weight}#int8`, v.weight, "u8", bytes.length, bytes)));
      }
      const words = qpWords(qw, c.input, c.output);
      const qp = slot(mod, st, `${name}#${v.replaces[0]}#qp`, v.weight, "f32", words.length, words);
      params.set(w.param.name, w).set(qp.param.name, qp);
      return { w, qp };
    });
    q.original.set(name, st.executors.get(name)!);
    st.executors.set(name, new FunctionExecutor(plan, { memory: st.memory, kernels: st.kernels, params, seed: st.seed, prepacked: st.prepacked, ...(st.context?.beginCall ? { beginCall: st.context.beginCall } : {}), ...(st.context?.soloKernels ? { soloKernels: st.context.soloKernels } : {}) }));
    steps.set(name, at);
  }
  st.frozen = frozenParams(weights.keys(), mode);
  qstates.set(mod, q);
  return steps;
}

/** Switches every function back to its float kernels (a no-op on a float module). */
export function restoreFloat(mod: KilnModule | KilnGpuModule): void {
  if (mod instanceof KilnGpuModule) return restoreFloatGpu(mod);
  const q = qstates.get(mod);
  if (!q) return;
  const st = wasmState(mod, "restoreFloat");
  for (const [name, exec] of q.original) st.executors.set(name, exec);
  st.frozen = undefined;
  qstates.delete(mod);
}

/**
 * The equivalent of torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8): int8 weights
 * (symmetric, per output channel, f32 scales), activations quantized per row at run time (u8, ONNX
 * DynamicQuantizeLinear), int32 accumulation, dequantization with the bias and ReLU fused where the plan allows.
 * On a WebGPU module it returns a promise (the weights are read back from the GPU first).
 */
export function quantizeDynamic(mod: KilnGpuModule, opts?: QuantizeOptions): Promise<QuantizeReport>;
export function quantizeDynamic(mod: KilnModule, opts?: QuantizeOptions): QuantizeReport;
export function quantizeDynamic(mod: KilnModule | KilnGpuModule, opts: QuantizeOptions = {}): QuantizeReport | Promise<QuantizeReport> {
  if (mod instanceof KilnGpuModule) return quantizeDynamicGpu(mod, opts);
  const fns = eligible(mod, opts, "quantizeDynamic");
  const weights = quantizeWeights(mod.manifest, new Set(fns.flatMap((f) => f.variants.map((v) => v.weight))), (n) => mod.getParam(n).data as Float32Array);
  const choices = new Map(fns.map((f) => [f.fn.name, f.variants.map((variant) => ({ variant, static: false }))]));
  return finish(mod, "dynamic", choices, weights, opts.sample);
}

/** Applies the choices and measures the report (the sample runs once in f32 and once in int8). */
export function finish(mod: KilnModule, mode: "dynamic" | "static", choices: Map<string, Int8Choice[]>, weights: Map<string, QuantizedWeight>, sample?: QuantizeOptions["sample"]): QuantizeReport {
  const st = wasmState(mod, "quantize");
  checkKernels(st, choices);
  const sampleFn = sample ? mod.manifest.functions.find((f) => f.name === sample.fn || f.jsName === sample.fn) : undefined;
  if (sample && !sampleFn) throw new KilnError(`quantize: sample names unknown function "${sample.fn}"`, { code: "unknown_function", fn: sample.fn });
  const sampleChoices = sampleFn ? choices.get(sampleFn.name) ?? [] : [];
  // Layer outputs are read through the executor's hook right after the step writing them (the arena reuses memory).
  const runSample = (at: number[] | undefined) => {
    const seen = new Map<number, AnyTypedArray>();
    const want = new Map(sampleChoices.map((c, i) => [at ? at[i]! : c.variant.replaces.at(-1)!, c]));
    const outs = st.executors.get(sampleFn!.name)!.run(sample!.inputs, sample!.dims ? { dims: sample!.dims } : undefined, (s, read) => {
      const c = want.get(s);
      if (c) seen.set(c.variant.output, dequantized(read(c.variant.output), c, mode));
    });
    return { outs: outs.map((t) => t.data), seen };
  };
  restoreFloat(mod);
  const ref = sampleFn ? runSample(undefined) : undefined;
  const at = applyInt8(mod, mode, choices, weights);
  const got = sampleFn ? runSample(at.get(sampleFn.name)) : undefined;
  return buildReport({
    mode, backend: "wasm", choices, weights, f32: (n) => mod.getParam(n).data as Float32Array,
    ...(sampleFn ? { sample: { fn: sampleFn.name, ref: ref!.seen, got: got!.seen, refOuts: ref!.outs, gotOuts: got!.outs } } : {}),
  });
}
