// Train blocks: optimizer updates against hand-computed PyTorch update rules, the MLP training step lowers the
// loss and uses gradients that match the reference interpreter, NaN/Inf checking names the step and tensor,
// and bad train blocks get diagnostics.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { compileToIR } from "../../compiler/compile.js";
import { expectClose, irOf, runBoth, wasmModule } from "../helpers/backend.js";
import { runTraining } from "../../compiler/cli/train.js";
import { Tensor } from "../../runtime/tensor.js";

/** loss(w) = (w - 3)^2 with w starting at 1, so the first gradient is 2 (1 - 3) = -4. */
const quad = (opt: string) => `
model Q {
  param w: f32[1] = constant(1)
  fn loss(x: f32[1]) -> f32 { return sum((w - x) ** 2) }
}
train T { model: Q, loss: loss, optimizer: ${opt} }`;

async function trajectory(opt: string, steps: number): Promise<number[]> {
  const mod = await wasmModule(irOf(quad(opt)));
  const ws: number[] = [];
  for (let i = 0; i < steps; i++) {
    mod.call("T.step", { x: new Float32Array([3]) });
    ws.push(mod.getParam("Q.w").data[0] as number);
  }
  return ws;
}

describe("optimizers follow PyTorch's update rules (hand-computed)", () => {
  it("sgd: w <- w - lr g", async () => {
    // g = -4: w = 1 + 0.4 = 1.4; then g = -3.2: w = 1.72.
    const ws = await trajectory("sgd(lr: 0.1)", 2);
    expect(ws[0]).toBeCloseTo(1.4, 6);
    expect(ws[1]).toBeCloseTo(1.72, 6);
  });
  it("sgd with momentum 0.9: buf <- 0.9 buf + g", async () => {
    // buf = -4, w = 1.4; g = -3.2, buf = -3.6 - 3.2 = -6.8, w = 1.4 + 0.68 = 2.08.
    const ws = await trajectory("sgd(lr: 0.1, momentum: 0.9)", 2);
    expect(ws[0]).toBeCloseTo(1.4, 6);
    expect(ws[1]).toBeCloseTo(2.08, 6);
  });
  it("sgd nesterov: step with g + momentum * buf", async () => {
    // buf = -4, update direction -4 + 0.9 * -4 = -7.6: w = 1.76.
    const ws = await trajectory("sgd(lr: 0.1, momentum: 0.9, nesterov: true)", 1);
    expect(ws[0]).toBeCloseTo(1.76, 6);
  });
  it("sgd weight decay adds wd * w to the gradient", async () => {
    // g = -4 + 0.5 * 1 = -3.5: w = 1.35.
    const ws = await trajectory("sgd(lr: 0.1, weight_decay: 0.5)", 1);
    expect(ws[0]).toBeCloseTo(1.35, 6);
  });
  it("adam: the first step moves by lr (bias-corrected m / sqrt(v) = -1)", async () => {
    // m = 0.1 * -4, v = 0.001 * 16; m_hat = -4, v_hat = 16: w = 1 + 0.01 * 4 / (4 + 1e-8) = 1.01.
    const ws = await trajectory("adam(lr: 0.01)", 2);
    expect(ws[0]).toBeCloseTo(1.01, 6);
    // Step 2: g = 2 (1.01 - 3) = -3.98; m = 0.09 * -4 ... computed in float64 below.
    const g2 = 2 * (1.01 - 3);
    const m = 0.9 * (0.1 * -4) + 0.1 * g2, v = 0.999 * (0.001 * 16) + 0.001 * g2 * g2;
    const want = 1.01 - (0.01 * (m / (1 - 0.9 ** 2))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    expect(ws[1]).toBeCloseTo(want, 5);
  });
  it("adamw decays the weight before the adam step", async () => {
    // w = 1 * (1 - 0.01 * 0.1) = 0.999, then + 0.01: 1.009.
    const ws = await trajectory("adamw(lr: 0.01, weight_decay: 0.1)", 1);
    expect(ws[0]).toBeCloseTo(1.009, 6);
  });
});

describe("mlp_train.kiln", () => {
  const src = readFileSync("dsl-examples/mlp_train.kiln", "utf8");
  const ir = irOf(src, "dsl-examples/mlp_train.kiln");
  it("a training step lowers the loss on a fixed batch (SGD and Adam)", async () => {
    for (const train of ["Sgd", "Adam"]) {
      const { losses } = await runTraining(ir, { train, steps: 5, batch: 8, seed: 3, classes: 10, checkNumerics: true }, () => {});
      expect(losses[4], `${train}: ${losses}`).toBeLessThan(losses[0] * 0.5);
    }
  });
  it("the gradients on wasm match the reference interpreter's", async () => {
    const x = Array.from({ length: 4 * 784 }, (_, i) => Math.fround(Math.sin(i * 0.7)));
    const labels = { dtype: "i32" as const, shape: [4], data: [7, 0, 3, 3] };
    const { wasm, ref } = await runBoth(ir, "MLP.grads", { x: { dtype: "f32", shape: [4, 784], data: x }, labels }, { seed: 2 });
    ["w1", "b1", "w2", "b2"].forEach((n, k) => expectClose(wasm[k], ref[k], `d loss / d ${n}`, 1e-4, 1e-6));
  });
  it("the step's update of w2 equals w2 - lr * (the reference gradient) for plain SGD", async () => {
    const plain = irOf(src.replace("sgd(lr: 0.1, momentum: 0.9)", "sgd(lr: 0.5)"));
    const mod = await wasmModule(plain, 2);
    const x = Array.from({ length: 2 * 784 }, (_, i) => Math.fround(Math.cos(i)));
    const labels = new Int32Array([1, 9]);
    const before = mod.getParam("MLP.w2").data as Float32Array;
    const { ref } = await runBoth(plain, "MLP.grads", { x: { dtype: "f32", shape: [2, 784], data: x }, labels: { dtype: "i32", shape: [2], data: [1, 9] } }, { seed: 2 });
    mod.call("Sgd.step", { x: new Float32Array(x), labels });
    const after = mod.getParam("MLP.w2").data as Float32Array;
    for (let i = 0; i < after.length; i += 97) expect(after[i]).toBeCloseTo(before[i] - 0.5 * ref[2].data[i], 5);
  });
});

describe("numerics checking", () => {
  it("a NaN in a training step is reported with the step and the tensor when asked", async () => {
    const ir = irOf(`
model M {
  param w: f32[2] = constant(-1)
  fn loss(x: f32[2]) -> f32 { return sum(log(w * x * x)) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
    await expect(runTraining(ir, { steps: 2, batch: 1, seed: 0, classes: 2, checkNumerics: true }, () => {})).rejects.toThrow(/training step 1: T\.step: NaN at element 0 of tensor %\d+ .*ops: [^)]*log/); // log fuses into the sum
    // Without checking, the NaN is simply returned.
    const { losses } = await runTraining(ir, { steps: 1, batch: 1, seed: 0, classes: 2, checkNumerics: false }, () => {});
    expect(Number.isNaN(losses[0])).toBe(true);
  });
  it("checkNumerics is a call option of any function", async () => {
    const mod = await wasmModule(irOf("fn f(x: f32[2]) -> f32[2] { return x / 0 }"));
    expect(() => mod.call("f", { x: new Tensor("f32", [2], [1, 2]) }, { checkNumerics: true })).toThrow(/Infinity at element 0 .*ops: div/);
  });
});

describe("train block diagnostics", () => {
  const base = "model M {\n  param w: f32[2] = zeros()\n  fn loss(x: f32[2]) -> f32 { return sum(w * x) }\n  fn vec(x: f32[2]) -> f32[2] { return w * x }\n}\n";
  const cases: [string, string, [string, number, number][]][] = [
    ["learning rate out of range", "train T { model: M, loss: loss, optimizer: sgd(lr: -1) }", [["K609", 6, 44]]],
    ["momentum out of range", "train T { model: M, loss: loss, optimizer: sgd(lr: 0.1, momentum: 1.5) }", [["K609", 6, 44]]],
    ["adam beta out of range", "train T { model: M, loss: loss, optimizer: adam(beta2: 1) }", [["K609", 6, 44]]],
    ["sgd without lr", "train T { model: M, loss: loss, optimizer: sgd() }", [["K609", 6, 44]]],
    ["nesterov without momentum", "train T { model: M, loss: loss, optimizer: sgd(lr: 0.1, nesterov: true) }", [["K609", 6, 44]]],
    ["unknown hyperparameter", "train T { model: M, loss: loss, optimizer: sgd(lr: 0.1, mom: 0.9) }", [["K205", 6, 57]]],
    ["missing optimizer", "train T { model: M, loss: loss }", [["K611", 6, 7]]],
    ["loss is not a method", "train T { model: M, loss: nope, optimizer: sgd(lr: 0.1) }", [["K611", 6, 27]]],
    ["loss is not a scalar", "train T { model: M, loss: vec, optimizer: sgd(lr: 0.1) }", [["K602", 6, 27]]],
  ];
  for (const [name, train, want] of cases) {
    it(name, () => {
      const r = compileToIR(base + train, "t.kiln");
      expect(r.ir).toBeUndefined();
      expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col])).toEqual(want);
    });
  }
});
