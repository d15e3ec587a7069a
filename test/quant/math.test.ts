// Quantize/dequantize arithmetic against values published outside Kiln: PyTorch's quantize_per_tensor_dynamic
// example and ONNX DynamicQuantizeLinear's spec example; plus per-channel weight quantization and packing.
import { describe, expect, it } from "vitest";
import { dequantizeWeight, dynamicQuantizeLinear, packWeight, quantizeWeight, rint, checkQuantizedWeight } from "../../runtime/quantize/math.js";

describe("activation quantization (u8, asymmetric)", () => {
  it("matches PyTorch: quantize_per_tensor_dynamic([-1, 0, 1, 2], quint8)", () => {
    // torch docs: scale=0.011764705882352941, zero_point=85, int_repr [0, 85, 170, 255]
    const r = dynamicQuantizeLinear([-1, 0, 1, 2]);
    expect(r.scale).toBeCloseTo(0.011764705882352941, 9); // f32 here, f64 in torch
    expect(r.zeroPoint).toBe(85);
    expect(Array.from(r.q)).toEqual([0, 85, 170, 255]);
  });

  it("matches the ONNX DynamicQuantizeLinear spec example", () => {
    const r = dynamicQuantizeLinear([0, 2, -3, -2.5, 1.34, 0.5]);
    expect(r.scale).toBeCloseTo(0.0196078, 7);
    expect(r.zeroPoint).toBe(153);
    // The last element is 179 in f32 arithmetic (the spec's numpy float32 code, onnxruntime, MIGraphX's gold data):
    // 0.5 / 0.019607844f = 25.4999991, which rounds to the f32 tie 25.5 -> 26. Exact arithmetic gives 25 -> 178.
    expect(Array.from(r.q)).toEqual([153, 255, 0, 26, 221, 179]);
    expect(rint(0.5 / r.scale) + r.zeroPoint).toBe(178);
  });

  it("ONNX's second example (all positive: the range is widened to 0) and an all-zero tensor", () => {
    // spec: x = [1, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345] -> scale 0.0156862754, zp 0
    const r = dynamicQuantizeLinear([1, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345]);
    expect(r.scale).toBeCloseTo(0.0156862754, 9);
    expect(r.zeroPoint).toBe(0);
    expect(Array.from(r.q)).toEqual([64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149]);
    const z = dynamicQuantizeLinear([0, 0, 0]);
    expect([z.scale, z.zeroPoint, ...z.q]).toEqual([1, 0, 0, 0, 0]); // no division by zero
  });

  it("rounds half to even", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -3.5].map(rint)).toEqual([0, 2, 2, -0, -2, -2, 2, -4]);
  });
});

describe("weight quantization (int8, symmetric, per output channel)", () => {
  it("scale = max|w| / 127 per column; q in [-127, 127]; dequantization within scale / 2", () => {
    const w = Float32Array.from([1, -0.5, 0, 0.25, 0.5, 0, -2, 0.125, 0]); // [K=3, N=3]
    const q = quantizeWeight("w", w, 3, 3, false);
    expect(Array.from(q.scales)).toEqual([2 / 127, 0.5 / 127, 0].map(Math.fround));
    expect(Array.from(q.q)).toEqual([64, -127, 0, 16, 127, 0, -127, 32, 0]);
    const d = dequantizeWeight(q);
    w.forEach((v, i) => expect(Math.abs(d[i]! - v)).toBeLessThanOrEqual(q.scales[i % 3]! / 2 + 1e-7));
    // transposed ([N, K] storage) gives the same channels
    const t = quantizeWeight("w", Float32Array.from([1, 0.25, -2, -0.5, 0.5, 0.125, 0, 0, 0]), 3, 3, true);
    expect(Array.from(t.scales)).toEqual(Array.from(q.scales));
  });

  it("rejects NaN and infinity naming the tensor and element, and bad files' values", () => {
    expect(() => quantizeWeight("M.w", Float32Array.from([1, Infinity]), 1, 2, false)).toThrow(/weight "M.w" has Infinity at element \[0, 1\]/);
    expect(() => checkQuantizedWeight("M.w", { q: Int8Array.from([3]), scales: Float32Array.from([0]), K: 1, N: 1, transposed: false })).toThrow(/"M.w": channel 0 has scale 0 but a nonzero value 3/);
    expect(() => checkQuantizedWeight("M.w", { q: Int8Array.from([-128]), scales: Float32Array.from([1]), K: 1, N: 1, transposed: false })).toThrow(/outside \[-127, 127\]/);
    expect(() => checkQuantizedWeight("M.w", { q: Int8Array.from([1]), scales: Float32Array.from([NaN]), K: 1, N: 1, transposed: false })).toThrow(/scale of channel 0 is NaN/);
  });

  it("packs as the layout descriptor says (wasm: 8-column panels of i16 k-pairs; WGSL: 4 i8 per word)", () => {
    const K = 3, N = 2;
    const q = { q: Int8Array.from([1, 2, 3, 4, 5, 6]), scales: new Float32Array(2), K, N, transposed: false }; // w[k][n]
    expect(Array.from(new Int16Array(packWeight(q, { nr: 8, group: 2, elem: "i16" }).buffer)).slice(0, 20)).toEqual([1, 3, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 6, 0]);
    expect(Array.from(new Int8Array(packWeight(q, { nr: 1, group: 4, elem: "i8" }).buffer))).toEqual([1, 3, 5, 0, 2, 4, 6, 0]);
  });
});
