// The softmax row kernel's exp in ulps, relaxed-SIMD build (fused multiply-adds), run by the vitest project whose
// workers have --experimental-wasm-relaxed-simd (cases in softmax-exp-ulp-cases.ts).
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { checkExpUlp } from "./softmax-exp-ulp-cases.js";

describe("softmax row exp accuracy, relaxed SIMD", () => {
  it("relaxed build: <= 2 ulp against Math.exp", async () => {
    expect(relaxedSimdSupported()).toBe(true);
    await checkExpUlp("relaxed");
  }, 120_000);
});
