// Post-training int8 quantization of a loaded wasm module (docs/quantization.md): quantizeDynamic switches every
// matmul on a param weight to the int8 variant the compiler put in the manifest, without recompiling; the
// weights are quantized per output channel and prepacked once; restoreFloat switches back.

import type { FunctionManifest, Int8StepManifest, ParamManifest, ValueManifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import { WASM_STATE, type KilnModule, type WasmState } from "./module.js";
import { FunctionExecutor, type ParamSlot } from "./executor.js";
import type { CallInputs, InputValue } from "./bind.js";
import type { AnyTypedArray } from "./dtype.js";
import { dequantizeWeight, packWeight, qpWords, quantizeWeight, type LinearQuant, type QuantizedWeight } from "./quantize-math.js";
import { formatQuantizeReport } from "./quantize-report.js";

export interface QuantizeOptions {
  /** Op kinds to quantize; only "matmul" (a matmul whose right operand is a param, the nn.Linear case). */
  ops?: readonly string[];
  dtype?: "int8";
  /** Functions to switch (qualified or method names); default: every function with int8 variants. */
  functions?: readonly string[];
  /** Weight params to keep in f32. */
  exclude?: readonly string[];
  /** Inputs of one call used to measure each quantized layer's output error against f32. */
  sample?: { fn: string; inputs: CallInputs | InputValue; dims?: Record<string, number> };
}

export interface ErrorStats {
  maxAbs: number;
  /** ||quantized - f32|| / ||f32|| (2-norms). */
  relative: number;
}

export interface QuantizedOp {
  fn: string;
  /** Float plan steps the int8 call replaced. */
  steps: number[];
  ops: string[];
  weight: string;
  K: number;
  N: number;
  kernel: string;
  input: "dynamic" | "static" | "q8";
  output: "f32" | "q8";
  /** The weight's dequantization error. */
  weightError: ErrorStats;
  /** The layer's output on the sample, int8 against f32. */
  outputError?: ErrorStats;
}

export interface QuantizeReport {
  mode: "dynamic" | "static";
  ops: QuantizedOp[];
  /** Bytes of the quantized weights in f32 and as int8 plus scales. */
  weightBytes: { f32: number; int8: number };
  /** The sample's outputs, int8 against f32. */
  sampleError?: ErrorStats;
  /** A readable table of the above. */
  text: string;
}

/** One int8 call of a plan, as chosen: the variant, its kernel, and (static) its activation quantization. */
export interface Int8Choice {
  variant: Int8StepManifest;
  static: boolean;
  input?: LinearQuant;
  output?: LinearQuant;
}

interface QState {
  mode: "dynamic" | "static";
  /** The float executors, restored by restoreFloat. */
  original: Map<string, FunctionExecutor>;
  weights: Map<string, QuantizedWeight>;
  choices: Map<string, Int8Choice[]>;
}

const qstates = new WeakMap<KilnModule, QState>();
/** Persistent buffers of int8 weights and step params, reused when a module is quantized again. */
const buffers = new WeakMap<KilnModule, Map<string, ParamSlot>>();

export function wasmState(mod: KilnModule, what: string): WasmState {
  const get = (mod as unknown as { [WASM_STATE]?: (w: string) => WasmState })[WASM_STATE];
  if (typeof get !== "function") throw new KilnError(`${what}: expects a wasm module from loadKilnModule`, { code: "bad_option" });
  return get.call(mod, what);
}

/** How the module is quantized now (undefined: float). */
export function quantizationOf(mod: KilnModule): { mode: "dynamic" | "static"; weights: Map<string, QuantizedWeight>; choices: Map<string, Int8Choice[]> } | undefined {
  return qstates.get(mod);
}

/** The functions to quantize and their eligible variants; a clear error when there are none. */
export function eligible(mod: KilnModule, opts: QuantizeOptions, what: string): { fn: FunctionManifest; variants: Int8StepManifest[] }[] {
  const ops = opts.ops ?? ["matmul"];
  const bad = ops.filter((o) => o !== "matmul");
  if (bad.length) throw new KilnError(`${what}: can quantize only "matmul" ops (a matmul whose weight is a param), not ${bad.map((o) => JSON.stringify(o)).join(", ")}`, { code: "bad_option" });
  if ((opts.dtype ?? "int8") !== "int8") throw new KilnError(`${what}: dtype must be "int8", got ${JSON.stringify(opts.dtype)}`, { code: "bad_option" });
  const fns = mod.manifest.functions;
  const wanted = opts.functions?.map((name) => {
    const f = fns.find((x) => x.name === name) ?? (fns.filter((x) => x.jsName === name).length === 1 ? fns.find((x) => x.jsName === name) : undefined);
    if (!f) throw new KilnError(`${what}: unknown function "${name}"; functions: ${fns.map((x) => x.name).join(", ")}`, { code: "unknown_function", fn: name });
    return f;
  }) ?? fns;
  for (const w of opts.exclude ?? []) {
    if (!mod.manifest.params.some((p) => p.name === w)) throw new KilnError(`${what}: exclude names unknown param "${w}"`, { code: "unknown_param", tensor: w });
  }
  const out = wanted.map((fn) => ({ fn, variants: (fn.int8 ?? []).filter((v) => !opts.exclude?.includes(v.weight)) })).filter((x) => x.variants.length > 0);
  if (out.length === 0) {
    const why = fns.some((f) => f.int8?.length) ? "every eligible weight is excluded or in another function" : "no function has a matmul whose right operand is a param (a linear layer) outside a training step";
    throw new KilnError(`${what}: nothing to quantize in ${mod.manifest.source || "this module"}: ${why}; the module is unchanged`, { code: "bad_option" });
  }
  return out;
}

/** Quantizes every weight the choices use (validating all before anything changes). */
export function quantizeWeights(mod: KilnModule, names: Iterable<string>): Map<string, QuantizedWeight> {
  const out = new Map<string, QuantizedWeight>();
  const info = new Map(mod.manifest.functions.flatMap((f) => (f.int8 ?? []).map((v) => [v.weight, v.transposed] as const)));
  for (const name of names) {
    const p = mod.manifest.params.find((x) => x.name === name)!;
    const transposed = info.get(name) ?? false;
    const [K, N] = transposed ? [p.shape[1]!, p.shape[0]!] : [p.shape[0]!, p.shape[1]!];
    out.set(name, quantizeWeight(name, mod.getParam(name).data as Float32Array, K, N, transposed));
  }
  return out;
}

function slot(mod: KilnModule, st: WasmState, key: string, model: string, dtype: "u8" | "f32", numel: number, data: ArrayBufferView): ParamSlot {
  let map = buffers.get(mod);
  if (!map) buffers.set(mod, (map = new Map()));
  let s = map.get(key);
  if (!s || s.numel !== numel || s.param.dtype !== dtype) {
    const param: ParamManifest = { name: key, model, dtype, shape: [numel], init: { kind: "zeros" } };
    s = { param, ptr: st.memory.allocPersistent(numel * (dtype === "u8" ? 1 : 4), `int8 buffer ${key}`), numel };
    map.set(key, s);
  }
  st.memory.write(s.ptr, data);
  return s;
}

/**
 * The function's plan with the chosen steps replaced by int8 kernel calls: the weight's packed bytes and the
 * step's qp words become params, a matmul result the call no longer writes has no buffer, and a chained
 * (static q8) activation is stored as u8. Returns the new plan and each choice's step index in it.
 */
function rewrite(fn: FunctionManifest, choices: Int8Choice[], slotOf: (c: Int8Choice) => { w: ParamSlot; qp: ParamSlot }): { fn: FunctionManifest; at: number[] } {
  const values: ValueManifest[] = fn.values.map((v) => ({ ...v, shape: [...v.shape] }));
  const byFirst = new Map<number, { c: Int8Choice; i: number }>();
  const skip = new Set<number>();
  const calls = choices.map((c, i) => {
    const v = c.variant;
    const { w, qp } = slotOf(c);
    const wv = values.push({ dtype: "u8", shape: [w.numel], source: { kind: "param", name: w.param.name } }) - 1;
    const qv = values.push({ dtype: "f32", shape: [qp.numel], source: { kind: "param", name: qp.param.name } }) - 1;
    byFirst.set(v.replaces[0]!, { c, i });
    v.replaces.slice(1).forEach((s) => skip.add(s));
    if (v.replaces.length > 1) {
      const dead = fn.steps[v.replaces[0]!]!.buffers.at(-1)!;
      values[dead] = { ...values[dead]!, source: { kind: "fused" } };
    }
    if (c.static && v.staticOut === "q8") values[v.output] = { ...values[v.output]!, dtype: "u8" };
    return {
      kernel: c.static ? v.static : v.dynamic,
      buffers: [v.input, wv, qv, ...(v.bias !== undefined ? [v.bias] : []), v.scratch, v.output],
      ints: v.ints,
      ops: v.ops,
      ...(v.guard ? { guard: v.guard } : {}),
    };
  });
  const steps: FunctionManifest["steps"] = [];
  const at = new Array<number>(choices.length);
  fn.steps.forEach((s, si) => {
    const r = byFirst.get(si);
    if (r) {
      at[r.i] = steps.length;
      steps.push(calls[r.i]!);
    } else if (!skip.has(si)) steps.push(s);
  });
  return { fn: { ...fn, values, steps }, at };
}

/**
 * Switches the listed functions to their int8 calls. Everything that can fail (kernels present, weights
 * quantized) is checked before the module changes. Returns each function's new step index per choice.
 */
function checkKernels(st: WasmState, choices: Map<string, Int8Choice[]>): void {
  for (const list of choices.values()) {
    for (const c of list) {
      const k = c.static ? c.variant.static : c.variant.dynamic;
      if (!st.kernels.has(k)) throw new KilnError(`quantize: the wasm has no kernel "${k}" for ${c.variant.weight}; recompile the module with this Kiln`, { code: "bad_wasm" });
    }
  }
}

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
      const model = v.weight.slice(0, v.weight.indexOf("."));
      let w = packed.get(v.weight);
      if (!w) {
        const bytes = packWeight(qw, v.packing.wasm);
        packed.set(v.weight, (w = slot(mod, st, `${v.weight}#int8`, model, "u8", bytes.length, bytes)));
      }
      const words = qpWords(qw, c.input, c.output);
      const qp = slot(mod, st, `${name}#${v.replaces[0]}#qp`, model, "f32", words.length, words);
      params.set(w.param.name, w).set(qp.param.name, qp);
      return { w, qp };
    });
    q.original.set(name, st.executors.get(name)!);
    st.executors.set(name, new FunctionExecutor(plan, { memory: st.memory, kernels: st.kernels, params, seed: st.seed }));
    steps.set(name, at);
  }
  const how = mode === "dynamic" ? "quantizeDynamic" : "quantizeStatic";
  st.frozen = new Map([...weights.keys()].map((w) => [w, `is quantized to int8 (${how}) and the int8 kernels use a copy of it; call restoreFloat(module) first`]));
  qstates.set(mod, q);
  return steps;
}

