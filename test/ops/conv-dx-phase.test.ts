// A strided conv2d's input gradient by sub-pixel phases (compiler/ops/conv-backward-phase.ts, issue 19 item 1): which
// cases take it, that col2im's steps are gone from the compiled gradient (and are there with KILN_CONV_DX_PHASE=0),
// and that the float64 reference and the plain-SIMD wasm build, known and symbolic batch, give PyTorch's dx, dw and db
// (test/ops/torch-conv-dx-goldens.json, written by scripts/torch-conv-dx-goldens.py with PyTorch 1.13 in float64).
// Relaxed SIMD: conv-dx-phase.relaxed.test.ts; WebGPU: test/webgpu/conv-dx-phase.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { graphOf, irOf, runBoth } from "../helpers/backend.js";
import { close, convProgram } from "../helpers/conv-goldens.js";
import { checkPhaseGolden, col2imSteps, DX_GOLDENS, interiorPads, phaseApplies, withPhase } from "../helpers/conv-dx-phase.js";
import { checkTrain, nhwcCopies, trainProgram } from "../helpers/conv-wgrad.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";


// The goldens' images are small (phase images of 4 to 42 pixels): KILN_CONV_DX_PHASE=1 lets every phase image take
// the phases, as PHASE_MIN_PIXELS (32) lets larger ones by default.
const savedPhase = process.env.KILN_CONV_DX_PHASE;
beforeAll(() => {
  process.env.KILN_CONV_DX_PHASE = "1";
});
afterAll(() => {
  if (savedPhase === undefined) delete process.env.KILN_CONV_DX_PHASE;
  else process.env.KILN_CONV_DX_PHASE = savedPhase;
});

describe("strided conv2d input gradient by phases", () => {
  it("takes every overlapping strided golden; windows that do not overlap keep col2im (or the permute of stride = kernel)", () => {
    expect(DX_GOLDENS.filter((c) => !phaseApplies(c)).map((c) => c.name)).toEqual(["s2_k1_p0", "s2_k1_p1", "s2_k2_p1", "s3_k3_p1"]);
  });

  it("KILN_CONV_DX_PHASE=0 keeps col2im, which the step check sees", async () => {
    const c = DX_GOLDENS.find((x) => x.name === "s2_k3_p1")!;
    const [ir, b] = await withPhase("0", async () => {
      const ir = irOf(convProgram(c));
      return [ir, await buildWasm(ir, "conv", { wat: false })] as const;
    });
    expect(interiorPads(ir, "grads")).toBe(9);
    expect(col2imSteps(b.manifest.functions.find((f) => f.name === "grads")!, c).length).toBe(2 * 9);
  });

  for (const c of DX_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkPhaseGolden(c, { relaxed: false, symbolic: false });
      await checkPhaseGolden(c, { relaxed: false, symbolic: true });
    });
  }

  it("two threads", async () => {
    for (const name of ["s2_k3_p1", "s3_k5_p0", "s2_k3_p1_wide"]) await checkPhaseGolden(DX_GOLDENS.find((c) => c.name === name)!, { relaxed: false, symbolic: true, threads: 2 });
  });

  it("training (value and all gradients): no NHWC copy of dY with a symbolic batch, gradients as PyTorch's", async () => {
    for (const c of DX_GOLDENS.filter(phaseApplies)) {
      await checkTrain(c, { relaxed: false, threads: 1, symbolic: true });
      const b = await buildWasm(irOf(trainProgram(c, true)), "conv", { wat: false });
      expect(nhwcCopies(b.manifest.functions.find((f) => f.name === "vg")!).map((s) => s.kernel), c.name).toEqual([]);
    }
  });
});

