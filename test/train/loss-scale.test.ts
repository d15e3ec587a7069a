// Dynamic loss scaling (GradScaler semantics): an overflowing step is skipped with params and optimizer state
// bit-identical and the scale halved; `interval` clean steps double it; the scale is a readable state param.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { irOf, wasmModule } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";

const src = (scale = "dynamic(init: 1024, interval: 3)") => `
model M {
  param w: f32[3] = constant(0.5)
  fn loss(x: f32[3]) -> f32 { return sum((w * x) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.01, momentum: 0.9), loss_scale: ${scale} }`;

describe("dynamic loss scaling", () => {
  it("a forced-overflow step is skipped: params and momentum bit-identical, scale halved", async () => {
    const mod = await wasmModule(irOf(src()));
    mod.call("T.step", { x: new Tensor("f32", [3], [1, 2, 3]) });
    const w = Array.from(mod.getParam("M.w").data as Float32Array);
    const buf = Array.from(mod.getParam("T.momentum.M.w").data as Float32Array);
    expect(mod.getParam("T.scaler.scale").data[0]).toBe(1024);
    // (w x)^2 * 1024 overflows f32 for x = 1e18: the scaled gradient is Inf.
    mod.call("T.step", { x: new Tensor("f32", [3], [1e18, 1, 1]) });
    expect(Array.from(mod.getParam("M.w").data as Float32Array)).toEqual(w);
    expect(Array.from(mod.getParam("T.momentum.M.w").data as Float32Array)).toEqual(buf);
    expect(mod.getParam("T.scaler.scale").data[0]).toBe(512);
    expect(mod.getParam("T.scaler.good_steps").data[0]).toBe(0);
  });

  it("interval clean steps double the scale; gradients are unscaled (same update as without scaling)", async () => {
    const scaled = await wasmModule(irOf(src()));
    const plain = await wasmModule(irOf(src().replace(", loss_scale: dynamic(init: 1024, interval: 3)", "")));
    const x = new Tensor("f32", [3], [1, -2, 0.5]);
    const scales: number[] = [];
    for (let i = 0; i < 4; i++) {
      scaled.call("T.step", { x });
      plain.call("T.step", { x });
      scales.push(scaled.getParam("T.scaler.scale").data[0] as number);
    }
    expect(scales).toEqual([1024, 1024, 2048, 2048]);
    const a = scaled.getParam("M.w").data as Float32Array, b = plain.getParam("M.w").data as Float32Array;
    for (let i = 0; i < 3; i++) expect(a[i]).toBeCloseTo(b[i], 6);
  });

  it("bad loss_scale options are diagnostics", () => {
    for (const [opt, code] of [["dynamic(init: 0)", "K609"], ["dynamic(backoff: 2)", "K609"], ["dynamic(speed: 2)", "K205"], ["static(8)", "K611"]]) {
      const r = compileToIR(src(opt), "t.kiln");
      expect(r.ir).toBeUndefined();
      expect(r.diagnostics[0].code, opt).toBe(code);
    }
  });
});

describe("a loss scale that collapses to its minimum", () => {
  it("is a runtime error naming the step and the first tensor that overflowed", async () => {
    const { trainStepWithScaler } = await import("../../runtime/train/loss-scale.js");
    const mod = await wasmModule(irOf(src("dynamic(init: 4, min: 1)")));
    const x = { x: new Tensor("f32", [3], [1e30, 1, 1]) };
    let err: Error | undefined;
    for (let s = 1; s <= 6 && !err; s++) {
      try {
        trainStepWithScaler(mod, "T", x, s);
      } catch (e) {
        err = e as Error;
      }
    }
    expect(err?.message).toMatch(/training step 3: the loss scale collapsed to its minimum 1 .*first tensor that overflowed: T\.step: Infinity .*ops: /);
    expect(Array.from(mod.getParam("M.w").data as Float32Array)).toEqual([0.5, 0.5, 0.5]);
  });
});

