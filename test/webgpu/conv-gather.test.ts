// conv2d as an implicit GEMM on WebGPU: the WGSL matmul stages the patches straight from x (wgsl/matmul.ts
// convGather). Outputs and both gradients of the PyTorch cases (test/ops/torch-conv-goldens.json), known and
// symbolic batch; in training (value and weight gradient together) the weight gradient's matmul stages the
// transposed patches from x too (compiler/codegen/plan-conv-wgrad.ts). Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { buildWgsl } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { CONV_GOLDENS, close, convProgram, gradAtol, outAtol } from "../helpers/conv-goldens.js";
import { trainProgram } from "../helpers/conv-wgrad.js";
import { layerInputs } from "../helpers/layer-goldens.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("conv2d implicit GEMM on WebGPU");
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("conv2d gathered into the matmul on WebGPU, against PyTorch", () => {
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      for (const symbolic of [false, true]) {
        const ir = irOf(convProgram(c, symbolic));
        // The forward's matmul reads x itself (its shader says so): the gather is what runs here.
        const { wgsl } = buildWgsl(ir, "conv");
        expect(wgsl).toContain("a convolution's input x");
        const module = await gpuModule(env, ir);
        try {
          const tag = `${c.name} WebGPU${symbolic ? " symbolic N" : ""}`;
          const fwd = await runGpuVsRef(env, ir, "fwd", layerInputs(c), { module });
          close(fwd.gpu[0]!.data as ArrayLike<number>, c.outs[0]!.y, `${tag} output`, 1e-4, outAtol(c));
          const bwd = await runGpuVsRef(env, ir, "grads", layerInputs(c, "f32", true), { module });
          c.wrt.forEach((name, k) => close(bwd.gpu[k]!.data as ArrayLike<number>, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c)));
        } finally {
          module.dispose();
        }
      }
    });
  }
});

describe.skipIf(!env.h)("conv2d training on WebGPU: the weight gradient gathers the patches transposed, against PyTorch", () => {
  for (const c of CONV_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      for (const symbolic of [false, true]) {
        const ir = irOf(trainProgram(c, symbolic));
        const { wgsl } = buildWgsl(ir, "conv");
        expect(wgsl).toContain("its patches transposed");
        const module = await gpuModule(env, ir);
        try {
          const tag = `${c.name} WebGPU training${symbolic ? " symbolic N" : ""}`;
          const r = await runGpuVsRef(env, ir, "vg", layerInputs(c, "f32", true), { module });
          const o = c.outs[0]!;
          close(r.gpu[0]!.data as ArrayLike<number>, [o.y.reduce((s, y, i) => s + y * o.r[i]!, 0)], `${tag} loss`, 1e-4, gradAtol(c));
          c.wrt.forEach((name, k) => close(r.gpu[k + 1]!.data as ArrayLike<number>, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c)));
        } finally {
          module.dispose();
        }
      }
    });
  }
});