describe("the default threshold (KILN_CONV_DX_PHASE unset)", () => {
  it("phase images under 32 pixels keep col2im; larger ones take the phases and match col2im's float64 reference", async () => {
    const small = DX_GOLDENS.find((x) => x.name === "s2_k3_p1")!;
    expect(interiorPads(await withPhase(undefined, () => irOf(convProgram(small))), "grads"), "4x5 phases").toBe(9);
    // 17x16 at stride 2: 9x8 = 72 pixels per phase image.
    const src = `fn loss(x: f32[N, 3, 17, 16], w: f32[5, 3, 3, 3], r: f32[N, 5, 9, 8]) -> f32 { return sum(conv2d(x, w, stride: 2, padding: 1) * r) }
fn gx(x: f32[N, 3, 17, 16], w: f32[5, 3, 3, 3], r: f32[N, 5, 9, 8]) -> f32[N, 3, 17, 16] { return grad(loss, wrt: x)(x, w, r) }`;
    const fill = (shape: number[], k: number) => ({ dtype: "f32" as const, shape, data: Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.fround(Math.cos(i * 0.43 + k))) });
    const inputs = { x: fill([2, 3, 17, 16], 1), w: fill([5, 3, 3, 3], 2), r: fill([2, 5, 9, 8], 3) };
    const ir = await withPhase(undefined, () => irOf(src));
    expect(interiorPads(ir, "gx")).toBe(0);
    const old = await withPhase("0", () => irOf(src));
    expect(interiorPads(old, "gx")).toBe(9);
    const want = evaluateGraph(graphOf(old, "gx"), inputs, {});
    const r = await runBoth(ir, "gx", inputs);
    close(r.ref[0]!.data, Array.from(want[0]!.data, Number), "default threshold: reference", 1e-9, 1e-9);
    close(r.wasm[0]!.data, Array.from(want[0]!.data, Number), "default threshold: wasm", 1e-4, 1e-4);
  });
});

describe("a strided stem (two stride-2 convs with a relu between) against col2im's float64 reference", () => {
  const src = `fn loss(x: f32[N, 3, 11, 10], w1: f32[6, 3, 3, 3], b1: f32[6], w2: f32[7, 6, 4, 4], b2: f32[7], r: f32[N, 7, 3, 2]) -> f32 {
  let h = relu(conv2d(x, w1, b1, stride: 2, padding: 1))
  return sum(relu(conv2d(h, w2, b2, stride: 2, padding: 1)) * r)
}
fn gx(x: f32[N, 3, 11, 10], w1: f32[6, 3, 3, 3], b1: f32[6], w2: f32[7, 6, 4, 4], b2: f32[7], r: f32[N, 7, 3, 2]) -> (f32[N, 3, 11, 10], f32[6, 3, 3, 3], f32[7, 6, 4, 4]) {
  return grad(loss, wrt: [x, w1, w2])(x, w1, b1, w2, b2, r)
}`;
  const fill = (shape: number[], k: number) => ({ dtype: "f32" as const, shape, data: Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.fround(Math.sin(i * 0.61 + k))) });
  const inputs = { x: fill([3, 3, 11, 10], 1), w1: fill([6, 3, 3, 3], 2), b1: fill([6], 3), w2: fill([7, 6, 4, 4], 4), b2: fill([7], 5), r: fill([3, 7, 3, 2], 6) };
  it("phases (both layers' dx, plain and relaxed) match the reference of the col2im graph", async () => {
    const old = await withPhase("0", () => irOf(src));
    expect(interiorPads(old, "gx")).toBeGreaterThan(0);
    const want = evaluateGraph(graphOf(old, "gx"), inputs, {});
    const ir = irOf(src);
    expect(interiorPads(ir, "gx")).toBe(0);
    const b = await buildWasm(ir, "stem", { wat: false });
    for (const relaxed of [false, true]) {
      const m = await loadKilnModule(b.manifest, b.wasm, relaxed ? { relaxedWasm: b.wasmRelaxed } : {});
      try {
        const r = await runBoth(ir, "gx", inputs, { module: m });
        for (let k = 0; k < 3; k++) {
          close(r.ref[k]!.data, Array.from(want[k]!.data, Number), `stem reference output ${k}`, 1e-9, 1e-9);
          close(r.wasm[k]!.data, Array.from(want[k]!.data, Number), `stem wasm${relaxed ? " relaxed" : ""} output ${k}`, 1e-4, 1e-4);
        }
      } finally {
        m.dispose();
      }
    }
  });
});
