// conv2d in training (compiler/codegen/plan-conv-wgrad.ts): when the loss value and the weight gradient are both
// wanted, the forward convolution runs gathered (implicit GEMM, or Winograd where it applies) and the weight
// gradient gathers the same patches from x, so no step stores the im2col matrix. Values and gradients against
// PyTorch (test/ops/torch-conv-goldens.json, scripts/torch-conv-goldens.py: the loss is sum(y * r), whose golden
// value is summed here from PyTorch's y and r) and the float64 reference interpreter, plain SIMD (relaxed:
// conv-wgrad.relaxed.test.ts), 1 and 2 threads, known and symbolic batch; Winograd in training and the MNIST CNN
// against the reference.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { irOf, runBoth } from "../helpers/backend.js";
import { CONV_GOLDENS, close } from "../helpers/conv-goldens.js";
import { checkAgainstReference, checkTrain, nhwcCopies, noStoredPatches, REFERENCE_CASES } from "../helpers/conv-wgrad.js";

describe("conv2d training: forward and weight gradient both gathered, against PyTorch", () => {
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkTrain(c, { relaxed: false, threads: 1, symbolic: false });
      await checkTrain(c, { relaxed: false, threads: 1, symbolic: true });
    });
  }
  it("two threads split the weight gradient's rows (taps)", async () => {
    for (const c of CONV_GOLDENS.slice(0, 3)) {
      await checkTrain(c, { relaxed: false, threads: 2, symbolic: false });
      await checkTrain(c, { relaxed: false, threads: 2, symbolic: true });
    }
  });
});

describe("conv2d training, geometries beyond the goldens, against the float64 reference", () => {
  for (const c of REFERENCE_CASES) {
    it(c.name, async () => {
      for (const symbolic of [false, true]) for (const threads of [1, 2]) await checkAgainstReference(c, { relaxed: false, threads, symbolic });
    });
  }
});

