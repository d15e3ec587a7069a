// conv2d as an implicit GEMM on the plain SIMD128 build (the relaxed build: conv-gather.relaxed.test.ts; WebGPU:
// test/webgpu/conv-gather.test.ts): outputs and both gradients against PyTorch for strides, padding, dilation,
// bias, odd sizes, channel counts off multiples of 4, batch 1 to 3, a symbolic batch and two threads.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
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

describe("which convolutions are gathered", () => {
  it("a 1x1 convolution is not (its patches are x itself; it has a path of its own)", async () => {
    const ir = irOf("fn f(x: f32[2, 3, 5, 5], w: f32[4, 3, 1, 1], b: f32[4]) -> f32[2, 4, 5, 5] { return conv2d(x, w, b) }");
    const b = await buildWasm(ir, "conv", { wat: false });
    expect(b.manifest.functions[0]!.steps.map((s) => s.kernel).filter((k) => k.startsWith("conv"))).toEqual([]);
  });
});
