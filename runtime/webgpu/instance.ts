/// <reference types="@webgpu/types" />
// WebGPU runtime, call plans: for one binding of a function's symbolic dims, the GPU buffers of every value,
// the uniform block of every step's integer arguments and its bind group, and the dispatch grid. Built on the
// first call with those dims and reused, so a repeated call only uploads inputs and encodes dispatches.

import { evalDimPoly, type FunctionManifest, type ValueManifest } from "../manifest.js";
import { KilnError } from "../errors.js";
import { FALLBACK_HINT, USAGE, type GpuHandle } from "./device.js";
import { WORD, bytesOf, upload, wordsOf, type BufferPool } from "./buffers.js";
import type { KernelPipeline } from "./shaders.js";
import { GuardPlanner, type GuardKit, type GuardPlan } from "./guards.js";

export interface StepPlan {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly grid: [number, number, number];
  /** For a step that runs only when its guard holds (control flow). */
  readonly guard?: GuardPlan;
  /** Inputs the runtime copies into one buffer before the step (kernels with many inputs). */
  readonly pack?: PackPlan;
}

export interface PackPlan {
  readonly buffer: GPUBuffer;
  readonly copies: readonly { readonly src: GPUBuffer; readonly dstWord: number; readonly words: number }[];
}

export interface CallPlan {
  readonly numels: number[];
  /** Buffer of each value (shared along alias chains); null for values no kernel or output needs. */
  readonly buffers: (GPUBuffer | null)[];
  /** null for steps with nothing to compute (an empty tensor). */
  readonly steps: (StepPlan | null)[];
  /** Buffers this plan took from the pool (returned when it is evicted). */
  readonly owned: GPUBuffer[];
}

export interface PlanContext {
  readonly h: GpuHandle;
  readonly pool: BufferPool;
  readonly fn: FunctionManifest;
  readonly pipelines: ReadonlyMap<string, KernelPipeline>;
  /** Root value of each value (aliases resolved). */
  readonly roots: readonly number[];
  /** Values that need a buffer: bound by some step, an output, an update or an input. */
  readonly needed: ReadonlySet<number>;
  readonly paramBuffer: (name: string) => GPUBuffer;
  /** Persistent buffers of consts with concrete shapes; others are filled per plan. */
  readonly constBuffers: ReadonlyMap<number, GPUBuffer>;
  /** The word filling a const's buffer (buffers.ts fillWord). */
  readonly constWords: ReadonlyMap<number, number>;
  readonly guards: GuardKit | null;
}

const I32_MAX = 2147483647;

export function numelOf(shape: ValueManifest["shape"], dims: Record<string, number>): number {
  let n = 1;
  for (const d of shape) {
    const v = typeof d === "number" ? d : dims[d];
    if (v === undefined) throw new Error(`dimension ${d} is not bound`);
    n *= v;
  }
  return n;
}

function stepInts(c: PlanContext, dims: Record<string, number>, what: string): number[][] {
  return c.fn.steps.map((step, si) => step.ints.map((p) => {
    let x: number;
    try {
      x = evalDimPoly(p, dims);
    } catch (e) {
      throw new KilnError(`invalid module: function ${c.fn.name}: step ${si} (${step.kernel}): ${(e as Error).message}`, { code: "bad_manifest", fn: c.fn.name, cause: e });
    }
    if (!Number.isInteger(x) || x < 0 || x > I32_MAX) {
      throw new KilnError(`${what}: step ${si} (${step.kernel}) needs the integer argument ${x}, outside the kernels' range: the dims are too large`, { code: "out_of_memory", fn: c.fn.name });
    }
    return x;
  }));
}

function checkSize(c: PlanContext, i: number, numel: number, what: string): void {
  const lim = c.h.device.limits;
  const bytes = bytesOf(c.fn.values[i]!.dtype, numel);
  const max = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  if (bytes > max) {
    const v = c.fn.values[i]!;
    throw new KilnError(
      `${what}: tensor %${i} (${v.dtype}[${v.shape.join(", ")}], ${numel} elements) needs ${bytes} bytes of GPU memory in one binding, ` +
        `more than ${c.h.adapter} allows (${max} bytes); use smaller inputs, or ${FALLBACK_HINT}`,
      { code: "out_of_memory", fn: c.fn.name },
    );
  }
}

function allocate(c: PlanContext, numels: number[], owned: GPUBuffer[], what: string): (GPUBuffer | null)[] {
  const buffers: (GPUBuffer | null)[] = c.fn.values.map(() => null);
  for (const i of c.needed) {
    const r = c.roots[i]!;
    if (buffers[r]) continue;
    const v = c.fn.values[r]!;
    checkSize(c, r, numels[r]!, what);
    if (v.source.kind === "param") buffers[r] = c.paramBuffer(v.source.name);
    else if (c.constBuffers.has(r)) buffers[r] = c.constBuffers.get(r)!;
    else {
      const buf = c.pool.acquire(bytesOf(v.dtype, numels[r]!));
      owned.push(buf);
      buffers[r] = buf;
      if (v.source.kind === "const") upload(c.h, buf, new Uint32Array(wordsOf(v.dtype, numels[r]!)).fill(c.constWords.get(r)!));
    }
  }
  for (let i = 0; i < buffers.length; i++) buffers[i] = buffers[c.roots[i]!] ?? null;
  return buffers;
}

