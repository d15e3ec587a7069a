// A strided conv2d's input gradient by phases (compiler/ops/conv-backward-phase.ts) on the relaxed-SIMD build, known
// and symbolic batch, against PyTorch (test/ops/torch-conv-dx-goldens.json, scripts/torch-conv-dx-goldens.py) and the
// float64 reference; the plain build and the step checks: conv-dx-phase.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { checkPhaseGolden, DX_GOLDENS } from "../helpers/conv-dx-phase.js";
import { checkTrain } from "../helpers/conv-wgrad.js";


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

describe("strided conv2d input gradient by phases, relaxed SIMD", () => {
  it("this worker's engine validates relaxed SIMD (else nothing below ran relaxed)", () => {
    expect(relaxedSimdSupported()).toBe(true);
  });
  for (const c of DX_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      await checkPhaseGolden(c, { relaxed: true, symbolic: false });
      await checkPhaseGolden(c, { relaxed: true, symbolic: true });
      // Training needs a gathered forward (kernels over 1x1).
      if (c.inputs.w!.shape[2]! * c.inputs.w!.shape[3]! > 1) await checkTrain(c, { relaxed: true, threads: 1, symbolic: false });
    });
  }
});
