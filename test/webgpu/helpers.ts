// WebGPU test helpers: one device per test file (Dawn in Node: lavapipe/Vulkan or llvmpipe/GL), or the reason
// there is none so suites skip loudly; building modules for WebGPU and running them against the reference.
import { acquireDevice, type GpuHandle } from "../../runtime/webgpu/device.js";
import { loadKilnModuleWebGPU, type KilnGpuModule } from "../../runtime/webgpu/module.js";
import { buildWgsl } from "../../compiler/compile.js";
import type { WgslBuildOptions } from "../../compiler/codegen/wgsl/module.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import type { RefTensor } from "../../compiler/ops/types.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { referenceParams } from "../../compiler/cli/run.js";
import { Tensor } from "../../runtime/tensor.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import type { Input } from "../helpers/backend.js";

export interface GpuEnv {
  /** The shared device, or undefined with `reason` saying why the WebGPU suites skip. */
  readonly h?: GpuHandle;
  readonly reason?: string;
}

/**
 * Acquires the file's device (with `optionalFeatures` where the adapter has them, e.g. shader-f16); never throws
 * (and never hangs: 60 s at most).
 */
export async function webgpuEnv(suite: string, optionalFeatures: readonly string[] = []): Promise<GpuEnv> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const h = await Promise.race([
      acquireDevice({ optionalFeatures }),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error("no adapter after 60 s")), 60_000); }),
    ]);
    console.log(`[webgpu] ${suite}: running on ${h.adapter}`);
    return { h };
  } catch (e) {
    const reason = (e as Error).message;
    // CI sets this once it has installed a software adapter: then a missing adapter is a failure, not a skip.
    if (process.env.KILN_REQUIRE_WEBGPU === "1") throw new Error(`${suite}: KILN_REQUIRE_WEBGPU=1 but ${reason}`);
    console.warn(`[webgpu] SKIPPING ${suite}: ${reason}`);
    return { reason };
  } finally {
    clearTimeout(timer);
  }
}

export async function gpuModule(env: GpuEnv, ir: IRModule, seed = 0, opts: WgslBuildOptions = {}): Promise<KilnGpuModule> {
  const b = buildWgsl(ir, "test", opts);
  return loadKilnModuleWebGPU(b.manifest, b.wgsl!, { seed, device: env.h!.device });
}

/** Runs `fn` on WebGPU (reading every output back) and on the reference with the same params. */
export async function runGpuVsRef(
  env: GpuEnv, ir: IRModule, fn: string, inputs: Record<string, Input>, opts: { seed?: number; module?: KilnGpuModule; wgsl?: WgslBuildOptions } = {},
): Promise<{ gpu: Tensor[]; ref: RefTensor[] }> {
  const g = ir.functions.find((x) => x.name === fn);
  if (!g) throw new Error(`no function ${fn}`);
  const mod = opts.module ?? (await gpuModule(env, ir, opts.seed ?? 0, opts.wgsl));
  const given: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) given[k] = new Tensor(v.dtype, v.shape, v.data);
  const out = mod.call(fn, given);
  const gpu = await Promise.all((out instanceof GpuTensor ? [out] : out).map((t) => t.read()));
  if (!opts.module) mod.dispose();
  return { gpu, ref: evaluateGraph(g, inputs, referenceParams(ir, opts.seed ?? 0)) };
}

export { ensureRuntimeBuilt } from "../helpers/dist.js";
