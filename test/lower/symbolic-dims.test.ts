// Symbolic sizes at run time: a loop over a symbolic sequence length (`for t in 0..T, max: 8` with `x[:, t]`),
// a dimension used as a value (`sum(x) / N`), and causal attention over a symbolic length. Each is checked
// against the same computation written with the length known at compile time (an independent lowering: static
// slices, unrolled loops, constants), on wasm and in the reference, and the loop's gradient against finite
// differences.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, graphOf, irOf, runBoth, type Input } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";

const grid = (shape: number[], f: (k: number) => number) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => f(k));
const f32 = (shape: number[], f: (k: number) => number): Input => ({ dtype: "f32", shape, data: grid(shape, (k) => Math.fround(f(k))) });

const RNN = (dt: string) => `
fn rnn(x: ${dt}[B, T, 3], w: ${dt}[3, 3], u: ${dt}[3, 3]) -> ${dt}[B, 3] {
  let h = zeros([B, 3], dtype: ${dt})
  for t in 0..T, max: 8 { h = tanh(x[:, t] @ w + h @ u) }
  return h
}
fn rnn5(x: ${dt}[B, 5, 3], w: ${dt}[3, 3], u: ${dt}[3, 3]) -> ${dt}[B, 3] {
  let h = zeros([B, 3], dtype: ${dt})
  for t in 0..5 { h = tanh(reshape(slice(x, axis: 1, start: t, end: t + 1), [B, 3]) @ w + h @ u) }
  return h
}
fn loss(x: ${dt}[B, T, 3], w: ${dt}[3, 3], u: ${dt}[3, 3]) -> ${dt} { return sum(rnn(x, w, u)) }
fn g(x: ${dt}[B, T, 3], w: ${dt}[3, 3], u: ${dt}[3, 3]) -> (${dt}[3, 3], ${dt}[3, 3]) { return grad(loss, wrt: [w, u])(x, w, u) }`;

const W = f32([3, 3], (k) => Math.sin(k + 1) * 0.8);
const U = f32([3, 3], (k) => Math.cos(2 * k) * 0.5);

