// Shared by the f16/bf16 WebGPU tests: the device (with shader-f16 where the adapter has it), the storage modes to
// run (native array<f16> and forced packed words), 16-bit inputs as bit patterns, running one function in a mode,
// and tolerances derived from the formats.
import type { IRModule } from "../../compiler/ir/graph.js";
import type { RefTensor } from "../../compiler/ops/types.js";
import { buildWgsl } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { referenceParams } from "../../compiler/cli/run.js";
import { loadKilnModuleWebGPU, type KilnGpuModule } from "../../runtime/webgpu/module.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import { Tensor } from "../../runtime/tensor.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { Rng } from "../../runtime/rng.js";
import type { GpuEnv } from "./helpers.js";

export type Half = "f16" | "bf16";
export type Mode = "native" | "packed";

/** Unit roundoff of each format (half an ulp relative): 2^-11 for binary16, 2^-8 for bfloat16, 2^-24 for f32. */
export const UNIT: Record<Half | "f32", number> = { f16: 2 ** -11, bf16: 2 ** -8, f32: 2 ** -24 };
/** Smallest positive subnormal of each format (the absolute error floor of a rounded result). */
export const TINY: Record<Half, number> = { f16: 2 ** -24, bf16: 2 ** -133 };

/** The modes this device can run: native only with shader-f16 (said once, so a missing feature is visible). */
export function modesOf(env: GpuEnv): Mode[] {
  if (!env.h) return [];
  if (env.h.device.features.has("shader-f16")) return ["native", "packed"];
  console.warn(`[webgpu] ${env.h.adapter} has no shader-f16: only the packed f16 path is tested`);
  return ["packed"];
}

export const toBits = (d: Half, x: number): number => (d === "f16" ? f32ToF16Bits(x) : f32ToBf16Bits(x));
export const fromBits = (d: Half, b: number): number => (d === "f16" ? f16BitsToF32(b) : bf16BitsToF32(b));

export interface HostInput {
  readonly tensor: Tensor;
  /** What the reference reads: the decoded values. */
  readonly ref: { dtype: Half | "f32"; shape: number[]; data: number[] };
}

/** n values in [-lo, hi], as a 16-bit tensor (bit patterns) or f32. */
export function randomInput(rng: Rng, dtype: Half | "f32", shape: number[], range = 4): HostInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = Array.from({ length: n }, () => Math.fround((rng.uniform() * 2 - 1) * range));
  return fromValues(dtype, shape, xs);
}

export function fromValues(dtype: Half | "f32", shape: number[], xs: number[]): HostInput {
  if (dtype === "f32") return { tensor: new Tensor("f32", shape, Float32Array.from(xs)), ref: { dtype, shape, data: xs.map(Math.fround) } };
  const bits = Uint16Array.from(xs, (x) => toBits(dtype, x));
  return { tensor: new Tensor(dtype, shape, bits), ref: { dtype, shape, data: [...bits].map((b) => fromBits(dtype, b)) } };
}

const cache = new Map<string, ReturnType<typeof buildWgsl>>();

/** Loads `ir` on the env's device with f16 storage `mode`; checks the module took that mode. */
export async function loadMode(env: GpuEnv, ir: IRModule, mode: Mode, key?: string, seed = 0): Promise<KilnGpuModule> {
  let b = key ? cache.get(key) : undefined;
  if (!b) {
    b = buildWgsl(ir, "half");
    if (key) cache.set(key, b);
  }
  const mod = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: env.h!.device, f16: mode, seed });
  if (mod.halfStorage !== null && mod.halfStorage !== mode) throw new Error(`module runs ${mod.halfStorage}, asked for ${mode}`);
  return mod;
}

/** Runs function `fn` on WebGPU in `mode` and on the reference. */
export async function runMode(env: GpuEnv, ir: IRModule, fn: string, inputs: Record<string, HostInput>, mode: Mode, key?: string): Promise<{ gpu: Tensor[]; ref: RefTensor[]; mod: KilnGpuModule }> {
  const mod = await loadMode(env, ir, mode, key);
  const out = mod.call(fn, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.tensor])));
  const gpu = await Promise.all((out instanceof GpuTensor ? [out] : out).map((t) => t.read()));
  const g = ir.functions.find((x) => x.name === fn)!;
  const ref = evaluateGraph(g, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.ref])), referenceParams(ir, 0));
  mod.dispose();
  return { gpu, ref, mod };
}

/** Decoded values of a result tensor (16-bit bit patterns decoded, f32 as is). */
export function valuesOf(t: Tensor): number[] {
  return t.dtype === "f16" || t.dtype === "bf16" ? [...(t.data as Uint16Array)].map((b) => fromBits(t.dtype as Half, b)) : Array.from(t.data as ArrayLike<number>);
}

/** |got - want| <= tol(i) elementwise; NaN and infinities must match exactly. */
export function expectWithin(got: number[], want: ArrayLike<number>, tol: (i: number, w: number) => number, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} elements, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const x = got[i]!, y = want[i]!;
    if (!Number.isFinite(y)) {
      if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) throw new Error(`${what}[${i}]: got ${x}, expected ${y}`);
      continue;
    }
    if (!(Math.abs(x - y) <= tol(i, y))) throw new Error(`${what}[${i}]: got ${x}, expected ${y} (tolerance ${tol(i, y)})`);
  }
}