/** The packed inputs of a step (value indices), their word offsets in the pack and its size; null if none. */
function packLayout(c: PlanContext, kernel: string, bufs: readonly number[], numels: readonly number[]): { members: number[]; offsets: number[]; words: number } | null {
  const uses = c.pipelines.get(kernel)!.meta.buffers;
  const members = bufs.filter((_, j) => uses[j] === "pack");
  if (members.length === 0) return null;
  const offsets: number[] = [];
  let words = 0;
  for (const m of members) {
    offsets.push(words);
    words += wordsOf(c.fn.values[m]!.dtype, numels[m]!);
  }
  return { members, offsets, words };
}

function gridOf(c: PlanContext, k: KernelPipeline, ints: readonly number[]): [number, number, number] | null {
  const maxDim = c.h.device.limits.maxComputeWorkgroupsPerDimension;
  const g = k.meta.grid.map((axis) => Math.ceil(axis.ints.reduce((a, i) => a * ints[i]!, 1) / axis.per));
  if (g.some((n) => n === 0)) return null;
  return g.map((n) => Math.min(n, maxDim)) as [number, number, number];
}

/** Builds the buffers, uniforms and bind groups of every step for one binding of the dims. */
export function buildCallPlan(c: PlanContext, dims: Record<string, number>, what: string): CallPlan {
  const fn = c.fn;
  const numels = fn.values.map((v, i) => {
    try {
      return numelOf(v.shape, dims);
    } catch (e) {
      throw new KilnError(`invalid module: function ${fn.name}: value ${i}: ${(e as Error).message}`, { code: "bad_manifest", fn: fn.name, cause: e });
    }
  });
  const ints = stepInts(c, dims, what);
  const owned: GPUBuffer[] = [];
  const buffers = allocate(c, numels, owned, what);
  // Packed inputs lie back to back; their word offsets follow the step's ints in its uniform block.
  const packs = fn.steps.map((step) => packLayout(c, step.kernel, step.buffers, numels));
  packs.forEach((pk, si) => pk && ints[si]!.push(...pk.offsets));
  const align = c.h.device.limits.minUniformBufferOffsetAlignment;
  const slot = Math.ceil(Math.max(16, ...ints.map((x) => x.length * 4)) / align) * align;
  const uniform = c.pool.acquire(Math.max(16, slot * fn.steps.length), USAGE.UNIFORM | USAGE.COPY_DST);
  owned.push(uniform);
  const words = new Uint32Array((slot / 4) * fn.steps.length);
  ints.forEach((xs, si) => words.set(xs, (si * slot) / 4));
  upload(c.h, uniform, words);
  const grids = fn.steps.map((step, si) => gridOf(c, c.pipelines.get(step.kernel)!, ints[si]!));
  const guarded = fn.steps.filter((s, si) => s.guard?.length && grids[si]).length;
  const guards = guarded && c.guards ? new GuardPlanner(c.h, c.pool, c.guards, guarded, owned) : null;
  const steps = fn.steps.map((step, si): StepPlan | null => {
    const k = c.pipelines.get(step.kernel)!;
    const grid = grids[si];
    if (!grid) return null;
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform, offset: si * slot, size: Math.max(16, Math.ceil((ints[si]!.length * 4) / 16) * 16) } }];
    let pack: PackPlan | undefined;
    step.buffers.forEach((b, j) => {
      const use = k.meta.buffers[j];
      if (use === "none" || (use === "pack" && pack)) return;
      if (use === "pack") {
        const layout = packs[si]!;
        const buffer = c.pool.acquire(layout.words * WORD);
        owned.push(buffer);
        pack = { buffer, copies: layout.members.map((m, q) => ({ src: buffers[m]!, dstWord: layout.offsets[q]!, words: wordsOf(fn.values[m]!.dtype, numels[m]!) })).filter((x) => x.words > 0) };
        entries.push({ binding: entries.length, resource: { buffer, offset: 0, size: Math.max(WORD, layout.words * WORD) } });
        return;
      }
      entries.push({ binding: entries.length, resource: { buffer: buffers[b]!, offset: 0, size: Math.max(WORD, bytesOf(fn.values[b]!.dtype, numels[b]!)) } });
    });
    const bindGroup = c.h.device.createBindGroup({ label: `${fn.name} step ${si} (${step.kernel})`, layout: k.layout, entries });
    const extra = pack ? { pack } : {};
    if (!step.guard?.length) return { pipeline: k.pipeline, bindGroup, grid, ...extra };
    const out = step.buffers[step.buffers.length - 1]!;
    const conds = step.guard.map((g) => ({ buffer: buffers[g.value]!, when: g.when }));
    return { pipeline: k.pipeline, bindGroup, grid, guard: guards!.plan(conds, grid, buffers[out]!, wordsOf(fn.values[out]!.dtype, numels[out]!)), ...extra };
  });
  guards?.finish();
  return { numels, buffers, steps, owned };
}
