// broadcast_to folding on the relaxed-SIMD build (this vitest project's workers have --experimental-wasm-relaxed-simd).
import { expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { foldSuite } from "./simplify-broadcast-cases.js";

it("this worker's engine validates relaxed SIMD", () => {
  expect(relaxedSimdSupported()).toBe(true);
});
foldSuite();
