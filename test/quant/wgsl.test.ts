/// <reference types="@webgpu/types" />
// The WGSL int8 matmul (compiler/codegen/wgsl/qmatmul.ts) on a real WebGPU device, both the emulated
// dot4I8Packed and the builtin (where the packed_4x8_integer_dot_product language feature exists): u8 x i8 -> i32
// exact against the integer reference; dynamic and static modes against the wasm arithmetic within one
// quantization step (GPU division may round differently).
import { afterAll, describe, expect, it } from "vitest";
import type { QMatmulKernel } from "../../compiler/codegen/kernel.js";
import { renderQMatmul, WGSL_QPACKING } from "../../compiler/codegen/wgsl/qmatmul.js";
import { kernelMeta, renderShader } from "../../compiler/codegen/wgsl/shader.js";
import { USAGE, MAP_READ, STAGE_COMPUTE } from "../../runtime/webgpu/device.js";
import { packWeight, qpWords, type LinearQuant, type QuantizedWeight } from "../../runtime/quantize/math.js";
import { rng } from "../codegen/wasm-harness.js";
import { randomWeight, refQMatmul } from "./reference.js";
import { webgpuEnv } from "../webgpu/helpers.js";

const env = await webgpuEnv("int8 WGSL kernels");
const device = env.h?.device;
afterAll(() => env.h?.device.destroy());
// In Node the GPU object is Dawn's (kept alive by the handle); in a browser it is navigator.gpu.
const gpu = (env.h?.keepAlive ?? (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) as { wgslLanguageFeatures?: ReadonlySet<string> } | undefined;
const features = gpu?.wgslLanguageFeatures;

async function run(spec: QMatmulKernel, dot4: boolean, a: Float32Array | Uint8Array, M: number, K: number, w: QuantizedWeight, o: { bias?: Float32Array; qin?: LinearQuant; qout?: LinearQuant }): Promise<Float32Array | Int32Array> {
  const d = device!;
  const shader = renderQMatmul("q", spec, { dot4 });
  const meta = kernelMeta(shader);
  d.pushErrorScope("validation");
  const module = d.createShaderModule({ code: renderShader(shader) });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}: ${m.message}`);
  if (errs.length) throw new Error(errs.join("\n"));
  const bound = meta.buffers.filter((b) => b !== "none");
  const layout = d.createBindGroupLayout({ entries: [{ binding: 0, visibility: STAGE_COMPUTE, buffer: { type: "uniform" } }, ...bound.map((b, i) => ({ binding: i + 1, visibility: STAGE_COMPUTE, buffer: { type: (b === "write" ? "storage" : "read-only-storage") as GPUBufferBindingType } }))] });
  const pipeline = d.createComputePipeline({ layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: "main" } });
  const buf = (data: ArrayBufferView, usage = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC) => {
    const b = d.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 4) * 4), usage });
    d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  };
  const N = w.N;
  const words = a instanceof Uint8Array ? Int32Array.from(a) : a; // WGSL tensors: one word per element
  const out = d.createBuffer({ size: Math.max(16, M * N * 4), usage: USAGE.STORAGE | USAGE.COPY_SRC });
  const bufs = [buf(words), buf(packWeight(w, WGSL_QPACKING)), buf(qpWords(w, o.qin, o.qout)), ...(spec.bias ? [buf(o.bias!)] : []), out];
  const uni = buf(Uint32Array.from([M, K, N, 0, M]), USAGE.UNIFORM | USAGE.COPY_DST);
  const group = d.createBindGroup({ layout, entries: [uni, ...bufs].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const read = d.createBuffer({ size: Math.max(16, M * N * 4), usage: USAGE.MAP_READ | USAGE.COPY_DST });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(Math.ceil(N / 16), Math.ceil(M / 16), 1);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, read.size);
  d.queue.submit([enc.finish()]);
  const err = await d.popErrorScope();
  if (err) throw new Error(err.message);
  await read.mapAsync(MAP_READ);
  const bytes = read.getMappedRange().slice(0, M * N * 4);
  read.unmap();
  return spec.output === "f32" ? new Float32Array(bytes) : new Int32Array(bytes);
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [3, 17, 5], [17, 3, 255], [33, 257, 17], [255, 64, 3], [20, 255, 257]];
const variants = [false, ...(features?.has("packed_4x8_integer_dot_product") ? [true] : [])];
const spec = (input: QMatmulKernel["input"], output: QMatmulKernel["output"], bias = false, relu = false): QMatmulKernel => ({ kind: "qmatmul", input, output, bias, relu });

describe.skipIf(!device)("WGSL qmatmul", () => {
  for (const dot4 of variants) {
    it(`u8 x i8 -> i32 is exact (${dot4 ? "dot4I8Packed" : "emulated dot4"})`, async () => {
      const r = rng(11);
      for (const [M, K, N] of SHAPES) {
        const w = randomWeight(r, K, N, (M + N) % 2 === 1);
        const a = Uint8Array.from({ length: M * K }, () => Math.floor(r() * 256));
        const qin = { scale: Math.fround(0.02), zeroPoint: 131 };
        const s = spec("q8", "i32");
        expect(Array.from(await run(s, dot4, a, M, K, w, { qin })), `${M}x${K}x${N}`).toEqual(Array.from(refQMatmul(s, a, M, K, w, { qin })));
      }
    });

    it(`dynamic and static modes agree with the wasm arithmetic (${dot4 ? "dot4I8Packed" : "emulated dot4"})`, async () => {
      const r = rng(12);
      for (const [M, K, N] of SHAPES) {
        const w = randomWeight(r, K, N);
        const a = Float32Array.from({ length: M * K }, (_, i) => (i % 7 === 0 ? 0 : r() * 4 - 1.5));
        const bias = Float32Array.from({ length: N }, () => r() - 0.5);
        const qin = { scale: Math.fround(5.5 / 255), zeroPoint: 69 }, qout = { scale: Math.fround(0.5), zeroPoint: 10 };
        for (const s of [spec("dynamic", "f32", true, true), spec("static", "f32", true, false), spec("static", "q8", true, true)]) {
          const got = await run(s, dot4, a, M, K, w, { bias, qin, qout });
          const want = refQMatmul(s, a, M, K, w, { bias, qin, qout });
          const maxW = Math.max(...w.scales);
          got.forEach((g, i) => {
            // One activation step (at most 127 * weight scale * row scale) or one output step for u8.
            const tol = s.output === "q8" ? 1 : 2 * 127 * maxW * 0.03 + 1e-5 * Math.abs(want[i]!);
            expect(Math.abs(g - want[i]!), `${s.input}->${s.output} ${M}x${K}x${N} [${i}]`).toBeLessThanOrEqual(tol);
          });
        }
      }
    });
  }

  it("a row with NaN gives NaN outputs", async () => {
    const w = randomWeight(rng(1), 5, 3);
    const a = Float32Array.from([1, NaN, 2, 3, 4, 1, 1, 1, 1, 1]);
    const got = await run(spec("dynamic", "f32"), false, a, 2, 5, w, {});
    expect(Array.from(got.subarray(0, 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(got.subarray(3)).every(Number.isFinite)).toBe(true);
  });
});
