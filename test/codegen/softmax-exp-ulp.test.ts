// The softmax row kernel's exp in ulps, plain SIMD128 build (cases in softmax-exp-ulp-cases.ts).
import { describe, it } from "vitest";
import { checkExpUlp } from "./softmax-exp-ulp-cases.js";

describe("softmax row exp accuracy", () => {
  it("plain build: <= 2 ulp against Math.exp", async () => { await checkExpUlp("plain"); }, 120_000);
});