describe("a loop over a symbolic length", () => {
  it("for t in 0..T, max: 8 with x[:, t] equals the loop written for T = 5 (wasm and reference)", async () => {
    const ir = irOf(RNN("f32"));
    const x = f32([2, 5, 3], (k) => Math.sin(0.7 * k));
    const sym = await runBoth(ir, "rnn", { x, w: W, u: U });
    const fixed = await runBoth(ir, "rnn5", { x, w: W, u: U });
    expect(sym.ref[0]!.shape).toEqual([2, 3]);
    expect([...sym.ref[0]!.data]).toEqual([...fixed.ref[0]!.data]);
    expectClose(sym.wasm[0]!, fixed.ref[0]!, "rnn on wasm", 1e-5, 1e-6);
  });

  it("runs only T iterations: T = 1 is one step, h = tanh(x[:, 0] @ w)", async () => {
    const ir = irOf(RNN("f32"));
    const x = f32([2, 1, 3], (k) => k - 2);
    const { wasm, ref } = await runBoth(ir, "rnn", { x, w: W, u: U });
    const want = [0, 1].flatMap((b) => [0, 1, 2].map((j) => Math.tanh([0, 1, 2].reduce((s, k) => s + x.data[3 * b + k]! * W.data[3 * k + j]!, 0))));
    want.forEach((v, i) => expect(ref[0]!.data[i]!).toBeCloseTo(v, 6));
    expectClose(wasm[0]!, ref[0]!, "rnn T=1 on wasm", 1e-5, 1e-6);
  });

  it("its gradient matches finite differences (float64 reference, T = 4)", () => {
    const ir = irOf(RNN("f64"));
    const inputs = { x: { shape: [2, 4, 3], data: grid([2, 4, 3], (k) => Math.sin(0.3 * k)) }, w: { shape: [3, 3], data: [...W.data] }, u: { shape: [3, 3], data: [...U.data] } };
    const [gw, gu] = evaluateGraph(graphOf(ir, "g"), inputs);
    const f = () => evaluateGraph(graphOf(ir, "loss"), inputs)[0]!.data[0]!;
    for (const [name, got] of [["w", gw!], ["u", gu!]] as const) {
      for (let i = 0; i < 9; i++) {
        const fd = centralDifference(inputs[name].data, i, f);
        expect(Math.abs(got.data[i]! - fd), `d loss / d ${name}[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
      }
    }
  });
});

describe("dimensions as values and symbolic causal attention", () => {
  const src = `
fn mean_by_hand(x: f32[N]) -> f32 { return sum(x) / N }
fn length(x: f32[B, T]) -> i32 { let n = T
  return n * 2 }
fn att(q: f32[B, T, 3], k: f32[B, T, 3], v: f32[B, T, 3]) -> f32[B, T, 3] { return scaled_dot_product_attention(q, k, v, causal: true) }
fn att4(q: f32[B, 4, 3], k: f32[B, 4, 3], v: f32[B, 4, 3]) -> f32[B, 4, 3] { return scaled_dot_product_attention(q, k, v, causal: true) }`;
  it("sum(x) / N is the mean; a dim bound to 7 at run time reads as 7", async () => {
    const ir = irOf(src);
    const x = f32([7], (k) => k * k);
    const m = await runBoth(ir, "mean_by_hand", { x });
    expect(m.ref[0]!.data[0]).toBeCloseTo(91 / 7, 5); // 0 + 1 + 4 + ... + 36 = 91
    expectClose(m.wasm[0]!, m.ref[0]!, "mean_by_hand", 1e-6, 1e-6);
    const n = await runBoth(ir, "length", { x: f32([2, 7], (k) => k) });
    expect(Number(n.wasm[0]!.data[0])).toBe(14);
    expect(n.ref[0]!.data[0]).toBe(14);
  });
  it("causal attention with T symbolic equals the same with T = 4 known", async () => {
    const ir = irOf(src);
    const mk = (f: (z: number) => number) => f32([2, 4, 3], f);
    const inputs = { q: mk(Math.sin), k: mk(Math.cos), v: mk((z) => Math.sin(0.5 * z)) };
    const sym = await runBoth(ir, "att", inputs);
    const known = await runBoth(ir, "att4", inputs);
    expect([...sym.ref[0]!.data]).toEqual([...known.ref[0]!.data]);
    expectClose(sym.wasm[0]!, known.ref[0]!, "att on wasm", 1e-5, 1e-6);
  });
});

describe("slices of a symbolic axis (T - 1)", () => {
  const LM = (dt: string) => `
fn shifted(ids: i32[B, T], table: ${dt}[6, 4], head: ${dt}[4, 6]) -> ${dt} {
  let x = ids[:, :-1]
  let y = ids[:, 1:]
  let logits = reshape(embedding(x, table) @ head, [-1, 6])
  return cross_entropy(logits, reshape(y, [-1]))
}
fn fixed(x: i32[B, 4], y: i32[B, 4], table: ${dt}[6, 4], head: ${dt}[4, 6]) -> ${dt} {
  return cross_entropy(reshape(embedding(x, table) @ head, [B * 4, 6]), reshape(y, [B * 4]))
}
${SLICES(dt)}`;
  const SLICES = (dt: string) => `
fn middle(x: ${dt}[B, T]) -> ${dt}[B, T - 3] { return x[:, 1:-2] * 2 }
fn lm(x: ${dt}[B, T]) -> ${dt} { return sum(tanh(x[:, 1:-2]) * x[:, 2:-1]) }
fn glm(x: ${dt}[B, T]) -> ${dt}[B, T] { return grad(lm)(x) }`;
  const IDS = [3, 0, 5, 1, 1, 2, 4, 4, 0, 5];
  it("ids[:, :-1] and ids[:, 1:] as next-token pairs: the loss equals the one on pre-shifted inputs", async () => {
    const ir = irOf(LM("f32"));
    expect(graphOf(ir, "shifted").nodes.find((n) => n.op === "slice")!.type.shape).toEqual(["B", "T-1"]);
    const table = f32([6, 4], (k) => Math.sin(k)), head = f32([4, 6], (k) => Math.cos(k) * 0.5);
    const sym = await runBoth(ir, "shifted", { ids: { dtype: "i32", shape: [2, 5], data: IDS }, table, head });
    const x = [3, 0, 5, 1, 2, 4, 4, 0], y = [0, 5, 1, 1, 4, 4, 0, 5];
    const fix = await runBoth(ir, "fixed", { x: { dtype: "i32", shape: [2, 4], data: x }, y: { dtype: "i32", shape: [2, 4], data: y }, table, head });
    expect(sym.ref[0]!.data[0]).toBeCloseTo(fix.ref[0]!.data[0]!, 12);
    expectClose(sym.wasm[0]!, fix.ref[0]!, "shifted on wasm", 1e-5, 1e-6);
  });
  it("x[:, 1:-2] has T - 3 columns; too short a T is a run-time error naming the dimension", async () => {
    const ir = irOf(LM("f32"));
    const { wasm, ref } = await runBoth(ir, "middle", { x: f32([2, 6], (k) => k) });
    expect(ref[0]!.shape).toEqual([2, 3]);
    expect([...ref[0]!.data]).toEqual([2, 4, 6, 14, 16, 18]);
    expectClose(wasm[0]!, ref[0]!, "middle on wasm");
    await expect(runBoth(ir, "middle", { x: f32([2, 3], (k) => k) })).rejects.toThrow(/middle: dimension T-3 would be 0 \(T=3\)/);
  });
  it("gradients through symbolic slices (pads of a symbolic axis) match finite differences", () => {
    const ir = irOf(SLICES("f64"));
    const inputs = { x: { shape: [2, 6], data: grid([2, 6], (k) => Math.sin(1.3 * k)) } };
    const g = evaluateGraph(graphOf(ir, "glm"), inputs)[0]!;
    const f = () => evaluateGraph(graphOf(ir, "lm"), inputs)[0]!.data[0]!;
    for (let i = 0; i < 12; i++) {
      const fd = centralDifference(inputs.x.data, i, f);
      expect(Math.abs(g.data[i]! - fd), `d lm / d x[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
    }
  });
});

describe("conv2d and pooling over symbolic H and W at stride 1", () => {
  const CONV = (dt: string) => `
fn conv(x: ${dt}[N, 2, H, W], w: ${dt}[3, 2, 3, 3], b: ${dt}[3]) -> ${dt}[N, 3, H, W] { return relu(conv2d(x, w, b, padding: 1)) }
fn conv57(x: ${dt}[N, 2, 5, 7], w: ${dt}[3, 2, 3, 3], b: ${dt}[3]) -> ${dt}[N, 3, 5, 7] { return relu(conv2d(x, w, b, padding: 1)) }
fn dil(x: ${dt}[N, 2, H, W], w: ${dt}[3, 2, 3, 3]) -> ${dt}[N, 3, H - 4, W - 4] { return conv2d(x, w, dilation: 2) }
fn pool(x: ${dt}[N, 2, H, W]) -> ${dt}[N, 2, H - 1, W - 1] { return max_pool2d(x, 2, stride: 1) }
fn loss(x: ${dt}[N, 2, H, W], w: ${dt}[3, 2, 3, 3], b: ${dt}[3]) -> ${dt} { return sum(tanh(conv2d(x, w, b, padding: 1, dilation: [1, 2]))) + sum(avg_pool2d(x, 3, stride: 1, padding: 1)) }
fn g(x: ${dt}[N, 2, H, W], w: ${dt}[3, 2, 3, 3], b: ${dt}[3]) -> (${dt}[N, 2, H, W], ${dt}[3, 2, 3, 3]) { return grad(loss, wrt: [x, w])(x, w, b) }`;
  const x = f32([1, 2, 5, 7], (k) => Math.sin(0.37 * k)), w = f32([3, 2, 3, 3], (k) => Math.cos(k) * 0.3), b = f32([3], (k) => k - 1);
  it("a padded 3x3 conv with H, W symbolic equals the same conv on a known 5x7 input", async () => {
    const ir = irOf(CONV("f32"));
    const sym = await runBoth(ir, "conv", { x, w, b });
    const fixed = await runBoth(ir, "conv57", { x, w, b });
    expect(sym.ref[0]!.shape).toEqual([1, 3, 5, 7]);
    expect([...sym.ref[0]!.data]).toEqual([...fixed.ref[0]!.data]);
    expectClose(sym.wasm[0]!, fixed.ref[0]!, "conv on wasm", 1e-5, 1e-6);
    for (const fn of ["dil", "pool"]) {
      const r = await runBoth(ir, fn, fn === "dil" ? { x, w } : { x });
      expect(r.ref[0]!.shape).toEqual(fn === "dil" ? [1, 3, 1, 3] : [1, 2, 4, 6]);
      expectClose(r.wasm[0]!, r.ref[0]!, `${fn} on wasm`, 1e-5, 1e-6);
    }
  });
  it("gradients through the symbolic-size window and pads match finite differences", () => {
    const ir = irOf(CONV("f64"));
    const inputs = { x: { shape: [1, 2, 4, 5], data: grid([1, 2, 4, 5], (k) => Math.sin(0.7 * k)) }, w: { shape: [3, 2, 3, 3], data: [...w.data] }, b: { shape: [3], data: [...b.data] } };
    const [gx, gw] = evaluateGraph(graphOf(ir, "g"), inputs);
    const f = () => evaluateGraph(graphOf(ir, "loss"), inputs)[0]!.data[0]!;
    for (const [name, got] of [["x", gx!], ["w", gw!]] as const) {
      for (let i = 0; i < inputs[name].data.length; i += 3) {
        const fd = centralDifference(inputs[name].data, i, f);
        expect(Math.abs(got.data[i]! - fd), `d loss / d ${name}[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
      }
    }
  });
  it("a kernel that cannot fit a symbolic size is still K410 (other strides and ceil_mode: test/lower/symbolic-strided.test.ts)", () => {
    const r = irOrDiags("fn f(x: f32[N, 2, H, 1]) -> f32[N, 2, P, Q] {\n  return max_pool2d(x, 2)\n}");
    expect(r).toEqual([["K410", 2, 10]]);
  });
});

function irOrDiags(src: string) {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir).toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}
