// The layers of issue 16 (group/instance norm, batch_norm on [N, C, L], pooling's ceil_mode and
// count_include_pad, adaptive and global average pooling, conv1d, conv_transpose2d, lstm/gru cells) end to end:
// outputs and input gradients on wasm (fused and unfused) and in the float64 reference against PyTorch's numbers from
// test/ops/torch-layer-goldens.json (written by scripts/torch-layer-goldens.py); plus their diagnostics.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { irOf, runBoth } from "../helpers/backend.js";
import { LAYER_GOLDENS, layerInputs, layerProgram } from "../helpers/layer-goldens.js";

function close(got: ArrayLike<number>, want: number[], what: string, rtol: number, atol: number): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  want.forEach((v, i) => {
    const g = Number(got[i]);
    if (!(Math.abs(g - v) <= atol + rtol * Math.abs(v))) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

describe("layers against PyTorch (outputs and gradients, wasm and reference)", () => {
  for (const c of LAYER_GOLDENS) {
    it(`${c.name}: ${c.expr}`, async () => {
      for (const skip of [[], ["fusion"]]) {
        const tag = skip.length ? "unfused" : "fused";
        const src = layerProgram(c);
        const r = compileToIR(src, "t.kiln", [], skip);
        if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "t.kiln": src }));
        const fwd = await runBoth(r.ir, "fwd", layerInputs(c));
        c.outs.forEach((o, k) => {
          expect(fwd.ref[k].shape, `${c.name} output ${k} shape`).toEqual(o.shape);
          expect(fwd.wasm[k].shape, `${c.name} wasm output ${k} shape`).toEqual(o.shape);
          close(fwd.ref[k].data, o.y, `${c.name} reference output ${k}`, 1e-9, 1e-9);
          close(fwd.wasm[k].data, o.y, `${c.name} wasm ${tag} output ${k}`, 1e-5, 1e-5);
        });
        const bwd = await runBoth(r.ir, "grads", layerInputs(c, "f32", true));
        c.wrt.forEach((name, k) => {
          close(bwd.ref[k].data, c.grads[name], `${c.name} reference d/d${name}`, 1e-9, 1e-9);
          close(bwd.wasm[k].data, c.grads[name], `${c.name} wasm ${tag} d/d${name}`, 1e-4, 1e-5);
        });
      }
    });
  }
});

interface SequenceGolden { kind: "gru" | "lstm"; inputs: Record<string, { shape: number[]; data: number[] }>; y: number[]; r: number[]; grads: Record<string, number[]> }
const SEQUENCES = (JSON.parse(readFileSync(new URL("./torch-layer-goldens.json", import.meta.url), "utf8")) as { sequences: SequenceGolden[] }).sequences;

describe("cells in a loop over a symbolic T against torch.nn.GRU / nn.LSTM (last hidden state and gradients)", () => {
  for (const q of SEQUENCES) {
    it(`${q.kind}: T = ${q.inputs.xs.shape[0]}`, async () => {
      const G = q.kind === "gru" ? 3 : 4;
      const sig = `xs: f32[T, B, 3], wi: f32[${G * 4}, 3], wh: f32[${G * 4}, 4], bi: f32[${G * 4}], bh: f32[${G * 4}]`;
      const step = q.kind === "gru"
        ? "h = gru_cell(xs[t], h, wi, wh, bi, bh)"
        : "let h2, c2 = lstm_cell(xs[t], h, c, wi, wh, bi, bh)\n    h = h2\n    c = c2";
      const src = `fn last(${sig}) -> f32[B, 4] {
  let h = zeros([B, 4])
  let c = zeros([B, 4])
  for t in 0..T, max: 8 {
    ${step}
  }
  return h
}
fn loss(${sig}, r: f32[B, 4]) -> f32 { return sum(last(xs, wi, wh, bi, bh) * r) }
fn grads(${sig}, r: f32[B, 4]) -> (f32[T, B, 3], f32[${G * 4}, 3], f32[${G * 4}, 4], f32[${G * 4}], f32[${G * 4}]) {
  return grad(loss, wrt: [xs, wi, wh, bi, bh])(xs, wi, wh, bi, bh, r)
}`;
      const ir = irOf(src);
      const inputs = Object.fromEntries(Object.entries(q.inputs).map(([k, v]) => [k, { dtype: "f32" as const, shape: v.shape, data: v.data }]));
      const fwd = await runBoth(ir, "last", inputs);
      close(fwd.ref[0].data, q.y, `${q.kind} reference h_T`, 1e-9, 1e-9);
      close(fwd.wasm[0].data, q.y, `${q.kind} wasm h_T`, 1e-5, 1e-5);
      const bwd = await runBoth(ir, "grads", { ...inputs, r: { dtype: "f32", shape: [2, 4], data: q.r } });
      ["xs", "wi", "wh", "bi", "bh"].forEach((k, i) => {
        close(bwd.ref[i].data, q.grads[k], `${q.kind} reference d/d${k}`, 1e-9, 1e-9);
        close(bwd.wasm[i].data, q.grads[k], `${q.kind} wasm d/d${k}`, 1e-4, 1e-5);
      });
    });
  }
});

