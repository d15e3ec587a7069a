// Static int8 quantization (docs/quantization.md): calibrates the activation range of every int8 step's input
// over a few batches of the f32 model (min/max or a percentile), then runs the function's matmul chain in int8,
// each step requantizing its output to u8 for the next one instead of going back to f32. Wasm and WebGPU modules.

import { KilnError } from "../errors.js";
import type { KilnModule } from "../wasm/module.js";
import type { CallInputs, InputValue } from "../bind.js";
import type { AnyTypedArray } from "../dtype.js";
import type { Int8StepManifest } from "../manifest.js";
import { finish, restoreFloat, wasmState } from "./dynamic.js";
import { eligible, quantizeWeights, type Int8Choice, type QuantizeOptions, type QuantizeReport } from "./plan.js";
import { rangeToQuant, type LinearQuant } from "./math.js";
import { KilnGpuModule } from "../webgpu/module.js";
import { finishGpu, gpuObserver, readParams } from "../webgpu/quantize.js";

export type Calibration = "minmax" | { percentile: number };

export interface StaticQuantizeOptions extends Pick<QuantizeOptions, "ops" | "dtype" | "sample" | "dot4"> {
  /** The function to calibrate and switch, e.g. "MnistMLP.forward" (static ranges belong to one function). */
  fn: string;
  /** Calibration batches: a DataLoader or any (async) iterable. */
  data: AsyncIterable<unknown> | Iterable<unknown>;
  /** Turns one item of `data` into the function's inputs (default: the item itself). */
  inputs?: (batch: never) => CallInputs | InputValue;
  /** Batches to observe (default 8). */
  batches?: number;
  /** Range of each activation: its min and max (default), or the given percentile of |tails| (e.g. 99.99). */
  calibration?: Calibration;
}

/** Keeps every value until `cap`, then every 2nd, 4th, ... value: a bounded, deterministic sample. */
class Observed {
  min = 0;
  max = 0;
  count = 0;
  private stride = 1;
  private kept: number[] = [];
  constructor(private readonly cap: number) {}
  add(data: ArrayLike<number>): void {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      if (Number.isNaN(v)) throw new KilnError(`quantizeStatic: calibration saw NaN in an activation; the f32 model is not finite on this data`, { code: "non_finite" });
      if (this.cap > 0 && (this.count + i) % this.stride === 0) this.kept.push(v);
      if (this.kept.length > this.cap) {
        this.kept = this.kept.filter((_, j) => j % 2 === 0);
        this.stride *= 2;
      }
    }
    this.count += data.length;
  }
  range(c: Calibration): [number, number] {
    if (c === "minmax") return [this.min, this.max];
    const s = Float64Array.from(this.kept).sort();
    const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))]!;
    return [at(1 - c.percentile / 100), at(c.percentile / 100)];
  }
}

/** Runs the f32 function on one batch and hands `see` each observed value's elements (while they are valid). */
type Observe = (inputs: CallInputs | InputValue, see: (value: number, data: AnyTypedArray) => void) => void | Promise<void>;

/** Observes the inputs of `variants` over the batches (f32 kernels) and returns each value's quantization. */
async function calibrate(variants: Int8StepManifest[], opts: StaticQuantizeOptions, observe: Observe): Promise<Map<number, LinearQuant>> {
  const c = opts.calibration ?? "minmax";
  if (c !== "minmax" && !(typeof c === "object" && c.percentile > 50 && c.percentile <= 100)) {
    throw new KilnError(`quantizeStatic: calibration must be "minmax" or { percentile: p } with 50 < p <= 100, got ${JSON.stringify(c)}`, { code: "bad_option" });
  }
  const batches = opts.batches ?? 8;
  if (!Number.isInteger(batches) || batches < 1) throw new KilnError(`quantizeStatic: batches must be a positive integer, got ${String(batches)}`, { code: "bad_option" });
  const stats = new Map(variants.map((v) => [v.input, new Observed(c === "minmax" ? 0 : 1 << 20)]));
  let n = 0;
  for await (const item of opts.data as AsyncIterable<unknown>) {
    const inputs = opts.inputs ? opts.inputs(item as never) : (item as CallInputs);
    await observe(inputs, (v, data) => stats.get(v)!.add(data as Float32Array));
    if (++n >= batches) break;
  }
  if (n === 0) throw new KilnError(`quantizeStatic: the calibration data gave no batches`, { code: "bad_option" });
  const out = new Map<number, LinearQuant>();
  for (const v of variants) {
    const o = stats.get(v.input)!;
    if (o.count === 0) throw new KilnError(`quantizeStatic: calibration never saw the input of ${v.weight}'s matmul (a branch not taken?)`, { code: "bad_option" });
    out.set(v.input, rangeToQuant(...o.range(c)));
  }
  return out;
}

/**
 * Calibrates `opts.fn` on f32 and switches it to fully-int8 matmul chains: the first layer quantizes its f32
 * input with the calibrated scale, each following one reads the u8 its predecessor wrote, and the last
 * dequantizes to f32. Weights are quantized as in quantizeDynamic.
 */
export async function quantizeStatic(mod: KilnModule | KilnGpuModule, opts: StaticQuantizeOptions): Promise<QuantizeReport> {
  const [target] = eligible(mod, { ...opts, functions: [opts.fn] }, "quantizeStatic");
  const { fn, variants } = target!;
  if (variants.length !== (fn.int8 ?? []).length) throw new KilnError(`quantizeStatic: internal: every int8 step of ${fn.name} must be quantized`, { code: "bad_option" });
  const names = new Set(variants.map((v) => v.weight));
  const gpu = mod instanceof KilnGpuModule;
  const f32 = gpu ? await readParams(mod, names) : new Map([...names].map((n) => [n, mod.getParam(n).data as Float32Array]));
  const weights = quantizeWeights(mod.manifest, names, (n) => f32.get(n)!);
  restoreFloat(mod);
  let act: Map<number, LinearQuant>;
  if (gpu) {
    const o = gpuObserver(mod, fn.name, variants.map((v) => v.input));
    try {
      act = await calibrate(variants, opts, o.observe);
    } finally {
      o.dispose();
    }
  } else {
    // Each input is read right after the matmul that consumes it (the arena reuses its memory later).
    const at = new Map(variants.map((v) => [v.replaces[0]!, v.input]));
    const exec = wasmState(mod, "quantizeStatic").executors.get(fn.name)!;
    act = await calibrate(variants, opts, (inputs, see) => {
      exec.run(inputs, undefined, (s, read) => {
        const v = at.get(s);
        if (v !== undefined) see(v, read(v));
      });
    });
  }
  const choices: Int8Choice[] = variants.map((v) => ({
    variant: v,
    static: true,
    input: act.get(v.input)!,
    ...(v.staticOut === "q8" ? { output: act.get(v.output)! } : {}),
  }));
  const chosen = new Map([[fn.name, choices]]);
  return gpu ? finishGpu(mod, "static", chosen, weights, (n) => f32.get(n)!, opts.sample, opts.dot4) : finish(mod, "static", chosen, weights, opts.sample);
}
