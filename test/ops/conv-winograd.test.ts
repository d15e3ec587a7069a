// conv2d 3x3 stride 1 as Winograd F(2x2, 3x3) on the plain SIMD128 build (compiler/codegen/wasm/winograd.ts; relaxed:
// conv-winograd.relaxed.test.ts; WebGPU keeps the gathered matmul: test/webgpu/conv-winograd.test.ts), 1 and 2
// threads: outputs against PyTorch and the float64 reference within Winograd's error bound
// (test/helpers/winograd-goldens.ts); which convolutions take it.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { WINOGRAD_CASES, checkWinograd } from "../helpers/winograd-goldens.js";
import { winogradFor, winogradScratchBytes } from "../../compiler/codegen/plan-winograd.js";
import { MATMUL_SCRATCH_MAX } from "../../runtime/wasm/matmul-scratch.js";

describe("conv2d as Winograd F(2x2, 3x3), plain SIMD, against PyTorch and the float64 reference", () => {
  for (const c of WINOGRAD_CASES) {
    it(`${c.name}: ${c.expr} on [${c.inputs.x!.shape.join(", ")}]`, () => checkWinograd(c, false, 1));
  }
  it("two threads split the output channels", async () => {
    // many_blocks_pad1 is 17 x 144 x 884 = 2.2M multiply-adds, over the pool's MIN_MATMUL_WORK: its 17 channels are cut
    // at 8 (plain) or 6 (relaxed), mid-panel for the relaxed build's split.
    for (const c of [WINOGRAD_CASES[0]!, WINOGRAD_CASES[3]!]) await checkWinograd(c, false, 2);
  });
  it("a symbolic batch", async () => {
    for (const c of WINOGRAD_CASES.filter((x) => x.inputs.x!.shape[0]! > 1)) await checkWinograd(c, false, 1, true);
  });
});

describe("which convolutions run as Winograd", () => {
  const kernels = async (src: string): Promise<string[]> =>
    (await buildWasm(irOf(src), "w", { wat: false })).manifest.functions[0]!.steps.map((s) => s.kernel);
  it("3x3 stride 1 with 16 channels in and out does", async () => {
    expect(await kernels("fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 1) }"))
      .toEqual([expect.stringMatching(/^conv_wino_/)]);
  });
  it("fewer channels, a stride, a dilation or a 5x5 kernel keep the implicit GEMM", async () => {
    for (const src of [
      "fn f(x: f32[1, 8, 8, 8], w: f32[16, 8, 3, 3]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[8, 16, 3, 3]) -> f32[1, 8, 8, 8] { return conv2d(x, w, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 4, 4] { return conv2d(x, w, stride: 2, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 4, 4] { return conv2d(x, w, dilation: 2) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 5, 5]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 2) }",
    ]) {
      const ks = await kernels(src);
      expect(ks.some((k) => k.startsWith("conv_nchw")), src).toBe(true);
      expect(ks.filter((k) => k.startsWith("conv_wino")), src).toEqual([]);
    }
  });
  it("blocks are fewer tile rows where the scratch would outgrow a thread's, and the golden cases cover 1 and 3 rows", () => {
    const geo = (C: number, H: number, W: number) => ({ C, H, W, KH: 3, KW: 3, OH: H, OW: W, stride: [1, 1] as const, dilation: [1, 1] as const, pad: [1, 1] as const });
    // 64 channels at 56x56 (28 tiles a row): 2 rows, 56 tiles a block. 128 at 28x28: U alone is 1 MiB, so 1 row (16 tiles).
    expect(winogradFor(geo(64, 56, 56), 64)).toEqual({ O: 64, rowsPerBlock: 2 });
    const wide = winogradFor(geo(128, 28, 28), 128)!;
    expect(wide).toEqual({ O: 128, rowsPerBlock: 1 });
    expect(winogradScratchBytes(geo(128, 28, 28), wide)).toBeLessThanOrEqual(MATMUL_SCRATCH_MAX);
    expect(winogradFor(geo(16, 26, 34), 17)!.rowsPerBlock).toBe(3);
    expect(winogradFor(geo(16, 5, 130), 16)!.rowsPerBlock).toBe(1);
    // Prepacked, U takes no scratch: 128 channels at 28x28 get full 4-row blocks (64 tiles); 512 at 7x7 fit only so.
    expect(winogradFor(geo(128, 28, 28), 128, true)).toEqual({ O: 128, rowsPerBlock: 4, prepacked: true });
    expect(winogradFor(geo(512, 7, 7), 512, false)).toBeUndefined();
    const big = winogradFor(geo(512, 7, 7), 512, true)!;
    expect(winogradScratchBytes(geo(512, 7, 7), big)).toBeLessThanOrEqual(MATMUL_SCRATCH_MAX);
  });
  it("a weight transformed per call that outgrows a thread's scratch keeps the implicit GEMM; a param's, prepacked, does not", async () => {
    // U alone is 16 x 256 x 256 floats (4 MiB), more than MATMUL_SCRATCH_MAX: fine in persistent memory, not in scratch.
    const ks = await kernels("fn f(x: f32[1, 256, 8, 8], w: f32[256, 256, 3, 3]) -> f32[1, 256, 8, 8] { return conv2d(x, w, padding: 1) }");
    expect(ks).toEqual([expect.stringMatching(/^conv_nchw_/)]);
    const b = await buildWasm(irOf("model M {\n  param w: f32[256, 256, 3, 3] = he()\n  fn f(x: f32[1, 256, 8, 8]) -> f32[1, 256, 8, 8] { return conv2d(x, w, padding: 1) }\n}"), "w", { wat: false });
    const step = b.manifest.functions[0]!.steps[0]!;
    expect(step.kernel).toMatch(/^conv_wino_/);
    expect(step.prepackB).toEqual({ kernel: "__kiln_prepack_wino", K: 2304, N: 256, layout: "winograd" });
  });
  it("a 2x2 output (1 real tile of 8 computed) keeps the implicit GEMM", async () => {
    const ks = await kernels("fn f(x: f32[1, 16, 2, 2], w: f32[16, 16, 3, 3]) -> f32[1, 16, 2, 2] { return conv2d(x, w, padding: 1) }");
    expect(ks).toEqual([expect.stringMatching(/^conv_nchw_/)]);
  });
});