describe("training convolutions", () => {
  const saved = process.env.KILN_CONV_WGRAD_GATHER;
  afterEach(() => {
    if (saved === undefined) delete process.env.KILN_CONV_WGRAD_GATHER;
    else process.env.KILN_CONV_WGRAD_GATHER = saved;
  });

  it("a 3x3 layer with 16 channels trains through Winograd; its gradients match the float64 reference", async () => {
    const src = [
      "fn loss(x: f32[N, 16, 6, 7], w: f32[16, 16, 3, 3], b: f32[16], r: f32[N, 16, 6, 7]) -> f32 { return sum(relu(conv2d(x, w, b, padding: 1)) * r) }",
      "fn vg(x: f32[N, 16, 6, 7], w: f32[16, 16, 3, 3], b: f32[16], r: f32[N, 16, 6, 7]) -> (f32, f32[16, 16, 3, 3], f32[16]) {",
      "  return value_and_grad(loss, wrt: [w, b])(x, w, b, r)",
      "}",
    ].join("\n");
    const ir = irOf(src);
    const b = await buildWasm(ir, "wino", { wat: false });
    const steps = b.manifest.functions.find((f) => f.name === "vg")!.steps;
    noStoredPatches(steps, "winograd layer");
    expect(steps.some((s) => s.kernel.startsWith("conv_wino_"))).toBe(true);
    // Deterministic inputs in [-1, 1): sin of distinct arguments.
    const fill = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.37 + k)));
    const inputs = {
      x: { dtype: "f32" as const, shape: [3, 16, 6, 7], data: fill(3 * 16 * 42, 1) },
      w: { dtype: "f32" as const, shape: [16, 16, 3, 3], data: fill(16 * 144, 2).map((v) => v * 0.2) },
      b: { dtype: "f32" as const, shape: [16], data: fill(16, 3) },
      r: { dtype: "f32" as const, shape: [3, 16, 6, 7], data: fill(3 * 16 * 42, 4) },
    };
    for (const threads of [1, 2]) {
      const m = await loadKilnModule(b.manifest, b.wasm, { threads });
      try {
        const r = await runBoth(ir, "vg", inputs, { module: m });
        // f32 sums of up to 3*42 (dw) or 144 (forward) terms of size <= ~5.
        for (let k = 0; k < 3; k++) close(r.wasm[k]!.data, Array.from(r.ref[k]!.data, Number), `winograd training output ${k}, ${threads} threads`, 1e-4, 2e-3);
      } finally {
        m.dispose();
      }
    }
  });

  it("MNIST CNN: Train.step stores no patches and has fewer kernels than with KILN_CONV_WGRAD_GATHER=0; the gradients match the reference", async () => {
    const cnn = readFileSync("dsl-examples/mnist_cnn.kiln", "utf8");
    const stepsOf = async (src: string, fn: string) => (await buildWasm(irOf(src), "cnn", { wat: false })).manifest.functions.find((f) => f.name === fn)!.steps;
    process.env.KILN_CONV_WGRAD_GATHER = "0";
    const before = await stepsOf(cnn, "Train.step");
    delete process.env.KILN_CONV_WGRAD_GATHER;
    const after = await stepsOf(cnn, "Train.step");
    // Both convolutions' forwards gathered (conv_nchw), both weight gradients too.
    const shown = after.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
    expect(after.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, shown).toBe(2);
    expect(after.filter((s) => s.kernel.startsWith("conv_nchw_") && s.ops[0] === "pad").length, shown).toBe(1);
    // The second layer (16 -> 32 channels, 3x3, stride 1) trains through Winograd, as the input gradient's conv does.
    expect(after.filter((s) => s.kernel.startsWith("conv_wino_")).length, shown).toBe(2);
    expect(after.some((s) => s.ops.includes("window") && !s.ops.includes("matmul") && !s.ops.includes("max")), shown).toBe(false);
    expect(before.some((s) => s.ops.join() === "window"), "with the switch off the patches are stored").toBe(true);
    expect(after.length).toBeLessThan(before.length);
    // dY of both convs is read in NCHW by the weight gradient and the bias sum (passes/nchw-grad.ts): no NHWC copy,
    // which KILN_CONV_DY_NCHW=0 keeps (one per layer).
    const fnOf = async (fn: string) => (await buildWasm(irOf(cnn), "cnn", { wat: false })).manifest.functions.find((f) => f.name === fn)!;
    expect(nhwcCopies(await fnOf("Train.step")).map((s) => s.kernel), shown).toEqual([]);
    process.env.KILN_CONV_DY_NCHW = "0";
    const copied = await fnOf("Train.step");
    delete process.env.KILN_CONV_DY_NCHW;
    expect(nhwcCopies(copied).length, "with KILN_CONV_DY_NCHW=0 dY is copied to NHWC per layer").toBe(2);
    expect(copied.steps.length).toBe(after.length + 2);
    // The model's loss and both conv weights' gradients at batch 4 from its initial params, against the float64 reference.
    const src = cnn.replace("  fn loss(", "  fn vg(x: f32[B, 1, 28, 28], labels: i32[B]) -> (f32, f32[16, 1, 3, 3], f32[32, 16, 3, 3]) {\n    return value_and_grad(loss, wrt: [c1, c2])(x, labels)\n  }\n\n  fn loss(");
    const ir = irOf(src);
    const b = await buildWasm(ir, "cnn", { wat: false });
    const vg = b.manifest.functions.find((f) => f.name === "MnistCNN.vg")!.steps;
    expect(vg.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, "vg").toBe(2);
    const m = await loadKilnModule(b.manifest, b.wasm, { seed: 3 });
    try {
      const x = Array.from({ length: 4 * 784 }, (_, i) => ((i * 7919) % 256) / 255);
      const r = await runBoth(ir, "MnistCNN.vg", { x: { dtype: "f32", shape: [4, 1, 28, 28], data: x }, labels: { dtype: "i32", shape: [4], data: [3, 1, 4, 1] } }, { module: m, seed: 3 });
      for (let k = 0; k < 3; k++) close(r.wasm[k]!.data, Array.from(r.ref[k]!.data, Number), `MNIST CNN output ${k}`, 1e-3, 1e-4);
    } finally {
      m.dispose();
    }
  });
});
