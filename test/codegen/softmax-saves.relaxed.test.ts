// softmax rows storing their exps and sums on the relaxed-SIMD build (this vitest project's workers have
// --experimental-wasm-relaxed-simd): the same checks as softmax-saves.test.ts (softmax-saves-cases.ts).
import { expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { savesSuite } from "./softmax-saves-cases.js";

it("this worker's engine validates relaxed SIMD", () => {
  expect(relaxedSimdSupported()).toBe(true);
});
savesSuite();
