// conv2d as an implicit GEMM on the plain SIMD128 build (the relaxed build: conv-gather.relaxed.test.ts; WebGPU:
// test/webgpu/conv-gather.test.ts): outputs and both gradients against PyTorch for strides, padding, dilation,
// bias, odd sizes, channel counts off multiples of 4, batch 1 to 3, a symbolic batch and two threads.
import { describe, it } from "vitest";
import { CONV_GOLDENS, checkConvGolden } from "../helpers/conv-goldens.js";

describe("conv2d gathered into the matmul's packing, plain SIMD, against PyTorch", () => {
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkConvGolden(c, { relaxed: false });
      await checkConvGolden(c, { relaxed: false, symbolic: true });
      await checkConvGolden(c, { relaxed: false, unfused: true });
    });
  }
  it("two threads split the gathered rows", async () => {
    for (const c of CONV_GOLDENS.slice(0, 2)) await checkConvGolden(c, { relaxed: false, threads: 2 });
  });
});
