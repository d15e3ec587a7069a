// conv2d's input gradient as a transposed convolution (compiler/ops/conv-backward.ts, issue 19 item 1): which
// gradients take it (stride 1) and that the float64 reference and the wasm build, plain and relaxed, symbolic batch
// too, give PyTorch's dx and dw (test/ops/torch-conv-goldens.json, scripts/torch-conv-goldens.py). The same cases'
// gradients on WebGPU: test/webgpu/conv-gather.test.ts.
import { describe, expect, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { AttrsOf } from "../../compiler/ops/types.js";
import { graphOf, irOf, runBoth } from "../helpers/backend.js";
import { CONV_GOLDENS, checkConvGolden, close, convProgram, gradAtol } from "../helpers/conv-goldens.js";
import { layerInputs } from "../helpers/layer-goldens.js";
import { phaseApplies } from "../helpers/conv-dx-phase.js";

/** The case's conv2d options as written in its expression (stride and padding, one number or [h, w]). */
function option(expr: string, name: string): [number, number] {
  const m = new RegExp(`${name}: (\\[(\\d+), (\\d+)\\]|\\d+)`).exec(expr);
  if (!m) return name === "stride" ? [1, 1] : [0, 0];
  return m[2] !== undefined ? [Number(m[2]), Number(m[3])] : [Number(m[1]), Number(m[1])];
}

const windows = (g: Graph) => g.nodes.filter((n) => n.op === "window");
const strideOne = CONV_GOLDENS.filter((c) => option(c.expr, "stride").every((s) => s === 1));

describe("conv2d's input gradient as a transposed convolution", () => {
  // Strided goldens whose phase images are under PHASE_MIN_PIXELS keep col2im by default (the phases:
  // conv-dx-phase.test.ts).
  it("covers the stride-1 goldens, and the strided ones with small images keep the per-tap col2im", () => {
    expect(strideOne.map((c) => c.name)).toEqual(expect.arrayContaining(["pad1_bias_batch2", "dilation_asym", "pad3_over_kernel", "nonsquare_k2x4_pad", "deep_k_two_blocks"]));
    for (const c of CONV_GOLDENS) {
      const g = graphOf(irOf(convProgram(c)), "grads");
      const [, , KH, KW] = c.inputs.w!.shape as [number, number, number, number];
      const [ph, pw] = option(c.expr, "padding");
      const d = option(c.expr, "dilation");
      const dil = /dilation: \d+\b/.test(c.expr) ? [Number(/dilation: (\d+)/.exec(c.expr)![1]), Number(/dilation: (\d+)/.exec(c.expr)![1])] : /dilation/.test(c.expr) ? d : [1, 1];
      const wins = windows(g);
      if (strideOne.includes(c)) {
        // The forward's window and the transposed conv's, which reads the cotangent image [N, O, OH, OW].
        expect(wins.length, c.name).toBe(2);
        const back = wins[1]!;
        expect(g.nodes[back.inputs[0]!]!.type.shape[1], `${c.name}: the transposed conv reads O channels`).toBe(c.inputs.w!.shape[0]);
        expect((back.attrs as AttrsOf["window"]).dilation).toEqual(dil);
        // No per-tap pads: only the forward's and the transposed conv's own.
        expect(g.nodes.filter((n) => n.op === "pad").length, c.name).toBeLessThanOrEqual(2);
        // Cropped by shrinking its padding when the forward padding is at most (K - 1) * dilation, else sliced.
        const fits = ph <= (KH - 1) * dil[0]! && pw <= (KW - 1) * dil[1]!;
        expect(g.nodes.some((n) => n.op === "slice" && n.inputs.some((i) => g.nodes[i]!.op === "permute")), c.name).toBe(!fits);
      } else if (phaseApplies(c)) {
        // Phase images of 32 pixels or more (stride_w2_dil2_nopad: 8x6): the phases, no col2im's interior pads.
        expect(wins.length, c.name).toBeGreaterThan(1);
        expect(g.nodes.filter((n) => n.op === "pad" && (n.attrs as AttrsOf["pad"]).pads.some((p) => p[2] > 0)), c.name).toEqual([]);
      } else {
        expect(wins.length, c.name).toBe(1);
      }
    }
  });

  it("keeps the per-tap col2im in mixed precision (the flipped kernel's concat would need a cast kernel)", () => {
    const c = strideOne[0]!;
    const r = compileToIR(convProgram(c), "t.kiln", [], [], { precision: "mixed-f16" });
    expect(windows(graphOf(r.ir!, "grads")).length).toBe(1);
  });

  for (const c of strideOne) {
    it(`${c.name}: ${c.expr}, float64 reference and wasm against PyTorch`, async () => {
      const ir = irOf(convProgram(c));
      const b = await buildWasm(ir, "conv", { wat: false });
      // The transposed conv runs as one gathered kernel (pad, window, matmul, reshape, permute).
      const steps = b.manifest.functions.find((f) => f.name === "grads")!.steps;
      expect(steps.filter((s) => s.kernel.startsWith("conv")).length, `${c.name}: ${steps.map((s) => s.kernel).join(" ")}`).toBeGreaterThanOrEqual(1);
      const g = await runBoth(ir, "grads", layerInputs(c, "f32", true));
      c.wrt.forEach((name, k) => {
        close(g.ref[k]!.data, c.grads[name]!, `${c.name} reference d/d${name}`, 1e-9, 1e-9);
        close(g.wasm[k]!.data, c.grads[name]!, `${c.name} wasm d/d${name}`, 1e-4, gradAtol(c));
      });
      await checkConvGolden(c, { relaxed: true, symbolic: true });
    });
  }
});
