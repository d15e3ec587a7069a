// Dynamic loss scaling under --precision mixed-f16, on the reference interpreter (which rounds every f16 value
// as the backends store it): an overflow that only the f16 gradients produce skips the step (masters, their f16
// copies and the momentum bit-identical) and halves the scale; `interval` clean steps double it.
import { describe, expect, it } from "vitest";
import { compileToIR, type Precision } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { referenceParams } from "../../compiler/cli/run.js";

const src = (scale = ", loss_scale: dynamic(init: 1024, interval: 3)") => `
model M {
  param w: f32[3, 2] = constant(0.5)
  fn loss(x: f32[1, 3]) -> f32 { return sum((x @ w) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.001, momentum: 0.9)${scale} }`;

/** A module on the reference interpreter: each step writes its updates back into the params. */
function trainer(source: string, precision: Precision) {
  const ir: IRModule = compileToIR(source, "t.kiln", [], [], { precision }).ir!;
  const g = ir.functions.find((f) => f.name === "T.step")!;
  const params: Record<string, Float64Array> = referenceParams(ir, 0);
  return {
    ir,
    params,
    step(x: number[]) {
      const outs = evaluateGraph({ ...g, outputs: g.updates!.map((u) => ({ name: u.param, node: u.node })) }, { x: { data: x, shape: [1, 3] } }, params);
      g.updates!.forEach((u, i) => (params[u.param] = Float64Array.from(outs[i].data)));
    },
  };
}

describe("dynamic loss scaling under mixed-f16 (reference interpreter)", () => {
  it("mixed-f16 keeps an f16 copy of w, refreshed by every step", () => {
    const t = trainer(src(), "mixed-f16");
    expect(t.ir.params.map((p) => p.name)).toContain("M.w.f16");
    t.step([1, -2, 0.5]);
    // The copy is the new master rounded to f16 (the reference rounds the f16 update value).
    expect(Array.from(t.params["M.w.f16"])).toEqual(Array.from(t.params["M.w"]).map((v) => new Float32Array([v])[0]).map((v) => roundF16(v)));
  });

  it("an overflow only the f16 gradients produce is skipped: params, copies and momentum bit-identical, scale halved", () => {
    const t = trainer(src(), "mixed-f16");
    t.step([1, 2, 3]);
    const before = structuredClone(t.params);
    // x @ w = [150, 150]; dL/dw = 2 (x @ w) x^T, times the scale 1024: 2 * 150 * 300 * 1024 ≈ 9.2e7, beyond f16's
    // largest finite value 65504 but finite in f32 (the f32 module takes this step).
    t.step([300, 1, 1]);
    for (const name of ["M.w", "M.w.f16", "T.momentum.M.w"]) expect(Array.from(t.params[name]), name).toEqual(Array.from(before[name]));
    expect(t.params["T.scaler.scale"][0]).toBe(512);
    expect(t.params["T.scaler.good_steps"][0]).toBe(0);
    const f32 = trainer(src(), "f32");
    f32.step([1, 2, 3]);
    f32.step([300, 1, 1]);
    expect(f32.params["T.scaler.scale"][0]).toBe(1024);
  });

  it("interval clean steps double the scale; the unscaled update matches f32 within f16's roundoff", () => {
    const mixed = trainer(src(), "mixed-f16");
    const plain = trainer(src(""), "f32");
    const scales: number[] = [];
    for (let i = 0; i < 4; i++) {
      mixed.step([1, -2, 0.5]);
      plain.step([1, -2, 0.5]);
      scales.push(mixed.params["T.scaler.scale"][0]);
    }
    expect(scales).toEqual([1024, 1024, 2048, 2048]);
    // Each step's matmuls round x, w and the products to f16 (unit roundoff u = 2^-11); the change of w after 4
    // steps agrees with f32 to 4 steps x 3 roundings x u, relative to the change.
    const w0 = 0.5;
    const u = 2 ** -11;
    for (let i = 0; i < 6; i++) {
      const dm = mixed.params["M.w"][i] - w0, dp = plain.params["M.w"][i] - w0;
      expect(Math.abs(dm - dp)).toBeLessThanOrEqual(12 * u * Math.abs(dp));
    }
  });

  it("without loss_scale, mixed-f16 scales dynamically with GradScaler's defaults and mixed-bf16 does not scale", () => {
    const f16 = trainer(src(""), "mixed-f16");
    expect(f16.params["T.scaler.scale"][0]).toBe(65536);
    const bf16 = trainer(src(""), "mixed-bf16");
    expect(bf16.params["T.scaler.scale"]).toBeUndefined();
  });
});

function roundF16(v: number): number {
  // f16 round-to-nearest-even by hand for normal values: 11 significant bits.
  if (v === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(v)));
  const q = 2 ** (e - 10);
  const r = v / q;
  const f = Math.floor(r);
  const rounded = r - f > 0.5 || (r - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return rounded * q;
}
