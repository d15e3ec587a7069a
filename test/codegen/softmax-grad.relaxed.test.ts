// The backward of softmax / log_softmax as one row kernel on the relaxed-SIMD build, run by the vitest project whose
// workers have --experimental-wasm-relaxed-simd (cases in softmax-grad-cases.ts).
import { expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { softmaxGradSuite } from "./softmax-grad-cases.js";

it("this worker's engine validates relaxed SIMD", () => {
  expect(relaxedSimdSupported()).toBe(true);
});
softmaxGradSuite("relaxed");
