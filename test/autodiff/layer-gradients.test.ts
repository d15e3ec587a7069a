// Gradients of the issue-16 layers (norms, pooling options, adaptive pooling, conv1d, conv_transpose2d, lstm/gru
// cells) in the float64 reference against central finite differences, on the inputs of
// test/ops/torch-layer-goldens.json, each program declared f64.
import { describe, expect, it } from "vitest";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { graphOf, irOf } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";
import { LAYER_GOLDENS, layerInputs, layerProgram } from "../helpers/layer-goldens.js";

describe("layer gradients match finite differences (float64 reference)", () => {
  for (const c of LAYER_GOLDENS) {
    it(`${c.name}: ${c.expr}`, () => {
      const ir = irOf(layerProgram(c, "f64"));
      const inputs = layerInputs(c, "f64", true);
      const analytic = evaluateGraph(graphOf(ir, "grads"), inputs);
      const f = () => evaluateGraph(graphOf(ir, "loss"), inputs)[0].data[0];
      c.wrt.forEach((name, k) => {
        const x = inputs[name].data;
        expect(analytic[k].data.length, name).toBe(x.length);
        for (let i = 0; i < x.length; i++) {
          const fd = centralDifference(x, i, f);
          expect(Math.abs(analytic[k].data[i] - fd), `d loss/d${name}[${i}]: ${analytic[k].data[i]} vs FD ${fd}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
        }
      });
    });
  }
});
