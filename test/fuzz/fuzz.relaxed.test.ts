// Fuzz suite, the relaxed-SIMD build: run by the vitest project whose workers have --experimental-wasm-relaxed-simd
// (vitest.config.ts), so generated programs are checked on the relaxed kernels (fused multiply-adds, relaxed
// lane ops) against the float64 reference, as fuzz.test.ts checks the other builds.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { validProgram } from "./arbitraries.js";
import { checkAgreement, VARIANTS } from "./properties.js";

const SEED = 15;

describe("fuzz (bounded, seed 15), relaxed SIMD", () => {
  it("this worker's engine validates relaxed SIMD (else the project lost its flag and nothing below ran)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });

  it("valid programs agree with the float64 reference: relaxed", async () => {
    const v = VARIANTS.find((x) => x.name === "relaxed")!;
    await fc.assert(fc.asyncProperty(validProgram, (c) => checkAgreement(c, v)), { seed: SEED, numRuns: 12 });
  }, 300_000);
});