describe("dynamic loss scaling under --precision mixed-f16 (wasm, f16 matmuls)", () => {
  const mixedSrc = (scale = ", loss_scale: dynamic(init: 1024, interval: 3)") => `
model M {
  param w: f32[3, 2] = constant(0.5)
  fn loss(x: f32[1, 3]) -> f32 { return sum((x @ w) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.001, momentum: 0.9)${scale} }`;
  const mixed = async (s: string) => {
    const r = compileToIR(s, "t.kiln", [], [], { precision: "mixed-f16" });
    return wasmModule(r.ir!);
  };
  const bits = (mod: Awaited<ReturnType<typeof wasmModule>>, name: string) => Array.from(mod.getParam(name).data as ArrayLike<number>);

  it("an overflow only the f16 gradients produce is skipped: masters, f16 copies and momentum bit-identical, scale halved", async () => {
    const mod = await mixed(mixedSrc());
    mod.call("T.step", { x: new Tensor("f32", [1, 3], [1, 2, 3]) });
    const before = ["M.w", "M.w.f16", "T.momentum.M.w"].map((n) => bits(mod, n));
    // dL/dw = 2 (x @ w) x^T = 2 * 150 * 300 ≈ 9e4, times the scale 1024: beyond f16's largest value 65504, not f32's.
    mod.call("T.step", { x: new Tensor("f32", [1, 3], [300, 1, 1]) });
    expect(["M.w", "M.w.f16", "T.momentum.M.w"].map((n) => bits(mod, n))).toEqual(before);
    expect(mod.getParam("T.scaler.scale").data[0]).toBe(512);
  });

  it("with checkNumerics, an overflow the scaler skips is not an error; the step is skipped as without the check", async () => {
    const { trainStepWithScaler } = await import("../../runtime/train/loss-scale.js");
    const mod = await mixed(mixedSrc());
    trainStepWithScaler(mod, "T", { x: new Tensor("f32", [1, 3], [1, 2, 3]) }, 1, true);
    const before = ["M.w", "M.w.f16", "T.momentum.M.w"].map((n) => bits(mod, n));
    // The f16-only overflow of the test above, now with every kernel's output checked.
    trainStepWithScaler(mod, "T", { x: new Tensor("f32", [1, 3], [300, 1, 1]) }, 2, true);
    expect(["M.w", "M.w.f16", "T.momentum.M.w"].map((n) => bits(mod, n))).toEqual(before);
    expect(mod.getParam("T.scaler.scale").data[0]).toBe(512);
    // A clean checked step after it is taken.
    trainStepWithScaler(mod, "T", { x: new Tensor("f32", [1, 3], [1, 2, 3]) }, 3, true);
    expect(bits(mod, "M.w")).not.toEqual(before[0]);
  });

  it("a scale that collapses on an f16-only overflow names the f16 gradient that overflowed", async () => {
    const { trainStepWithScaler } = await import("../../runtime/train/loss-scale.js");
    const mod = await mixed(mixedSrc(", loss_scale: dynamic(init: 4, min: 1)"));
    // dL/dw = 2 * 150 * 300 = 90000 at scale 1 already: beyond f16's 65504, so every step overflows (hand-derived).
    const x = { x: new Tensor("f32", [1, 3], [300, 1, 1]) };
    let err: Error | undefined;
    for (let s = 1; s <= 6 && !err; s++) {
      try {
        trainStepWithScaler(mod, "T", x, s, s % 2 === 0);
      } catch (e) {
        err = e as Error;
      }
    }
    expect(err?.message).toMatch(/training step 3: the loss scale collapsed to its minimum 1 .*first tensor that overflowed: T\.step: Infinity at element \d+ of tensor %\d+ \(f16\[3, 2\]\)/);
  });

  it("interval clean steps double the scale; mixed-f16 without loss_scale starts at GradScaler's 65536", async () => {
    const mod = await mixed(mixedSrc());
    const scales: number[] = [];
    for (let i = 0; i < 4; i++) {
      mod.call("T.step", { x: new Tensor("f32", [1, 3], [1, -2, 0.5]) });
      scales.push(mod.getParam("T.scaler.scale").data[0] as number);
    }
    expect(scales).toEqual([1024, 1024, 2048, 2048]);
    expect((await mixed(mixedSrc(""))).getParam("T.scaler.scale").data[0]).toBe(65536);
  });
});
