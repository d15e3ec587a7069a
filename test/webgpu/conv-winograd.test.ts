// The convolutions the wasm build runs as Winograd F(2x2, 3x3) keep the gathered matmul on WebGPU (the kernel's
// `winograd` flag is wasm-only, wgsl/matmul.ts ignores it): outputs of the PyTorch cases of
// test/ops/torch-winograd-goldens.json, to direct convolution's tolerance. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { buildWgsl } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { close } from "../helpers/conv-goldens.js";
import { WINOGRAD_CASES, winogradInputs, winogradProgram } from "../helpers/winograd-goldens.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("conv2d Winograd cases on WebGPU");
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("conv2d chosen for Winograd on wasm, on WebGPU, against PyTorch", () => {
  for (const c of WINOGRAD_CASES) {
    it(`${c.name}: ${c.expr}`, async () => {
      const ir = irOf(winogradProgram(c));
      const { wgsl, manifest } = buildWgsl(ir, "conv");
      // The same planned kernel, flagged for Winograd, runs as the gathered matmul here.
      expect(manifest.functions[0]!.steps[0]!.kernel).toMatch(/^conv_wino_/);
      expect(wgsl).toContain("a convolution's input x");
      const module = await gpuModule(env, ir);
      try {
        const fwd = await runGpuVsRef(env, ir, "fwd", winogradInputs(c), { module });
        close(fwd.gpu[0]!.data as ArrayLike<number>, c.out.y, `${c.name} WebGPU output`, 1e-4, 1e-4);
      } finally {
        module.dispose();
      }
    });
  }
});
