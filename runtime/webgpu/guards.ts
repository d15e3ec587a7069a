/// <reference types="@webgpu/types" />
// WebGPU runtime, control flow: a guarded step (run only if some bool scalars have given values, else zero its
// output) stays on the GPU. A one-invocation kernel reads the guard values and writes the indirect dispatch
// arguments of the step and of a zero-fill of its output, so a call is still one command buffer, never a readback.

import type { Manifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import { FALLBACK_HINT, STAGE_COMPUTE, USAGE, type GpuHandle } from "./device.js";
import { WORD, upload, type BufferPool } from "./buffers.js";

/** Usage of the indirect-arguments buffer: written by the guard kernel, read by dispatchWorkgroupsIndirect. */
const INDIRECT = 256;
const FILL_WORKGROUP = 64;

interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

export interface GuardKit {
  /** Guard kernel for k conditions. */
  readonly guard: Map<number, Kernel>;
  readonly fill: Kernel;
}

export interface GuardPlan {
  readonly guard: Kernel;
  readonly guardBind: GPUBindGroup;
  readonly fill: Kernel;
  readonly fillBind: GPUBindGroup;
  readonly args: GPUBuffer;
  /** Byte offsets of the step's and the fill's indirect arguments in `args`. */
  readonly stepArgs: number;
  readonly fillArgs: number;
}

function guardWgsl(k: number): string {
  const conds = Array.from({ length: k }, (_, i) => i);
  return [
    `// Kiln runtime guard: the step runs (and its output is not zeroed) iff every condition has its wanted value.`,
    `struct Guard {`, `  step_x: u32,`, `  step_y: u32,`, `  step_z: u32,`, `  fill_x: u32,`, ...conds.map((i) => `  when_${i}: u32,`), `}`,
    `@group(0) @binding(0) var<uniform> g: Guard;`,
    `@group(0) @binding(1) var<storage, read_write> args: array<u32>;`,
    ...conds.map((i) => `@group(0) @binding(${i + 2}) var<storage, read> cond_${i}: array<i32>;`),
    `@compute @workgroup_size(1)`,
    `fn main() {`,
    `  let run = ${conds.map((i) => `((cond_${i}[0] != 0i) == (g.when_${i} != 0u))`).join(" && ") || "true"};`,
    `  args[0] = select(0u, g.step_x, run);`, `  args[1] = select(0u, g.step_y, run);`, `  args[2] = select(0u, g.step_z, run);`,
    `  args[4] = select(g.fill_x, 0u, run);`, `  args[5] = 1u;`, `  args[6] = 1u;`,
    `}`,
  ].join("\n");
}

const FILL_WGSL = `// Kiln runtime: zeroes the output of a step whose guard failed.
struct Fill { n: u32, }
@group(0) @binding(0) var<uniform> f: Fill;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${FILL_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < f.n; i = i + nwg.x * ${FILL_WORKGROUP}u) { out[i] = 0u; }
}
`;

async function kernel(h: GpuHandle, label: string, code: string, storage: ("read" | "write")[]): Promise<Kernel> {
  const d = h.device;
  const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: STAGE_COMPUTE, buffer: { type: "uniform" } }];
  storage.forEach((s, i) => entries.push({ binding: i + 1, visibility: STAGE_COMPUTE, buffer: { type: s === "write" ? "storage" : "read-only-storage" } }));
  const layout = d.createBindGroupLayout({ label, entries });
  const module = d.createShaderModule({ label, code });
  const pipeline = await d.createComputePipelineAsync({ label, layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: "main" } });
  return { pipeline, layout };
}

/** The guard kernels a module's steps need (null when no step has a guard). */
export async function buildGuardKit(h: GpuHandle, manifest: Manifest): Promise<GuardKit | null> {
  const counts = new Set<number>();
  for (const f of manifest.functions) for (const s of f.steps) if (s.guard?.length) counts.add(s.guard.length);
  if (counts.size === 0) return null;
  const limit = h.device.limits.maxStorageBuffersPerShaderStage;
  const guard = new Map<number, Kernel>();
  for (const k of counts) {
    if (k + 1 > limit) throw new KilnError(`a step is guarded by ${k} conditions, more than ${h.adapter} can bind (${limit - 1}); ${FALLBACK_HINT}`, { code: "load_failed" });
    guard.set(k, await kernel(h, `kiln guard ${k}`, guardWgsl(k), ["write", ...Array<"read">(k).fill("read")]));
  }
  return { guard, fill: await kernel(h, "kiln fill", FILL_WGSL, ["write"]) };
}

