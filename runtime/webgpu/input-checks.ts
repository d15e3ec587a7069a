// WebGPU runtime, value checks of GPU-resident inputs: class labels and indices passed as GpuTensors cannot be
// checked on the host before the call, so their values are read back in queue order and checked there; a bad one
// rejects the call's outputs' read() and the module's sync() with the same KilnError the host check throws.
import type { FunctionManifest } from "../manifest.js";
import { checkClassLabels, checkIndices } from "../bind.js";
import type { GpuTensor } from "./gpu-tensor.js";
import { bytesOf, fromWords, readBack, type BufferPool } from "./buffers.js";
import type { GpuHandle } from "./device.js";

/**
 * Starts the read-back of every GpuTensor input that carries labels or indices (TensorSig.classes / bound);
 * undefined when there is none. Called right after the call's commands are submitted: the copy is queued behind
 * them and before any later write to the buffer, so it sees the values the call read.
 */
export function checkDeviceInputs(
  fn: FunctionManifest, gpuInputs: ReadonlyMap<number, GpuTensor>, bufferOf: (t: GpuTensor) => GPUBuffer,
  dims: Record<string, number>, h: GpuHandle, pool: BufferPool, timeoutMs: number, what: string,
): Promise<void> | undefined {
  const checks: Promise<void>[] = [];
  for (const [index, t] of gpuInputs) {
    const sig = fn.inputs[index]!;
    if (sig.classes === undefined && sig.bound === undefined) continue;
    checks.push(readBack(h, pool, bufferOf(t), bytesOf(sig.dtype, t.size), timeoutMs, what).then((bytes) => {
      const values = fromWords(sig.dtype, bytes, t.size) as ArrayLike<number>;
      if (sig.classes !== undefined) checkClassLabels(fn.name, sig.name, sig.classes, values, sig.ignoreIndex);
      checkIndices(fn.name, sig, values, dims);
    }));
  }
  return checks.length ? Promise.all(checks).then(() => undefined) : undefined;
}
