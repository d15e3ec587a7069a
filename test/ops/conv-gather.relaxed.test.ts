// conv2d as an implicit GEMM on the relaxed-SIMD build (MR = 6 panels, fused multiply-adds), run by the vitest
// project whose workers have --experimental-wasm-relaxed-simd: the PyTorch cases of conv-gather.test.ts.
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { CONV_GOLDENS, checkConvGolden } from "../helpers/conv-goldens.js";

describe("conv2d gathered into the matmul's packing, relaxed SIMD, against PyTorch", () => {
  it("this worker's engine validates relaxed SIMD (else nothing below ran relaxed)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkConvGolden(c, { relaxed: true });
      await checkConvGolden(c, { relaxed: true, symbolic: true });
      await checkConvGolden(c, { relaxed: true, unfused: true });
    });
  }
});
