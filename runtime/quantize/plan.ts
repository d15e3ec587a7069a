// Backend-neutral half of int8 quantization (docs/quantization.md), shared by the wasm runtime (quantize.ts) and
// the WebGPU one (webgpu/quantize.ts): choosing the eligible variants, quantizing the weights, rewriting a
// function's plan to call the int8 kernels, and the report. Pure manifest and array code: no backend state.

import type { FunctionManifest, Int8StepManifest, Manifest, ParamManifest, ValueManifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import type { CallInputs, InputValue } from "../bind.js";
import type { AnyTypedArray } from "../dtype.js";
import { dequantizeWeight, quantizeWeight, type LinearQuant, type QuantizedWeight } from "./math.js";
import { formatQuantizeReport, type ErrorStats, type QuantizedOp, type QuantizeReport } from "./report.js";

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
  /**
   * WebGPU only: run the dot4I8Packed kernels where the adapter has the packed_4x8_integer_dot_product WGSL
   * language feature (default true); false always runs the emulation (same results).
   */
  dot4?: boolean;
}

export type { ErrorStats, QuantizedOp, QuantizeReport } from "./report.js";

/** One int8 call of a plan, as chosen: the variant, its kernel, and (static) its activation quantization. */
export interface Int8Choice {
  variant: Int8StepManifest;
  static: boolean;
  input?: LinearQuant;
  output?: LinearQuant;
}

/** A persistent buffer of the rewritten plan (packed weight or qp words), seen as a param of it. */
export interface Int8Slot {
  readonly param: ParamManifest;
  readonly numel: number;
}

/** The functions to quantize and their eligible variants; a clear error when there are none. */
export function eligible(mod: { manifest: Manifest }, opts: QuantizeOptions, what: string): { fn: FunctionManifest; variants: Int8StepManifest[] }[] {
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

/** Quantizes every named weight from its f32 values (validating all before anything changes). */
export function quantizeWeights(manifest: Manifest, names: Iterable<string>, f32: (name: string) => Float32Array): Map<string, QuantizedWeight> {
  const out = new Map<string, QuantizedWeight>();
  const info = new Map(manifest.functions.flatMap((f) => (f.int8 ?? []).map((v) => [v.weight, v.transposed] as const)));
  for (const name of names) {
    const p = manifest.params.find((x) => x.name === name)!;
    const transposed = info.get(name) ?? false;
    const [K, N] = transposed ? [p.shape[1]!, p.shape[0]!] : [p.shape[0]!, p.shape[1]!];
    out.set(name, quantizeWeight(name, f32(name), K, N, transposed));
  }
  return out;
}

/** The manifest of a buffer the int8 plan reads as a param (named `key`, never one of the model's). */
export function int8Param(key: string, weight: string, dtype: "u8" | "i32" | "f32", numel: number): ParamManifest {
  return { name: key, model: weight.slice(0, weight.indexOf(".")), dtype, shape: [numel], init: { kind: "zeros" } };
}

/**
 * The function's plan with the chosen steps replaced by int8 kernel calls: the weight's packed form and the
 * step's qp words become params (their dtype is the backend's: u8 bytes on wasm, u32 words on WebGPU), a matmul
 * result the call no longer writes has no buffer, and a chained (static q8) activation is stored as u8.
 * Returns the new plan and each choice's step index in it.
 */
export function rewrite(fn: FunctionManifest, choices: Int8Choice[], slotOf: (c: Int8Choice) => { w: Int8Slot; qp: Int8Slot }): { fn: FunctionManifest; at: number[] } {
  const values: ValueManifest[] = fn.values.map((v) => ({ ...v, shape: [...v.shape] }));
  const byFirst = new Map<number, { c: Int8Choice; i: number }>();
  const skip = new Set<number>();
  const calls = choices.map((c, i) => {
    const v = c.variant;
    const { w, qp } = slotOf(c);
    const wv = values.push({ dtype: w.param.dtype, shape: [w.numel], source: { kind: "param", name: w.param.name } }) - 1;
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

/** Why each quantized weight may not be written while the int8 kernels use their copy of it. */
export function frozenParams(weights: Iterable<string>, mode: "dynamic" | "static"): Map<string, string> {
  const how = mode === "dynamic" ? "quantizeDynamic" : "quantizeStatic";
  return new Map([...weights].map((w) => [w, `is quantized to int8 (${how}) and the int8 kernels use a copy of it; call restoreFloat(module) first`]));
}

/** The kernel names the choices call. */
export function kernelsOf(choices: Map<string, Int8Choice[]>): Set<string> {
  return new Set([...choices.values()].flat().map((c) => (c.static ? c.variant.static : c.variant.dynamic)));
}

/** A layer output read during a call, as f32 (a chained u8 activation dequantized with its scale). */
export function dequantized(data: AnyTypedArray, c: Int8Choice, mode: string): AnyTypedArray {
  if (mode !== "static" || !(data instanceof Uint8Array) || !c.output) return data;
  return Float32Array.from(data, (q) => (q - c.output!.zeroPoint) * c.output!.scale);
}

/** What a report is made of besides the choices: the f32 weights, and the sample run in f32 and int8. */
export interface ReportInputs {
  mode: "dynamic" | "static";
  backend: QuantizeReport["backend"];
  wgslDot?: QuantizeReport["wgslDot"];
  choices: Map<string, Int8Choice[]>;
  weights: Map<string, QuantizedWeight>;
  f32: (name: string) => Float32Array;
  /** The sample's function, its layer outputs (by value index, dequantized) and its outputs, f32 and int8. */
  sample?: { fn: string; ref: Map<number, AnyTypedArray>; got: Map<number, AnyTypedArray>; refOuts: AnyTypedArray[]; gotOuts: AnyTypedArray[] };
}

export function buildReport(r: ReportInputs): QuantizeReport {
  const ops: QuantizedOp[] = [];
  for (const [fn, list] of r.choices) {
    for (const c of list) {
      const v = c.variant;
      const w = r.weights.get(v.weight)!;
      const kernelIn = c.static ? (v.staticIn === "q8" ? "q8" : "static") : "dynamic";
      const layer = r.sample && fn === r.sample.fn ? errorStats(r.sample.got.get(v.output)!, r.sample.ref.get(v.output)!) : undefined;
      ops.push({
        fn, steps: v.replaces, ops: v.ops, weight: v.weight, K: w.K, N: w.N, kernel: c.static ? v.static : v.dynamic, input: kernelIn,
        output: c.static ? v.staticOut : "f32", weightError: errorStats(dequantizeWeight(w), r.f32(v.weight)),
        ...(layer ? { outputError: layer } : {}),
      });
    }
  }
  const nw = [...r.weights.values()];
  const weightBytes = { f32: nw.reduce((a, w) => a + 4 * w.K * w.N, 0), int8: nw.reduce((a, w) => a + w.K * w.N + 4 * w.N, 0) };
  const sampleError = r.sample ? errorStats(concat(r.sample.gotOuts), concat(r.sample.refOuts)) : undefined;
  const report = { mode: r.mode, backend: r.backend, ...(r.wgslDot ? { wgslDot: r.wgslDot } : {}), ops, weightBytes, ...(sampleError ? { sampleError } : {}) };
  return { ...report, text: formatQuantizeReport(report) };
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
