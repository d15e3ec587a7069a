// Submodules: a model containing other models (`first: Lin`) and arrays of them (`blocks: Lin[2]`, called in a
// loop), with path-named params (Net.blocks.0.w). The nested forward equals the same network written flat with
// its weights as inputs; a train step's gradients for every nested param match finite differences (float64
// reference); wasm matches the reference; and bad submodule declarations and uses get their diagnostics.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { referenceParams } from "../../compiler/cli/run.js";
import { expectClose, graphOf, irOf, runBoth } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";

const NET = (dt: string) => `
model Lin {
  param w: ${dt}[3, 3] = xavier()
  param b: ${dt}[3] = normal(std: 0.5)
  fn forward(x: ${dt}[N, 3]) -> ${dt}[N, 3] { return tanh(x @ w + b) }
}
model Pair {
  inner: Lin
  param s: ${dt}[3] = normal(std: 1.0)
  fn forward(x: ${dt}[N, 3]) -> ${dt}[N, 3] { return inner.forward(x) * s }
}
model Net {
  first: Lin
  blocks: Pair[2]
  fn forward(x: ${dt}[N, 3]) -> ${dt}[N, 3] {
    let h = first.forward(x)
    for i in 0..2 { h = blocks[i].forward(h) + h }
    return h
  }
  fn loss(x: ${dt}[N, 3], r: ${dt}[N, 3]) -> ${dt} { return sum(forward(x) * r) }
}
train Step { model: Net, loss: loss, optimizer: sgd(lr: 1.0) }
fn flat(x: ${dt}[N, 3], w0: ${dt}[3, 3], b0: ${dt}[3], w1: ${dt}[3, 3], b1: ${dt}[3], s1: ${dt}[3], w2: ${dt}[3, 3], b2: ${dt}[3], s2: ${dt}[3]) -> ${dt}[N, 3] {
  let h = tanh(x @ w0 + b0)
  h = tanh(h @ w1 + b1) * s1 + h
  return tanh(h @ w2 + b2) * s2 + h
}`;

const X = { shape: [2, 3], data: [0.5, -1, 2, 0.25, 0.75, -0.5] };
const R = { shape: [2, 3], data: [1, -2, 0.5, 3, 1, -1] };

describe("submodules", () => {
  it("params are named by path and belong to the outer model; inner models are not exported on their own", () => {
    const ir = irOf(NET("f32"));
    expect(ir.params.filter((p) => !p.role).map((p) => `${p.name} (${p.model})`)).toEqual([
      "Net.first.w (Net)", "Net.first.b (Net)",
      "Net.blocks.0.s (Net)", "Net.blocks.0.inner.w (Net)", "Net.blocks.0.inner.b (Net)",
      "Net.blocks.1.s (Net)", "Net.blocks.1.inner.w (Net)", "Net.blocks.1.inner.b (Net)",
    ]);
    expect(ir.functions.map((g) => g.name)).toEqual(["Net.forward", "Net.loss", "Step.step", "flat"]);
  });

  it("the nested forward equals the network written flat with the same weights", () => {
    const ir = irOf(NET("f64"));
    const p = referenceParams(ir, 3);
    const nested = evaluateGraph(graphOf(ir, "Net.forward"), { x: X }, p)[0]!;
    const names = { w0: "Net.first.w", b0: "Net.first.b", w1: "Net.blocks.0.inner.w", b1: "Net.blocks.0.inner.b", s1: "Net.blocks.0.s", w2: "Net.blocks.1.inner.w", b2: "Net.blocks.1.inner.b", s2: "Net.blocks.1.s" };
    const inputs = Object.fromEntries(Object.entries(names).map(([k, q]) => [k, { data: p[q]! }]));
    const flat = evaluateGraph(graphOf(ir, "flat"), { x: X, ...inputs }, p)[0]!;
    expect([...nested.data]).toEqual([...flat.data]);
    // The blocks really differ (distinct params), or the test above could not tell instances apart.
    expect([...p["Net.blocks.0.inner.w"]!]).not.toEqual([...p["Net.blocks.1.inner.w"]!]);
  });

  it("a train step's gradient for every nested param matches finite differences of the loss (sgd lr 1: w - w')", () => {
    const ir = irOf(NET("f64"));
    const params = referenceParams(ir, 5);
    const step = graphOf(ir, "Step.step");
    const updates = evaluateGraph({ ...step, outputs: step.updates!.map((u) => ({ name: u.param, node: u.node })) }, { x: X, r: R }, params);
    const loss = graphOf(ir, "Net.loss");
    const f = () => evaluateGraph(loss, { x: X, r: R }, params)[0]!.data[0]!;
    step.updates!.forEach((u, k) => {
      const w = params[u.param]!;
      for (let i = 0; i < w.length; i++) {
        const g = w[i]! - updates[k]!.data[i]!;
        const fd = centralDifference(w, i, f);
        expect(Math.abs(g - fd), `d loss / d ${u.param}[${i}]: ${g} vs FD ${fd}`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
      }
    });
    expect(step.updates!.length).toBe(8);
  });

  it("wasm runs the nested model and its train step like the reference", async () => {
    const ir = irOf(NET("f32"));
    const x = { dtype: "f32" as const, ...X }, r = { dtype: "f32" as const, ...R };
    const { wasm, ref } = await runBoth(ir, "Net.forward", { x });
    expectClose(wasm[0]!, ref[0]!, "Net.forward", 1e-5, 1e-6);
    const s = await runBoth(ir, "Step.step", { x, r });
    expectClose(s.wasm[0]!, s.ref[0]!, "Step.step loss", 1e-5, 1e-6);
  });
});

function diags(src: string) {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir).toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}

describe("submodule diagnostics", () => {
  const LIN = "model Lin {\n  param w: f32[3, 3] = zeros()\n  fn forward(x: f32[3]) -> f32[3] { return x @ w }\n}\n";
  const cases: [string, string, [string, number, number][]][] = [
    ["unknown model", "model M {\n  a: Linn\n  fn f(x: f32[3]) -> f32[3] { return x }\n}", [["K201", 2, 6]]],
    ["bad count", LIN + "model M {\n  a: Lin[0]\n  fn f(x: f32[3]) -> f32[3] { return x }\n}", [["K409", 6, 6]]],
    ["a model inside itself", "model M {\n  a: M\n  fn f(x: f32[3]) -> f32[3] { return x }\n}", [["K210", 2, 3]]],
    ["index out of range", LIN + "model M {\n  a: Lin[2]\n  fn f(x: f32[3]) -> f32[3] { return a[2].forward(x) }\n}", [["K407", 7, 40]]],
    ["run-time index", LIN + "model M {\n  a: Lin[2]\n  fn f(x: f32[3], i: i32) -> f32[3] { return a[i].forward(x) }\n}", [["K304", 7, 48]]],
    ["array without an index", LIN + "model M {\n  a: Lin[2]\n  fn f(x: f32[3]) -> f32[3] { return a.forward(x) }\n}", [["K501", 7, 38]]],
    ["unknown method", LIN + "model M {\n  a: Lin\n  fn f(x: f32[3]) -> f32[3] { return a.forwrd(x) }\n}", [["K203", 7, 40]]],
    ["a submodule as a value", LIN + "model M {\n  a: Lin\n  fn f(x: f32[3]) -> f32[3] { return x + a }\n}", [["K301", 7, 42]]],
    ["method of a tensor", "fn f(x: f32[3]) -> f32[3] {\n  return x.forward(x)\n}", [["K501", 2, 10]]],
  ];
  for (const [name, src, want] of cases) it(name, () => expect(diags(src)).toEqual(want));
});
