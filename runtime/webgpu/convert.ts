/// <reference types="@webgpu/types" />
// WebGPU runtime: a GpuTensor passed for an input that mixed precision stores in 16 bits (TensorSig.storage) is
// converted on the GPU by the input's `convert` kernel (an elementwise f32 -> f16/bf16 cast the compiler adds,
// rounding exactly as the host conversion does), so chained GPU calls never read data back to the host.

import { USAGE, type GpuHandle } from "./device.js";
import { upload, type BufferPool } from "./buffers.js";
import type { KernelPipeline } from "./shaders.js";

export interface InputConversion {
  readonly kernel: KernelPipeline;
  /** The GpuTensor's f32 buffer and the input value's 16-bit buffer of this call. */
  readonly src: GPUBuffer;
  readonly dst: GPUBuffer;
  readonly numel: number;
}

/**
 * Encodes one compute pass running every conversion (before the function's own pass). Returns the uniform
 * buffers it took from the pool: the caller releases them after submitting (queue order keeps a later reuse
 * from overwriting them early).
 */
export function encodeInputConversions(h: GpuHandle, pool: BufferPool, enc: GPUCommandEncoder, jobs: readonly InputConversion[], label: string): GPUBuffer[] {
  const uniforms: GPUBuffer[] = [];
  const pass = enc.beginComputePass({ label: `${label}: 16-bit inputs` });
  const maxDim = h.device.limits.maxComputeWorkgroupsPerDimension;
  for (const j of jobs) {
    // The elementwise kernel of rank 1: one integer argument, the element count; bindings (in, out).
    const uniform = pool.acquire(16, USAGE.UNIFORM | USAGE.COPY_DST);
    upload(h, uniform, new Uint32Array([j.numel, 0, 0, 0]));
    uniforms.push(uniform);
    const bindGroup = h.device.createBindGroup({
      label: `${label}: convert to 16 bits`,
      layout: j.kernel.layout,
      entries: [
        { binding: 0, resource: { buffer: uniform, offset: 0, size: 16 } },
        { binding: 1, resource: { buffer: j.src } },
        { binding: 2, resource: { buffer: j.dst } },
      ],
    });
    const grid = j.kernel.meta.grid.map((axis) => Math.min(maxDim, Math.ceil(axis.ints.reduce((a, i) => a * (i === 0 ? j.numel : 1), 1) / axis.per))) as [number, number, number];
    pass.setPipeline(j.kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...grid);
  }
  pass.end();
  return uniforms;
}
