// depthwise.test.ts again in a worker started with relaxed SIMD (vitest.config.ts's relaxed-simd project), where
// each case also runs the relaxed build of the module; the first test fails if that build is not in use.
import { expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import "./depthwise.test.js";

it("relaxed SIMD is available in this worker, so the cases above ran the relaxed build too", () => {
  expect(relaxedSimdSupported()).toBe(true);
});