/** Switches every function back to its float kernels (a no-op on a float module). */
export function restoreFloat(mod: KilnModule): void {
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
 */
export function quantizeDynamic(mod: KilnModule, opts: QuantizeOptions = {}): QuantizeReport {
  const fns = eligible(mod, opts, "quantizeDynamic");
  const weights = quantizeWeights(mod, new Set(fns.flatMap((f) => f.variants.map((v) => v.weight))));
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
  const runSample = (at: number[] | undefined) => {
    const seen = new Map<number, AnyTypedArray>();
    const want = new Map(sampleChoices.map((c, i) => [at ? at[i]! : c.variant.replaces.at(-1)!, c]));
    const outs = st.executors.get(sampleFn!.name)!.run(sample!.inputs, sample!.dims ? { dims: sample!.dims } : undefined, (s, read) => {
      const c = want.get(s);
      if (c) seen.set(c.variant.output, dequantized(read(c.variant.output), c, mode));
    });
    return { outs, seen };
  };
  restoreFloat(mod);
  const ref = sampleFn ? runSample(undefined) : undefined;
  const at = applyInt8(mod, mode, choices, weights);
  const got = sampleFn ? runSample(at.get(sampleFn.name)) : undefined;
  const ops: QuantizedOp[] = [];
  for (const [fn, list] of choices) {
    for (const c of list) {
      const v = c.variant;
      const w = weights.get(v.weight)!;
      const kernelIn = c.static ? (v.staticIn === "q8" ? "q8" : "static") : "dynamic";
      const layer = fn === sampleFn?.name ? errorStats(got!.seen.get(v.output)!, ref!.seen.get(v.output)!) : undefined;
      ops.push({
        fn, steps: v.replaces, ops: v.ops, weight: v.weight, K: w.K, N: w.N, kernel: c.static ? v.static : v.dynamic, input: kernelIn,
        output: c.static ? v.staticOut : "f32", weightError: errorStats(dequantizeWeight(w), mod.getParam(v.weight).data as Float32Array),
        ...(layer ? { outputError: layer } : {}),
      });
    }
  }
  const nw = [...weights.values()];
  const weightBytes = { f32: nw.reduce((a, w) => a + 4 * w.K * w.N, 0), int8: nw.reduce((a, w) => a + w.K * w.N + 4 * w.N, 0) };
  const sampleError = ref && got ? errorStats(concat(got.outs.map((t) => t.data)), concat(ref.outs.map((t) => t.data))) : undefined;
  const report = { mode, ops, weightBytes, ...(sampleError ? { sampleError } : {}) };
  return { ...report, text: formatQuantizeReport(report) };
}

/** A layer output read during a call, as f32 (a chained u8 activation dequantized with its scale). */
function dequantized(data: AnyTypedArray, c: Int8Choice, mode: string): AnyTypedArray {
  if (mode !== "static" || !(data instanceof Uint8Array) || !c.output) return data;
  return Float32Array.from(data, (q) => (q - c.output!.zeroPoint) * c.output!.scale);
}

function concat(xs: AnyTypedArray[]): Float64Array {
  const out = new Float64Array(xs.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) out[at++] = Number(x[i]);
  return out;
}

export function errorStats(got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>): ErrorStats {
  let maxAbs = 0, d2 = 0, w2 = 0;
  for (let i = 0; i < want.length; i++) {
    const g = Number(got[i]), w = Number(want[i]);
    const d = Math.abs(g - w);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
    d2 += d * d;
    w2 += w * w;
  }
  return { maxAbs, relative: w2 > 0 ? Math.sqrt(d2 / w2) : Math.sqrt(d2) };
}
