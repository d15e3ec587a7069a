// conv2d 3x3 stride 1 as Winograd F(2x2, 3x3) on the relaxed-SIMD build (its products use relaxed_madd), run by the
// vitest project whose workers have --experimental-wasm-relaxed-simd: the PyTorch cases of conv-winograd.test.ts.
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { WINOGRAD_CASES, checkWinograd } from "../helpers/winograd-goldens.js";

describe("conv2d as Winograd F(2x2, 3x3), relaxed SIMD, against PyTorch and the float64 reference", () => {
  it("this worker's engine validates relaxed SIMD (else nothing below ran relaxed)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });
  for (const c of WINOGRAD_CASES) {
    it(`${c.name}: ${c.expr} on [${c.inputs.x!.shape.join(", ")}]`, () => checkWinograd(c, true, 1));
  }
  it("two threads split the output channels", async () => {
    for (const c of [WINOGRAD_CASES[0]!, WINOGRAD_CASES[3]!]) await checkWinograd(c, true, 2);
  });
});
