// The softmax / log_softmax row kernel on the relaxed-SIMD build (fused multiply-adds in its exp): run by the
// vitest project whose workers have --experimental-wasm-relaxed-simd; the same checks as softmax-rows.test.ts.
import { describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { checkRows, checkTorchGoldens, specialRows } from "./softmax-rows-cases.js";

describe("softmax rows on one kernel, relaxed SIMD", () => {
  it("this worker's engine validates relaxed SIMD", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });

  for (const c of [1, 3, 5, 17, 1024, 1025]) {
    it(`rows of ${c}: reference, unfused build, special values`, async () => {
      await checkRows("softmax", specialRows(c), "relaxed");
      await checkRows("log_softmax", specialRows(c), "relaxed");
    });
  }

  it("PyTorch's float32 softmax and log_softmax", async () => {
    await checkTorchGoldens("relaxed");
  });
});
