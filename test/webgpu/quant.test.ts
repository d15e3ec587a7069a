// Int8 quantization of a WebGPU module (runtime/webgpu/quantize.ts): quantizeDynamic and quantizeStatic run the
// manifest's WGSL int8 kernels (dot4I8Packed where the adapter has it, and the emulation); results against the
// f32 model (test/quant's bound) and the wasm int8 path (integer sums exactly), restoreFloat, the bad inputs the
// wasm path refuses, and int8 files across backends. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { withWgsl } from "../../compiler/compile.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { loadKilnModuleWebGPU, type KilnGpuModule } from "../../runtime/webgpu/module.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import type { Tensor } from "../../runtime/tensor.js";
import { quantizationOf, quantizeDynamic, restoreFloat } from "../../runtime/quantize/dynamic.js";
import { quantizeStatic } from "../../runtime/quantize/static.js";
import { loadQuantized, serializeQuantized } from "../../runtime/quantize/io.js";
import { hasPackedDot4 } from "../../runtime/webgpu/shaders.js";
import { KilnError } from "../../runtime/errors.js";
import { rangeToQuant } from "../../runtime/quantize/math.js";
import { LAYER, bound, build, mlpSource, values } from "../quant/helpers.js";
import { webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("int8 quantization on WebGPU");
afterAll(() => env.h?.device.destroy());
const dot4 = env.h ? await hasPackedDot4(env.h) : false;

const MLP = mlpSource("M");

/** The same compiled module on wasm and on WebGPU, with the same params. */
async function both(src: string, seed: number): Promise<{ wasm: KilnModule; gpu: KilnGpuModule }> {
  const b = await build(src);
  const g = withWgsl(b.manifest, b.plan, "q");
  return { wasm: await loadKilnModule(b.manifest, b.wasm, { seed }), gpu: await loadKilnModuleWebGPU(g.manifest, g.wgsl, { seed, device: env.h!.device }) };
}
const onGpu = async (m: KilnGpuModule, fn: string, x: Float32Array) => (await (m.call(fn, { x }) as GpuTensor).read()).data as Float32Array;
const onWasm = (m: KilnModule, fn: string, x: Float32Array) => (m.call(fn, { x }) as Tensor).data as Float32Array;
const row = (j: number) => Math.floor(j / 19);
const rejection = async (p: Promise<unknown>) => p.then(() => { throw new Error("expected a rejection"); }, (e: unknown) => e as KilnError);

describe.skipIf(!env.h)("int8 on WebGPU", () => {
  for (const useDot4 of [true, false]) {
    const label = useDot4 && dot4 ? "dot4I8Packed" : "emulated";
    it(`dynamic (${useDot4 ? "default" : "dot4: false"}): same ops as wasm, within the f32 bound, equal to wasm int8 up to f32 rounding`, async () => {
      const { wasm, gpu } = await both(LAYER, 3);
      const bias = values(19, 9).map((v) => v * 0.3);
      wasm.setParam("L.b", bias);
      gpu.setParam("L.b", bias);
      const B = 23;
      const x = values(B * 37, 5).map((v, i) => (i % 37 === 0 ? 0 : v * 2));
      const fns = ["L.forward", "L.back", "L.plain"];
      const f32 = await Promise.all(fns.map((f) => onGpu(gpu, f, x)));
      const sample = { fn: "L.forward", inputs: { x } };
      const rw = quantizeDynamic(wasm, { sample });
      const rg = await quantizeDynamic(gpu, { ops: ["matmul"], dtype: "int8", sample, dot4: useDot4 });
      const summary = (r: typeof rw) => r.ops.map((o) => [o.fn, o.weight, o.ops.join("+"), o.kernel, o.input, o.output]);
      expect(summary(rg)).toEqual(summary(rw));
      expect(rg).toMatchObject({ backend: "webgpu", wgslDot: label, mode: "dynamic" });
      expect(rg.text).toContain(`dynamic int8 quantization of 4 op(s) on WebGPU (${label === "emulated" ? "emulated dot4I8Packed" : label})`);
      expect(rg.ops[0]!.outputError!.maxAbs).toBeGreaterThan(0);
      expect(rg.sampleError!.relative).toBeCloseTo(rw.sampleError!.relative, 4);
      const qg = quantizationOf(gpu)!, qw = quantizationOf(wasm)!;
      expect(Array.from(qg.weights.get("L.w")!.q)).toEqual(Array.from(qw.weights.get("L.w")!.q));
      for (const [i, f] of fns.entries()) {
        const wname = f === "L.back" ? "L.wt" : "L.w";
        const w = qg.weights.get(wname)!;
        const got = await onGpu(gpu, f, x), want = onWasm(wasm, f, x);
        const lim = bound(x, B, w, (await gpu.getParam(wname)).data as Float32Array);
        let rounding = 0;
        got.forEach((g, j) => {
          expect(Math.abs(g - f32[i]![j]!), `${f} [${j}] against f32`).toBeLessThanOrEqual(lim[j]!);
          const n = j % 19;
          // f32 rounding of the dequantization (and bias add); beyond it only a GPU division that rounds an
          // activation the other way near a tie (WGSL allows 2.5 ulp): one step per element at most, and rare.
          const fp = 2 ** -20 * (Math.abs(want[j]!) + (f === "L.forward" ? Math.abs(bias[n]!) : 0)) + 1e-30;
          if (Math.abs(g - want[j]!) <= fp) return;
          rounding++;
          let sumQ = 0;
          for (let k = 0; k < 37; k++) sumQ += Math.abs(w.q[w.transposed ? n * 37 + k : k * 19 + n]!);
          const sa = rangeToQuant(Math.min(...x.subarray(row(j) * 37, row(j) * 37 + 37)), Math.max(...x.subarray(row(j) * 37, row(j) * 37 + 37))).scale;
          expect(Math.abs(g - want[j]!), `${f} [${j}] against wasm int8`).toBeLessThanOrEqual(sa * w.scales[n]! * sumQ + fp);
        });
        expect(rounding, `${f}: outputs beyond f32 rounding of wasm's`).toBeLessThanOrEqual(got.length / 100);
      }
      restoreFloat(gpu);
      expect(quantizationOf(gpu)).toBeUndefined();
      expect(Array.from(await onGpu(gpu, "L.forward", x))).toEqual(Array.from(f32[0]!));
      gpu.dispose();
    });
  }

  it("detects dot4I8Packed by probing a passed-in device; a .wgsl without dot4 sections runs the emulation", async () => {
    expect(await hasPackedDot4({ device: env.h!.device, adapter: "passed in", owned: false, lost: null })).toBe(dot4);
    const b = await build(MLP);
    const g = withWgsl(b.manifest, b.plan, "q");
    expect(g.wgsl).toMatch(/^\/\/ @kiln-kernel qmatmul_\w+__dot4$/m);
    const old = g.wgsl.replace(/^\/\/ @kiln-kernel \w+__dot4\n[^]*?(?=^\/\/ @kiln-kernel |(?![^]))/gm, "");
    expect(old).not.toContain("__dot4");
    const gpu = await loadKilnModuleWebGPU(g.manifest, old, { seed: 2, device: env.h!.device });
    const x = values(4 * 40, 1);
    const report = await quantizeDynamic(gpu, { sample: { fn: "M.forward", inputs: { x } } });
    expect(report.wgslDot).toBe("emulated");
    expect(report.sampleError!.relative).toBeLessThan(0.02);
    gpu.dispose();
  });

  it("integer sums equal the exact u8 x i8 products, on both kernels and on wasm", async () => {
    const { wasm, gpu } = await both(LAYER, 5);
    // Each row spans exactly 255 integers: scale 1, zero point -min, so every activation quantizes exactly.
    const B = 9, K = 37, N = 19;
    const r = values(B * K, 7);
    const x = new Float32Array(B * K);
    for (let row = 0; row < B; row++) {
      const lo = -Math.floor(((row * 37) % 256));
      for (let k = 0; k < K; k++) x[row * K + k] = lo + (k === 0 ? 0 : k === 1 ? 255 : Math.floor((r[row * K + k]! + 1) * 127.9));
    }
    quantizeDynamic(wasm, { functions: ["L.plain"] });
    const w = quantizationOf(wasm)!.weights.get("L.w")!;
    const exact = (y: Float32Array) => Array.from(y, (v, j) => Math.round(v / w.scales[j % N]!));
    const want: number[] = [];
    for (let row = 0; row < B; row++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += x[row * K + k]! * w.q[k * N + n]!;
        want.push(acc);
      }
    }
    const yw = onWasm(wasm, "L.plain", x);
    expect(exact(yw)).toEqual(want);
    for (const d of [true, false]) {
      await quantizeDynamic(gpu, { functions: ["L.plain"], dot4: d });
      const yg = await onGpu(gpu, "L.plain", x);
      expect(exact(yg), `dot4: ${d}`).toEqual(want);
      yg.forEach((v, j) => expect(Math.abs(v - yw[j]!)).toBeLessThanOrEqual(2 ** -23 * Math.abs(yw[j]!)));
    }
    gpu.dispose();
  });

  it("refuses what the wasm path refuses, and leaves the module unchanged", async () => {
    const none = await build(`fn f(a: f32[4, 4], b: f32[4, 4]) -> f32[4, 4] { return a @ b }\nmodel M { param w: f32[4] = ones()\n fn g(x: f32[4]) -> f32[4] { return x * w } }`);
    const g0 = withWgsl(none.manifest, none.plan, "q");
    const plain = await loadKilnModuleWebGPU(g0.manifest, g0.wgsl, { device: env.h!.device });
    expect((await rejection(quantizeDynamic(plain))).message).toMatch(/nothing to quantize .*no function has a matmul whose right operand is a param.*unchanged/);
    expect(quantizationOf(plain)).toBeUndefined();
    plain.dispose();

    const { gpu } = await both(LAYER, 1);
    const x = values(3 * 37, 1);
    const w = (await gpu.getParam("L.w")).data as Float32Array;
    w[5 * 19 + 2] = NaN;
    gpu.setParam("L.w", w);
    const err = await rejection(quantizeDynamic(gpu));
    expect(err).toBeInstanceOf(KilnError);
    expect(err.tensor).toBe("L.w");
    expect(err.message).toMatch(/weight "L.w" has NaN at element \[5, 2\]/);
    expect(quantizationOf(gpu)).toBeUndefined();
    expect((await rejection(quantizeDynamic(gpu, { exclude: ["L.w"], sample: { fn: "L.nope", inputs: { x } } }))).message).toMatch(/sample names unknown function "L.nope"/);
    expect(quantizationOf(gpu)).toBeUndefined();

    // An all-zero output channel: scale 0, exact zeros out, nothing divided by it.
    for (let k = 0; k < 37; k++) w[k * 19 + 4] = 0;
    w[5 * 19 + 2] = 0.5;
    gpu.setParam("L.w", w);
    const floatPlain = await onGpu(gpu, "L.plain", x);
    await quantizeDynamic(gpu, { functions: ["L.plain", "L.forward"] });
    expect(quantizationOf(gpu)!.weights.get("L.w")!.scales[4]).toBe(0);
    const y = await onGpu(gpu, "L.plain", x);
    for (let row = 0; row < 3; row++) expect(y[row * 19 + 4]).toBe(0);
    expect(y.every(Number.isFinite)).toBe(true);
    // A NaN in an activation row makes that row NaN, as on wasm; the other rows are unaffected.
    const xn = x.slice();
    xn[37 + 3] = NaN;
    const yn = await onGpu(gpu, "L.plain", xn);
    expect(Array.from(yn.subarray(19, 38)).every(Number.isNaN)).toBe(true);
    expect(Array.from(yn.subarray(0, 19))).toEqual(Array.from(y.subarray(0, 19)));

    // Frozen while quantized: writing the weight or training through it throws until restoreFloat.
    expect(() => gpu.setParam("L.w", w)).toThrow(/setParam: param "L.w" is quantized to int8 .*restoreFloat/);
    expect(() => gpu.call("T.step", { x })).toThrow(/T.step updates param "L.w", is quantized/);
    gpu.setParam("L.b", new Float32Array(19));
    restoreFloat(gpu);
    expect(Array.from(await onGpu(gpu, "L.plain", x))).toEqual(Array.from(floatPlain));
    gpu.setParam("L.w", w);
    gpu.dispose();
  });

  it("static: calibrated on WebGPU, chains u8 between the layers, close to wasm's static int8", async () => {
    const { wasm, gpu } = await both(MLP, 4);
    for (const m of [wasm, gpu]) {
      m.setParam("M.b1", values(24, 2).map((v) => v * 0.1));
      m.setParam("M.b2", values(7, 3).map((v) => v * 0.1));
    }
    const x = values(9 * 40, 8);
    const f32 = await onGpu(gpu, "M.forward", x);
    const batches = [0, 1, 2].map((s) => ({ x: values(16 * 40, 20 + s) }));
    const opts = { fn: "M.forward", data: batches, batches: 3, sample: { fn: "M.forward", inputs: { x } } };
    const rw = await quantizeStatic(wasm, opts);
    const rg = await quantizeStatic(gpu, opts);
    expect(rg.ops.map((o) => `${o.input}->${o.output}`)).toEqual(["static->q8", "q8->f32"]);
    const [cw, cg] = [wasm, gpu].map((m) => quantizationOf(m)!.choices.get("M.forward")!);
    expect(cg![0]!.input).toEqual(cw![0]!.input); // the raw input: identical ranges
    for (const k of ["scale", "zeroPoint"] as const) expect(cg![1]!.input![k]).toBeCloseTo(cw![1]!.input![k], 5);
    const yg = await onGpu(gpu, "M.forward", x), yw = onWasm(wasm, "M.forward", x);
    const w2 = (await gpu.getParam("M.w2")).data as Float32Array;
    const step = cg![1]!.input!.scale;
    yg.forEach((v, j) => {
      let sw = 0;
      for (let k = 0; k < 24; k++) sw += Math.abs(w2[k * 7 + (j % 7)]!);
      // One u8 step of the chained activation in every k at most (calibrated ranges may differ in the last bit).
      expect(Math.abs(v - yw[j]!), `[${j}]`).toBeLessThanOrEqual(step * sw + 1e-5);
    });
    expect(rg.sampleError!.relative).toBeLessThan(0.05);
    expect(Math.max(...yg.map((v, j) => Math.abs(v - f32[j]!)))).toBeCloseTo(rg.sampleError!.maxAbs, 5);
    gpu.dispose();
  });

  it("int8 files move between backends: same bytes from either, loaded onto WebGPU", async () => {
    const { wasm, gpu } = await both(MLP, 6);
    const x = values(5 * 40, 3);
    quantizeDynamic(wasm);
    await quantizeDynamic(gpu);
    const bytes = serializeQuantized(wasm);
    expect(await serializeQuantized(gpu)).toEqual(bytes);
    const fresh = await both(MLP, 99);
    const rep = await loadQuantized(fresh.gpu, bytes);
    expect(rep.backend).toBe("webgpu");
    expect(Array.from(await onGpu(fresh.gpu, "M.forward", x))).toEqual(Array.from(await onGpu(gpu, "M.forward", x)));
    const yw = onWasm(wasm, "M.forward", x);
    (await onGpu(fresh.gpu, "M.forward", x)).forEach((v, j) => expect(Math.abs(v - yw[j]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(yw[j]!))));
    gpu.dispose();
    fresh.gpu.dispose();
  });
});
