// conv2d in training on the relaxed-SIMD build (MR = 6 panels of taps, fused multiply-adds), run by the vitest
// project whose workers have --experimental-wasm-relaxed-simd: the PyTorch cases of conv-wgrad.test.ts.
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { CONV_GOLDENS } from "../helpers/conv-goldens.js";
import { checkAgainstReference, checkTrain, REFERENCE_CASES } from "../helpers/conv-wgrad.js";

describe("conv2d training, forward and weight gradient gathered, relaxed SIMD, against PyTorch", () => {
  it("this worker's engine validates relaxed SIMD (else nothing below ran relaxed)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkTrain(c, { relaxed: true, threads: 1, symbolic: false });
      await checkTrain(c, { relaxed: true, threads: 1, symbolic: true });
    });
  }
  for (const c of REFERENCE_CASES) {
    it(`${c.name} against the float64 reference`, async () => {
      for (const symbolic of [false, true]) await checkAgainstReference(c, { relaxed: true, threads: 1, symbolic });
    });
  }
  it("two threads", async () => {
    for (const c of CONV_GOLDENS.slice(0, 3)) await checkTrain(c, { relaxed: true, threads: 2, symbolic: true });
  });
});
