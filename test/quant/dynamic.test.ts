// quantizeDynamic on small models: which ops switch (transposed weights, fused bias/relu), agreement with the f32
// model within the bound the scales imply, the report, restoreFloat, and what it refuses (no eligible op, NaN
// weights, writing a quantized param, training through it).
import { describe, expect, it } from "vitest";
import { quantizeDynamic, restoreFloat } from "../../runtime/quantize/dynamic.js";
import { quantizationOf } from "../../runtime/quantize/dynamic.js";
import { KilnError } from "../../runtime/errors.js";
import type { Tensor } from "../../runtime/tensor.js";
import { LAYER, bound, compileAndLoad, values } from "./helpers.js";

describe("quantizeDynamic", () => {
  it("switches every matmul on a param, fusing bias and relu, within the bound from the scales", async () => {
    const m = await compileAndLoad(LAYER, { seed: 3 });
    m.setParam("L.b", values(19, 9).map((v) => v * 0.3));
    const B = 23;
    const x = values(B * 37, 5).map((v, i) => (i % 37 === 0 ? 0 : v * 2));
    const ref = ["forward", "back", "plain"].map((f) => (m.L as Record<string, (i: unknown) => Tensor>)[f]!({ x }).data as Float32Array);
    const report = quantizeDynamic(m, { ops: ["matmul"], dtype: "int8", sample: { fn: "L.forward", inputs: { x } } });
    expect(report.ops.map((o) => [o.fn, o.weight, o.ops.join("+")])).toEqual([
      ["L.forward", "L.w", "matmul+add+relu"],
      ["L.back", "L.wt", "matmul"],
      ["L.plain", "L.w", "matmul"],
      ["L.loss", "L.w", "matmul+add+relu"],
    ]);
    expect(report.ops[0]!.outputError!.maxAbs).toBeGreaterThan(0);
    // One step: the bias add and relu are the matmul's epilogue (passes/fusion.ts fuseMatmulEpilogues).
    expect(report.text).toContain("L.forward steps 0: L.w [K=37, N=19] (+ add, relu fused)");
    const q = quantizationOf(m)!;
    ["forward", "back", "plain"].forEach((f, i) => {
      const w = q.weights.get(f === "back" ? "L.wt" : "L.w")!;
      const got = (m.L as Record<string, (i: unknown) => Tensor>)[f]!({ x }).data as Float32Array;
      const lim = bound(x, B, w, m.getParam(w === q.weights.get("L.w") ? "L.w" : "L.wt").data as Float32Array);
      let worst = 0;
      got.forEach((g, j) => {
        expect(Math.abs(g - ref[i]![j]!), `${f} element ${j}`).toBeLessThanOrEqual(lim[j]!);
        worst = Math.max(worst, Math.abs(g - ref[i]![j]!) / lim[j]!);
      });
      expect(worst).toBeGreaterThan(0.01); // the bound is not vacuous: errors reach a fair part of it
    });
    restoreFloat(m);
    expect(Array.from(m.L.forward({ x }).data)).toEqual(Array.from(ref[0]!));
  });

  it("refuses a model with no eligible op and leaves it unchanged", async () => {
    const m = await compileAndLoad(`fn f(a: f32[4, 4], b: f32[4, 4]) -> f32[4, 4] { return a @ b }\nmodel M { param w: f32[4] = ones()\n fn g(x: f32[4]) -> f32[4] { return x * w } }`);
    expect(() => quantizeDynamic(m)).toThrow(/nothing to quantize .*no function has a matmul whose right operand is a param.*unchanged/);
    expect(quantizationOf(m)).toBeUndefined();
    expect(() => quantizeDynamic(m, { ops: ["conv2d"] })).toThrow(/only "matmul"/);
  });

  it("names a NaN weight and changes nothing", async () => {
    const m = await compileAndLoad(LAYER);
    const w = m.getParam("L.w").data as Float32Array;
    w[5 * 19 + 2] = NaN;
    m.setParam("L.w", w);
    const err = (() => { try { quantizeDynamic(m); } catch (e) { return e as KilnError; } })()!;
    expect(err).toBeInstanceOf(KilnError);
    expect(err.tensor).toBe("L.w");
    expect(err.message).toMatch(/weight "L.w" has NaN at element \[5, 2\]/);
    expect(quantizationOf(m)).toBeUndefined();
  });

  it("gives an all-zero output channel scale 0 and exact zero outputs (no division by zero)", async () => {
    const m = await compileAndLoad(LAYER);
    const w = m.getParam("L.w").data as Float32Array;
    for (let k = 0; k < 37; k++) w[k * 19 + 4] = 0;
    m.setParam("L.w", w);
    quantizeDynamic(m, { functions: ["L.plain"] });
    expect(quantizationOf(m)!.weights.get("L.w")!.scales[4]).toBe(0);
    const y = m.L.plain({ x: values(3 * 37, 1) }).data as Float32Array;
    for (let r = 0; r < 3; r++) expect(y[r * 19 + 4]).toBe(0);
    expect(y.every(Number.isFinite)).toBe(true);
  });

  it("guards the quantized weights: setParam and training steps throw until restoreFloat", async () => {
    const m = await compileAndLoad(LAYER);
    quantizeDynamic(m);
    expect(() => m.setParam("L.w", new Float32Array(37 * 19))).toThrow(/setParam: param "L.w" is quantized to int8 .*restoreFloat/);
    expect(() => m.call("T.step", { x: values(2 * 37, 1) })).toThrow(/T.step updates param "L.w", is quantized/);
    m.setParam("L.b", new Float32Array(19)); // not quantized: still writable
    restoreFloat(m);
    m.setParam("L.w", new Float32Array(37 * 19));
  });
});
