// Gradients of the neural-network composites (conv2d, max/avg pooling, batch_norm in training mode, dropout)
// written as .kiln sources and evaluated in float64 by the reference, against central finite differences; and
// a second derivative through conv2d (gradients of the window/pad/stepped-slice gradients).
import { describe, expect, it } from "vitest";
import { Rng } from "../../runtime/rng.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { graphOf, irOf } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";

type Inputs = Record<string, { data: number[]; shape: number[] }>;

function randomInputs(rng: Rng, shapes: Record<string, number[]>): Inputs {
  const out: Inputs = {};
  for (const [k, shape] of Object.entries(shapes)) out[k] = { shape, data: Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => rng.normal(0, 1)) };
  return out;
}

/**
 * `grads` (a gradient per name in `wrt`, in order) against central differences of the scalar `loss`; when both
 * are one value_and_grad function, its first result is the loss.
 */
function checkFd(src: string, inputs: Inputs, wrt: string[], loss = "loss", grads = "grads") {
  const ir = irOf(src);
  const analytic = evaluateGraph(graphOf(ir, grads), inputs).slice(loss === grads ? 1 : 0);
  const f = () => evaluateGraph(graphOf(ir, loss), inputs)[0].data[0];
  wrt.forEach((name, k) => {
    const x = inputs[name].data;
    expect(analytic[k].data.length, name).toBe(x.length);
    for (let i = 0; i < x.length; i++) {
      const fd = centralDifference(x, i, f);
      expect(Math.abs(analytic[k].data[i] - fd), `d${loss}/d${name}[${i}]: ${analytic[k].data[i]} vs FD ${fd}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
    }
  });
}

const CONV = "conv2d(x, w, b, stride: 2, padding: 1, dilation: 2, groups: 2)";
// x [1, 4, 7, 6]: OH = floor((7 + 2 - 2*2 - 1) / 2) + 1 = 3, OW = floor((6 + 2 - 2 - 1) / 2) + 1 = 3.
const CONV_SIG = "x: f64[1, 4, 7, 6], w: f64[4, 2, 3, 2], b: f64[4], r: f64[1, 4, 3, 3]";

describe("composite gradients match finite differences (float64 reference, from source)", () => {
  const rng = new Rng(77);

  it("conv2d with stride 2, padding 1, dilation 2, groups 2: d/dx, d/dw, d/db", () => {
    const src = `
fn loss(${CONV_SIG}) -> f64 { return sum(tanh(${CONV}) * r) }
fn grads(${CONV_SIG}) -> (f64[1, 4, 7, 6], f64[4, 2, 3, 2], f64[4]) { return grad(loss, wrt: [x, w, b])(x, w, b, r) }`;
    checkFd(src, randomInputs(rng, { x: [1, 4, 7, 6], w: [4, 2, 3, 2], b: [4], r: [1, 4, 3, 3] }), ["x", "w", "b"]);
  });

  it("depthwise conv2d (groups = channels, stride 2, padding 1): d/dx, d/dw, d/db", () => {
    // x [1, 3, 5, 5]: OH = OW = floor((5 + 2 - 2 - 1) / 2) + 1 = 3.
    const sig = "x: f64[1, 3, 5, 5], w: f64[3, 1, 3, 3], b: f64[3], r: f64[1, 3, 3, 3]";
    const src = `
fn loss(${sig}) -> f64 { return sum(tanh(conv2d(x, w, b, stride: 2, padding: 1, groups: 3)) * r) }
fn grads(${sig}) -> (f64[1, 3, 5, 5], f64[3, 1, 3, 3], f64[3]) { return grad(loss, wrt: [x, w, b])(x, w, b, r) }`;
    checkFd(src, randomInputs(rng, { x: [1, 3, 5, 5], w: [3, 1, 3, 3], b: [3], r: [1, 3, 3, 3] }), ["x", "w", "b"]);
  });

  // The depthwise_conv2d primitive (ops/depthwise.ts): its input gradient is the same op on the cotangent with
  // interior zeros for the stride, a flipped kernel and pads that may be negative; each case below hits one of those.
  for (const [opts, H, W, KH, KW] of [
    ["padding: 2, dilation: 2", 6, 5, 3, 3],
    ["stride: [2, 3], padding: [0, 1]", 7, 8, 2, 3],
    ["stride: 2, padding: 3", 5, 6, 3, 3],
    ["stride: 1", 4, 6, 1, 3],
  ] as const) {
    it(`depthwise_conv2d (${opts}, ${KH}x${KW} kernel, batch 2, 5 channels): d/dx, d/dw and second derivatives`, () => {
      const out = evaluateGraph(graphOf(irOf(`fn f(x: f64[2, 5, ${H}, ${W}], w: f64[5, 1, ${KH}, ${KW}]) { return conv2d(x, w, ${opts}, groups: 5) }`), "f"), randomInputs(rng, { x: [2, 5, H, W], w: [5, 1, KH, KW] }))[0].shape;
      const sig = `x: f64[2, 5, ${H}, ${W}], w: f64[5, 1, ${KH}, ${KW}], b: f64[5], r: f64[${out.join(", ")}]`;
      const conv = `conv2d(x, w, b, ${opts}, groups: 5)`;
      const src = `
fn loss(${sig}) -> f64 { return sum(tanh(${conv}) * r) }
fn grads(${sig}) -> (f64[2, 5, ${H}, ${W}], f64[5, 1, ${KH}, ${KW}], f64[5]) { return grad(loss, wrt: [x, w, b])(x, w, b, r) }
fn gx(${sig}) -> f64[2, 5, ${H}, ${W}] { return grad(loss)(x, w, b, r) }
fn h(${sig}, s: f64[2, 5, ${H}, ${W}]) -> f64 { return sum(gx(x, w, b, r) * s) }
fn grads2(${sig}, s: f64[2, 5, ${H}, ${W}]) -> (f64[2, 5, ${H}, ${W}], f64[5, 1, ${KH}, ${KW}]) { return grad(h, wrt: [x, w])(x, w, b, r, s) }`;
      expect(irOf(src).functions.find((f) => f.name === "loss")!.nodes.some((n) => n.op === "depthwise_conv2d")).toBe(true);
      const inputs = randomInputs(rng, { x: [2, 5, H, W], w: [5, 1, KH, KW], b: [5], r: out, s: [2, 5, H, W] });
      checkFd(src, inputs, ["x", "w", "b"]);
      checkFd(src, inputs, ["x", "w"], "h", "grads2");
    });
  }

  it("1x1 conv2d on an 8x8 image (the NCHW matmul): d/dx, d/dw, d/db", () => {
    const sig = "x: f64[2, 3, 8, 8], w: f64[4, 3, 1, 1], b: f64[4], r: f64[2, 4, 8, 8]";
    const src = `
fn loss(${sig}) -> f64 { return sum(tanh(conv2d(x, w, b)) * r) }
fn grads(${sig}) -> (f64[2, 3, 8, 8], f64[4, 3, 1, 1], f64[4]) { return grad(loss, wrt: [x, w, b])(x, w, b, r) }`;
    checkFd(src, randomInputs(rng, { x: [2, 3, 8, 8], w: [4, 3, 1, 1], b: [4], r: [2, 4, 8, 8] }), ["x", "w", "b"]);
  });

  it("second derivatives through conv2d: d/dx and d/dw of <d loss/dx, s>", () => {
    const src = `
fn loss(${CONV_SIG}) -> f64 { return sum(tanh(${CONV}) * r) }
fn gx(${CONV_SIG}) -> f64[1, 4, 7, 6] { return grad(loss)(x, w, b, r) }
fn h(${CONV_SIG}, s: f64[1, 4, 7, 6]) -> f64 { return sum(gx(x, w, b, r) * s) }
fn grads2(${CONV_SIG}, s: f64[1, 4, 7, 6]) -> (f64[1, 4, 7, 6], f64[4, 2, 3, 2]) { return grad(h, wrt: [x, w])(x, w, b, r, s) }`;
    checkFd(src, randomInputs(rng, { x: [1, 4, 7, 6], w: [4, 2, 3, 2], b: [4], r: [1, 4, 3, 3], s: [1, 4, 7, 6] }), ["x", "w"], "h", "grads2");
  });

  for (const kind of ["max", "avg"]) {
    it(`${kind}_pool2d with kernel 3, stride 2, padding 1`, () => {
      // [2, 2, 5, 6] -> OH = floor((5 + 2 - 3) / 2) + 1 = 3, OW = floor((6 + 2 - 3) / 2) + 1 = 3.
      const src = `
fn loss(x: f64[2, 2, 5, 6], r: f64[2, 2, 3, 3]) -> f64 { return sum(${kind}_pool2d(x, 3, stride: 2, padding: 1) * r) }
fn grads(x: f64[2, 2, 5, 6], r: f64[2, 2, 3, 3]) -> f64[2, 2, 5, 6] { return grad(loss)(x, r) }`;
      checkFd(src, randomInputs(rng, { x: [2, 2, 5, 6], r: [2, 2, 3, 3] }), ["x"]);
    });
  }

  for (const shape of [[5, 3], [3, 3, 2, 2]]) {
    it(`batch_norm in training mode on [${shape}]: d/dx, d/dgamma, d/dbeta through the batch statistics`, () => {
      const t = `f64[${shape.join(", ")}]`;
      const sig = `x: ${t}, g: f64[3], b: f64[3], rm: f64[3], rv: f64[3], r: ${t}`;
      const src = `
fn loss(${sig}) -> f64 { return sum(tanh(batch_norm(x, g, b, rm, rv, eps: 0.001, training: true)) * r) }
fn grads(${sig}) -> (${t}, f64[3], f64[3]) { return grad(loss, wrt: [x, g, b])(x, g, b, rm, rv, r) }`;
      checkFd(src, randomInputs(rng, { x: shape, g: [3], b: [3], rm: [3], rv: [3], r: shape }), ["x", "g", "b"]);
    });
  }

  it("dropout in training mode: the gradient follows the mask", () => {
    // One function for value and gradient: each evaluation draws the same mask (fresh seed-0 streams of vg).
    const src = `
fn loss(x: f64[4, 5], r: f64[4, 5]) -> f64 { return sum(tanh(dropout(x, 0.4, training: true)) * r) }
fn vg(x: f64[4, 5], r: f64[4, 5]) -> (f64, f64[4, 5]) { return value_and_grad(loss)(x, r) }`;
    const inputs = randomInputs(rng, { x: [4, 5], r: [4, 5] });
    checkFd(src, inputs, ["x"], "vg", "vg");
    const g = evaluateGraph(graphOf(irOf(src), "vg"), inputs)[1].data;
    expect(g.some((v) => v === 0) && g.some((v) => v !== 0)).toBe(true);
  });
});