/** Per-call resources of the guarded steps of one plan: two uniform slots and 256 bytes of arguments each. */
export class GuardPlanner {
  readonly #slot: number;
  readonly #uniform: GPUBuffer;
  readonly #args: GPUBuffer;
  readonly #words: Uint32Array;
  #next = 0;

  constructor(private readonly h: GpuHandle, pool: BufferPool, private readonly kit: GuardKit, count: number, owned: GPUBuffer[]) {
    this.#slot = Math.max(256, h.device.limits.minUniformBufferOffsetAlignment, h.device.limits.minStorageBufferOffsetAlignment);
    this.#uniform = pool.acquire(this.#slot * 2 * count, USAGE.UNIFORM | USAGE.COPY_DST);
    this.#args = pool.acquire(this.#slot * count, USAGE.STORAGE | INDIRECT | USAGE.COPY_DST);
    this.#words = new Uint32Array((this.#slot / WORD) * 2 * count);
    owned.push(this.#uniform, this.#args);
  }

  /** `outWords`: 32-bit words of the step's output (buffers.ts wordsOf), zeroed when the guard fails. */
  plan(conds: { buffer: GPUBuffer; when: boolean }[], grid: [number, number, number], out: GPUBuffer, outWords: number): GuardPlan {
    const j = this.#next++;
    const d = this.h.device;
    const g = this.kit.guard.get(conds.length)!;
    const maxDim = d.limits.maxComputeWorkgroupsPerDimension;
    const gw = (2 * j * this.#slot) / WORD, fw = ((2 * j + 1) * this.#slot) / WORD;
    this.#words.set([...grid, Math.min(maxDim, Math.ceil(outWords / FILL_WORKGROUP)), ...conds.map((c) => (c.when ? 1 : 0))], gw);
    this.#words[fw] = outWords;
    const argsAt = j * this.#slot;
    const guardBind = d.createBindGroup({
      layout: g.layout,
      entries: [
        { binding: 0, resource: { buffer: this.#uniform, offset: 2 * j * this.#slot, size: 16 * Math.ceil((4 + conds.length) / 4) } },
        { binding: 1, resource: { buffer: this.#args, offset: argsAt, size: 32 } },
        ...conds.map((c, i) => ({ binding: i + 2, resource: { buffer: c.buffer, offset: 0, size: WORD } })),
      ],
    });
    const fillBind = d.createBindGroup({
      layout: this.kit.fill.layout,
      entries: [
        { binding: 0, resource: { buffer: this.#uniform, offset: (2 * j + 1) * this.#slot, size: 16 } },
        { binding: 1, resource: { buffer: out, offset: 0, size: Math.max(WORD, outWords * WORD) } },
      ],
    });
    return { guard: g, guardBind, fill: this.kit.fill, fillBind, args: this.#args, stepArgs: argsAt, fillArgs: argsAt + 16 };
  }

  /** Uploads every slot filled by plan(). */
  finish(): void {
    upload(this.h, this.#uniform, this.#words);
  }
}

/** Encodes a guarded step: the guard, then the fill and the step, each dispatched indirectly. */
export function encodeGuarded(pass: GPUComputePassEncoder, g: GuardPlan, step: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup }): void {
  pass.setPipeline(g.guard.pipeline);
  pass.setBindGroup(0, g.guardBind);
  pass.dispatchWorkgroups(1);
  pass.setPipeline(g.fill.pipeline);
  pass.setBindGroup(0, g.fillBind);
  pass.dispatchWorkgroupsIndirect(g.args, g.fillArgs);
  pass.setPipeline(step.pipeline);
  pass.setBindGroup(0, step.bindGroup);
  pass.dispatchWorkgroupsIndirect(g.args, g.stepArgs);
}
