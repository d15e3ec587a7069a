// Mixed-precision conv training with gathered patches on the relaxed-SIMD build (MR = 6 panels, fused
// multiply-adds), run by the vitest project whose workers have --experimental-wasm-relaxed-simd: the cases of
// conv-gather-half.test.ts (test/helpers/conv-gather-half.ts).
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { checkHalfConv, HALF_CASES } from "../helpers/conv-gather-half.js";

describe("mixed-precision conv training gathers its patches (wasm, relaxed SIMD)", () => {
  it("this worker's engine validates relaxed SIMD (else nothing below ran relaxed)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });
  for (const c of HALF_CASES) {
    for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
      it(`${c.name} ${precision}`, async () => {
        await checkHalfConv(c, precision, { relaxed: true, symbolic: false, threads: 1 });
        await checkHalfConv(c, precision, { relaxed: true, symbolic: true, threads: 1 });
      }, 60_000);
    }
  }
});