describe("layer diagnostics", () => {
  const diag = (body: string, params: string) => {
    const r = compileToIR(`fn f(${params}) {\n  return ${body}\n}`, "bad.kiln");
    expect(r.ir, body).toBeUndefined();
    return r.diagnostics.map((d) => ({ code: d.code, message: d.message, col: d.span.col }));
  };
  it("group_norm: groups that do not divide C, bad gamma, eps, rank", () => {
    const p = "x: f32[2, 6, 4, 4], g: f32[6], v: f32[4]";
    expect(diag("group_norm(x, 4, g, g)", p)[0]).toEqual({ code: "K409", message: "group_norm: 6 channels do not split into 4 groups", col: 24 });
    expect(diag("group_norm(x, 0)", p)[0]).toMatchObject({ code: "K410", message: "group_norm groups must be at least 1, got 0" });
    expect(diag("group_norm(x, 3, v)", p)[0]).toMatchObject({ code: "K409", message: "gamma must have shape [6], got f32[4]" });
    expect(diag("group_norm(x, 3, eps: 0)", p)[0]).toMatchObject({ code: "K411", message: "group_norm eps must be > 0, got 0" });
    expect(diag("group_norm(x, 1)", "x: f32[6]")[0]).toMatchObject({ code: "K409", message: "group_norm needs x [N, C], got f32[6]" });
    expect(diag("group_norm(x, n)", "x: f32[2, 6, 3], n: i32")[0].code).toBe("K304");
  });
  it("instance_norm: rank, one spatial element, dtype", () => {
    expect(diag("instance_norm(x)", "x: f32[2, 6]")[0]).toMatchObject({ code: "K409", message: "instance_norm needs x [N, C, ...] with at least one spatial axis, got f32[2, 6]" });
    expect(diag("instance_norm(x)", "x: f32[2, 6, 1, 1]")[0]).toMatchObject({ code: "K409", message: "instance_norm needs more than one spatial element per channel, got f32[2, 6, 1, 1]" });
    expect(diag("instance_norm(x)", "x: i32[2, 6, 3]")[0].code).toBe("K301");
  });
  it("pooling: a kernel that does not fit, bad flags; adaptive pooling's sizes", () => {
    expect(diag("avg_pool2d(x, 5, ceil_mode: true)", "x: f32[1, 2, 4, 8]")[0]).toMatchObject({ code: "K410", message: "avg_pool2d: the 5x5 kernel does not fit the 4x8 input with padding 0x0" });
    expect(diag("avg_pool2d(x, 2, count_include_pad: 1)", "x: f32[1, 2, 4, 8]")[0].code).toBe("K304");
    expect(diag("max_pool2d(x, 2, count_include_pad: false)", "x: f32[1, 2, 4, 8]")[0]).toMatchObject({ code: "K205", message: "max_pool2d has no parameter 'count_include_pad'" });
    expect(diag("adaptive_avg_pool2d(x, [2, 2])", "x: f32[1, 2, H, 8]")[0]).toMatchObject({ code: "K409", message: "adaptive_avg_pool2d to [2, 2] needs known H and W, got f32[1, 2, H, 8]" });
    expect(diag("adaptive_avg_pool2d(x, [0, 2])", "x: f32[1, 2, 4, 8]")[0]).toMatchObject({ code: "K410", message: "output_size must be at least 1, got [0, 2]" });
    expect(diag("global_avg_pool2d(x)", "x: f32[2, 8]")[0].code).toBe("K409");
  });
  it("conv1d: rank, channels, groups, a kernel that does not fit, bias; a stride over a symbolic length compiles", () => {
    const p = "x: f32[2, 4, 9], w: f32[6, 4, 3], v: f32[6, 2, 3], b: f32[4]";
    expect(diag("conv1d(x, v)", p)[0]).toMatchObject({ code: "K409", message: "conv1d: w [6, 2, 3] expects 2 input channels per group, x has 4 channels" });
    expect(diag("conv1d(x, v, groups: 3)", p)[0]).toMatchObject({ code: "K409", message: "conv1d with groups: 3 needs input channels (4) and output channels (6) divisible by 3" });
    expect(diag("conv1d(x, w, dilation: 5)", p)[0]).toMatchObject({ code: "K410", message: "conv1d: the kernel of 3 (dilation 5) does not fit the length 9 with padding 0" });
    expect(diag("conv1d(x, w, stride: 0)", p)[0]).toMatchObject({ code: "K410", message: "stride must be at least 1, got 0" });
    expect(diag("conv1d(x, w, b)", p)[0]).toMatchObject({ code: "K409", message: "b must have shape [6], got f32[4]" });
    expect(diag("conv1d(x, w)", "x: f32[2, 4, 9, 9], w: f32[6, 4, 3]")[0]).toMatchObject({ code: "K409", message: "conv1d needs x [N, C, L], got f32[2, 4, 9, 9]" });
    expect(diag("conv1d(x, w)", "x: f32[2, 4, 9], w: f32[6, 4, 3, 3]")[0]).toMatchObject({ code: "K409", message: "conv1d needs w [O, C / groups, K] with known sizes, got f32[6, 4, 3, 3]" });
    // A stride over a symbolic length is fine since floor-division dims (test/lower/symbolic-strided.test.ts).
    expect(compileToIR("fn f(x: f32[2, 4, L], w: f32[6, 4, 3]) -> f32[2, 6, (L - 3) / 2 + 1] {\n  return conv1d(x, w, stride: 2)\n}", "ok.kiln").diagnostics).toEqual([]);
  });
  it("conv_transpose2d: channels, output_padding, symbolic sizes, an empty output", () => {
    const p = "x: f32[1, 3, 4, 4], w: f32[3, 2, 3, 3], v: f32[2, 3, 3, 3]";
    expect(diag("conv_transpose2d(x, v)", p)[0]).toMatchObject({ code: "K409", message: "conv_transpose2d: w [2, 3, 3, 3] expects 2 input channels, x has 3" });
    expect(diag("conv_transpose2d(x, w, stride: 2, output_padding: 2)", p)[0]).toMatchObject({ code: "K410", message: "conv_transpose2d: output_padding [2, 2] must be smaller than stride [2, 2] or dilation [1, 1]" });
    expect(diag("conv_transpose2d(x, w, groups: 2)", p)[0]).toMatchObject({ code: "K409", message: "conv_transpose2d with groups: 2 needs input channels (3) divisible by 2" });
    expect(diag("conv_transpose2d(x, w, padding: 5)", p)[0]).toMatchObject({ code: "K410", message: "conv_transpose2d: padding [5, 5] leaves an empty output (-4x-4)" });
    expect(diag("conv_transpose2d(x, w)", "x: f32[1, 3, H, 4], w: f32[3, 2, 3, 3]")[0]).toMatchObject({ code: "K409", message: "conv_transpose2d needs known C, H and W, got f32[1, 3, H, 4]" });
  });
  it("conv1d over a symbolic batch and length: [N, 1, L] with the kernel [1, 2] is a difference of neighbours", async () => {
    const ir = irOf("fn f(x: f32[N, 1, L], w: f32[1, 1, 2]) -> f32[N, 1, L-1] { return conv1d(x, w) }");
    const { wasm, ref } = await runBoth(ir, "f", { x: { dtype: "f32", shape: [2, 1, 4], data: [1, 2, 4, 8, 0, 1, 0, 1] }, w: { dtype: "f32", shape: [1, 1, 2], data: [-1, 1] } });
    expect(wasm[0].shape).toEqual([2, 1, 3]);
    expect([...wasm[0].data]).toEqual([1, 2, 4, 1, -1, 1]);
    expect([...ref[0].data]).toEqual([1, 2, 4, 1, -1, 1]);
  });
  it("lstm_cell / gru_cell: shapes of h, c, weights and biases; rank of x", () => {
    const p = "x: f32[B, 3], h: f32[B, 2], c: f32[B, 2], wi: f32[8, 3], wh: f32[8, 2], b: f32[8], g: f32[6, 3], gh: f32[6, 2], h3: f32[B, 3]";
    expect(diag("lstm_cell(x, h, c, g, wh)", p)[0]).toMatchObject({ code: "K409", message: "w_ih must have shape [8, 3], got f32[6, 3]" });
    expect(diag("gru_cell(x, h, wi, gh)", p)[0]).toMatchObject({ code: "K409", message: "w_ih must have shape [6, 3], got f32[8, 3]" });
    expect(diag("lstm_cell(x, h, h3, wi, wh)", p)[0]).toMatchObject({ code: "K409", message: "c must have shape [B, 2], got f32[B, 3]" });
    expect(diag("lstm_cell(x, h, c, wi, wh, g)", p)[0]).toMatchObject({ code: "K409", message: "b_ih must have shape [8], got f32[6, 3]" });
    expect(diag("gru_cell(x, h, g, gh, b_hh: b)", p)[0]).toMatchObject({ code: "K409", message: "b_hh must have shape [6], got f32[8]" });
    expect(diag("gru_cell(b, h, g, gh)", p)[0]).toMatchObject({ code: "K409", message: "gru_cell needs x [B, input_size] with a known input size, got f32[8]" });
    expect(diag("lstm_cell(x, h, c, wi, wh)", "x: f32[4, 3], h: f32[5, 2], c: f32[5, 2], wi: f32[8, 3], wh: f32[8, 2]")[0]).toMatchObject({ code: "K409", message: "h must have shape [4, 2], got f32[5, 2]" });
  });
  it("lstm_cell over a symbolic batch: (h', c') of [B, H]; with zero weights c' = c / 2 and h' = tanh(c') / 2", async () => {
    const ir = irOf(`fn f(x: f32[B, 3], h: f32[B, 2], c: f32[B, 2], wi: f32[8, 3], wh: f32[8, 2]) -> f32[B, 2] {
  let h2, c2 = lstm_cell(x, h, c, wi, wh)
  return h2 + c2
}`);
    // Zero weights: every gate is sigmoid(0) = 1/2 and g = tanh(0) = 0, so c' = c / 2, h' = tanh(c / 2) / 2.
    const z = (n: number) => Array<number>(n).fill(0);
    const c = [1, -2, 0.5, 4];
    const { wasm, ref } = await runBoth(ir, "f", { x: { dtype: "f32", shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, h: { dtype: "f32", shape: [2, 2], data: [1, 1, 1, 1] }, c: { dtype: "f32", shape: [2, 2], data: c }, wi: { dtype: "f32", shape: [8, 3], data: z(24) }, wh: { dtype: "f32", shape: [8, 2], data: z(16) } });
    const want = c.map((v) => Math.tanh(v / 2) / 2 + v / 2);
    expect(wasm[0].shape).toEqual([2, 2]);
    want.forEach((v, i) => {
      expect(ref[0].data[i]).toBeCloseTo(v, 12);
      expect(Number(wasm[0].data[i])).toBeCloseTo(v, 6);
    });
  });
  it("avg_pool2d over symbolic H and W: count_include_pad false divides by the real elements (a ones image stays 1)", async () => {
    const ir = irOf(`fn f(x: f32[N, 1, H, W]) -> f32[N, 1, H, W] { return avg_pool2d(x, 3, stride: 1, padding: 1, count_include_pad: false) }
fn g(x: f32[N, 1, H, W]) -> f32[N, 1, H, W] { return avg_pool2d(x, 3, stride: 1, padding: 1) }`);
    const x = { dtype: "f32" as const, shape: [1, 1, 3, 4], data: Array<number>(12).fill(1) };
    const excl = await runBoth(ir, "f", { x });
    expect([...excl.wasm[0].data]).toEqual(Array(12).fill(1));
    expect([...excl.ref[0].data]).toEqual(Array(12).fill(1));
    // Counting the padding: a corner window holds 4 of 9 ones, an edge one 6, an inner one 9.
    const incl = await runBoth(ir, "g", { x });
    const want = [4, 6, 6, 4, 6, 9, 9, 6, 4, 6, 6, 4].map((v) => v / 9);
    want.forEach((v, i) => {
      expect(incl.ref[0].data[i]).toBeCloseTo(v, 12);
      expect(Number(incl.wasm[0].data[i])).toBeCloseTo(v, 6);
    });
  });
  it("group_norm and instance_norm over symbolic N, H and W give PyTorch's numbers", async () => {
    for (const name of ["group_norm_4d", "instance_norm_4d"]) {
      const c = LAYER_GOLDENS.find((g) => g.name === name)!;
      const C = c.inputs.x.shape[1];
      const ir = irOf(`fn f(x: f32[N, ${C}, H, W], g: f32[${C}], b: f32[${C}]) { return ${c.expr} }`);
      const { wasm, ref } = await runBoth(ir, "f", layerInputs(c));
      close(ref[0].data, c.outs[0].y, `${name} reference`, 1e-9, 1e-9);
      close(wasm[0].data, c.outs[0].y, `${name} wasm`, 1e-5, 1e-5);
    }
  });
  it("global pooling works on symbolic sizes", async () => {
    const ir = irOf("fn f(x: f32[N, 2, H, W]) -> f32[N, 2, 1, 1] { return adaptive_avg_pool2d(x, 1) }\nfn g(x: f32[N, 2, H, W]) -> f32[N, 2] { return global_avg_pool2d(x) }");
    // Channel 0 is 1..6 (mean 3.5), channel 1 is 10 everywhere.
    const x = { dtype: "f32" as const, shape: [1, 2, 2, 3], data: [1, 2, 3, 4, 5, 6, 10, 10, 10, 10, 10, 10] };
    for (const fn of ["f", "g"]) {
      const { wasm, ref } = await runBoth(ir, fn, { x });
      expect([...wasm[0].data]).toEqual([3.5, 10]);
      expect([...ref[0].data]).toEqual([3.5, 10]);
    }
  });
});
