// A strided conv2d's input gradient by phases (compiler/ops/conv-backward-phase.ts) on WebGPU: the phase convs run as
// WGSL's gathered matmul (several products of one patch set each stage it from dY). Gradients of the PyTorch cases
// (test/ops/torch-conv-dx-goldens.json, scripts/torch-conv-dx-goldens.py), known and symbolic batch, and in training
// (value_and_grad). Skips, saying why, without an adapter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWgsl } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { close, convProgram, gradAtol } from "../helpers/conv-goldens.js";
import { DX_GOLDENS, interiorPads, phaseApplies } from "../helpers/conv-dx-phase.js";
import { trainProgram } from "../helpers/conv-wgrad.js";
import { layerInputs } from "../helpers/layer-goldens.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("strided conv2d input gradient by phases on WebGPU");
afterAll(() => env.h?.device.destroy());


// The goldens' images are small (phase images of 4 to 42 pixels): KILN_CONV_DX_PHASE=1 lets every phase image take
// the phases, as PHASE_MIN_PIXELS (32) lets larger ones by default.
const savedPhase = process.env.KILN_CONV_DX_PHASE;
beforeAll(() => {
  process.env.KILN_CONV_DX_PHASE = "1";
});
afterAll(() => {
  if (savedPhase === undefined) delete process.env.KILN_CONV_DX_PHASE;
  else process.env.KILN_CONV_DX_PHASE = savedPhase;
});

describe.skipIf(!env.h)("strided conv2d input gradient by phases on WebGPU, against PyTorch", () => {
  for (const c of DX_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      for (const symbolic of [false, true]) {
        const ir = irOf(convProgram(c, symbolic));
        if (phaseApplies(c)) expect(interiorPads(ir, "grads"), c.name).toBe(0);
        // The forward (kernels over 1x1) and the phases with two or more taps stage their patches from x or dY.
        if (c.inputs.w!.shape[2]! * c.inputs.w!.shape[3]! > 1) expect(buildWgsl(ir, "conv").wgsl).toContain("a convolution's input x");
        const module = await gpuModule(env, ir);
        try {
          const tag = `${c.name} WebGPU${symbolic ? " symbolic N" : ""}`;
          const bwd = await runGpuVsRef(env, ir, "grads", layerInputs(c, "f32", true), { module });
          c.wrt.forEach((name, k) => close(bwd.gpu[k]!.data as ArrayLike<number>, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c)));
        } finally {
          module.dispose();
        }
      }
    });
  }
});

describe.skipIf(!env.h)("strided conv2d training on WebGPU, against PyTorch", () => {
  for (const c of DX_GOLDENS.filter(phaseApplies)) {
    it(`${c.name}: ${c.expr}`, async () => {
      const ir = irOf(trainProgram(c, true));
      const module = await gpuModule(env, ir);
      try {
        const tag = `${c.name} WebGPU training symbolic N`;
        const r = await runGpuVsRef(env, ir, "vg", layerInputs(c, "f32", true), { module });
        const o = c.outs[0]!;
        close(r.gpu[0]!.data as ArrayLike<number>, [o.y.reduce((s, y, i) => s + y * o.r[i]!, 0)], `${tag} loss`, 1e-4, gradAtol(c));
        c.wrt.forEach((name, k) => close(r.gpu[k + 1]!.data as ArrayLike<number>, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c)));
      } finally {
        module.dispose();
      }
    });
  }
});
