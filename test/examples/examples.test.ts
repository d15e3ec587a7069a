// The dsl-examples, compiled and run on the wasm backend and on the float64 reference interpreter, checked
// against golden numbers that come from outside Kiln (hand derivations and well-known published values; the
// source of each number is given next to it).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { expectClose, irOf, runBoth } from "../helpers/backend.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import type { IRModule } from "../../compiler/ir/graph.js";

const load = (name: string) => irOf(readFileSync(`dsl-examples/${name}.kiln`, "utf8"), `dsl-examples/${name}.kiln`);
const f32 = (shape: number[], data: number[]) => ({ dtype: "f32" as const, shape, data });

/** Both backends agree with each other and with `golden` (abs/rel tolerance suited to f32). */
async function check(ir: IRModule, fn: string, inputs: Record<string, ReturnType<typeof f32>>, golden: number[], tol = 1e-6) {
  const { wasm, ref } = await runBoth(ir, fn, inputs);
  expectClose(wasm[0], ref[0], `${fn} wasm vs reference`, 1e-5, 1e-6);
  ref[0].data.forEach((v, i) => expect(Math.abs(v - golden[i]), `${fn} reference[${i}] = ${v} vs golden ${golden[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(golden[i]))));
  Array.from(wasm[0].data as Float32Array).forEach((v, i) => expect(Math.abs(v - golden[i]), `${fn} wasm[${i}]`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(golden[i]))));
  return { wasm, ref };
}

describe("autograd.kiln", () => {
  const ir = load("autograd");
  // Hand derivation: f(2) = 2^2 + 3*2 + 1 = 11; f(-1) = 1 - 3 + 1 = -1; f(0.5) = 0.25 + 1.5 + 1 = 2.75.
  it("f(2) = 11", () => check(ir, "f", { x: f32([], [2]) }, [11]));
  it("f_vec at [2, -1, 0.5] = [11, -1, 2.75]", () => check(ir, "f_vec", { x: f32([3], [2, -1, 0.5]) }, [11, -1, 2.75]));
});

describe("broadcast.kiln", () => {
  const ir = load("broadcast");
  // Hand derivation: [[1],[2]] + [10, 20, 30] = [[11, 21, 31], [12, 22, 32]].
  it("outer_sum", () => check(ir, "outer_sum", { col: f32([2, 1], [1, 2]), row: f32([3], [10, 20, 30]) }, [11, 21, 31, 12, 22, 32]));
  // Hand derivation: columns [1,3] and [2,6]: means 2 and 4, population variances 1 and 4, so the
  // standardised values are ±1/sqrt(1+1e-5) and ±2/sqrt(4+1e-5).
  it("standardize", () => {
    const a = 1 / Math.sqrt(1 + 1e-5), b = 2 / Math.sqrt(4 + 1e-5);
    return check(ir, "standardize", { x: f32([2, 2], [1, 2, 3, 6]) }, [-a, -b, a, b]);
  });
  // Hand derivation: [[1,2,3],[4,5,6]] * 2 + [0.5, 0, -1] = [[2.5, 4, 5], [8.5, 10, 11]].
  it("scale_and_shift (scalar input)", () =>
    check(ir, "scale_and_shift", { x: f32([2, 3], [1, 2, 3, 4, 5, 6]), scale: f32([], [2]), shift: f32([3], [0.5, 0, -1]) }, [2.5, 4, 5, 8.5, 10, 11]));
});

describe("attention.kiln", () => {
  const ir = load("attention");
  it("with identical keys the weights are uniform, so the output is the mean of the value rows", async () => {
    // Hand derivation: every score in a row is equal, softmax gives 1/S each, output row = mean over S of v.
    const T = 3, S = 4, D = 16;
    const q = Array.from({ length: T * D }, (_, i) => Math.sin(i));
    const k = Array.from({ length: S * D }, (_, i) => (i % D) * 0.1);
    const v = Array.from({ length: S * D }, (_, i) => i);
    const mean = Array.from({ length: D }, (_, d) => (d + (D + d) + (2 * D + d) + (3 * D + d)) / 4);
    const golden = Array.from({ length: T }, () => mean).flat();
    await check(ir, "attention", { q: f32([1, T, D], q), k: f32([1, S, D], k), v: f32([1, S, D], v) }, golden, 1e-9);
  });
  it("softmax weights match numpy's softmax([1, 2, 3]) = [0.09003057, 0.24472847, 0.66524096]", async () => {
    // With d = 16 the scores are q·k / 4; choosing q·k = [4, 8, 12] gives scores [1, 2, 3]. v = identity rows
    // (first 3 dims) makes the output the weights themselves. Golden values: numpy.exp(x)/numpy.exp(x).sum().
    const D = 16;
    const q = [1, ...Array(D - 1).fill(0)];
    const k = [4, 8, 12].flatMap((s) => [s, ...Array(D - 1).fill(0)]);
    const v = [0, 1, 2].flatMap((r) => Array.from({ length: D }, (_, d) => (d === r ? 1 : 0)));
    const { wasm } = await runBoth(ir, "attention", { q: f32([1, 1, D], q), k: f32([1, 3, D], k), v: f32([1, 3, D], v) });
    const got = Array.from(wasm[0].data as Float32Array).slice(0, 3);
    [0.09003057, 0.24472847, 0.66524096].forEach((g, i) => expect(Math.abs(got[i] - g)).toBeLessThan(1e-6));
  });
  it("SelfAttention.forward runs with learned params on both backends", async () => {
    const x = Array.from({ length: 5 * 32 }, (_, i) => Math.cos(i * 0.37));
    const { wasm, ref } = await runBoth(ir, "SelfAttention.forward", { x: f32([5, 32], x) }, { seed: 3 });
    expect(wasm[0].shape).toEqual([5, 16]);
    expectClose(wasm[0], ref[0], "SelfAttention.forward", 1e-5, 1e-6);
  });
});

describe("mlp.kiln", () => {
  const ir = load("mlp");
  it("forward, predict and loss agree with the reference at batch 4 (seeded params)", async () => {
    const x = Array.from({ length: 4 * 784 }, (_, i) => ((i * 37) % 101) / 101);
    for (const fn of ["MLP.forward", "MLP.predict"]) {
      const { wasm, ref } = await runBoth(ir, fn, { x: f32([4, 784], x) }, { seed: 1 });
      expect(wasm[0].shape).toEqual([4, 10]);
      expectClose(wasm[0], ref[0], fn, 1e-5, 1e-5);
    }
    const labels = { dtype: "i32" as const, shape: [4], data: [3, 1, 4, 1] };
    const { wasm, ref } = await runBoth(ir, "MLP.loss", { x: f32([4, 784], x), labels }, { seed: 1 });
    expectClose(wasm[0], ref[0], "MLP.loss", 1e-5, 1e-5);
  });
  it("predict rows are probability distributions", async () => {
    const x = Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i));
    const { wasm } = await runBoth(ir, "MLP.predict", { x: f32([2, 784], x) }, { seed: 5 });
    const p = wasm[0].data as Float32Array;
    for (let r = 0; r < 2; r++) expect(Math.abs(p.slice(r * 10, r * 10 + 10).reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-6);
  });
  it("cross_entropy matches the published value for logits [2, 1, 0.1] with label 0", () => {
    // softmax([2, 1, 0.1]) = [0.65900114, 0.24243297, 0.09856589] (the standard textbook example);
    // -log(0.65900114) = 0.41703002.
    const src = "fn ce(z: f32[N, 3], y: i32[N]) -> f32 { return cross_entropy(z, y) }";
    const g = irOf(src).functions[0];
    const out = evaluateGraph(g, { z: { data: [2, 1, 0.1], shape: [1, 3] }, y: { data: [0], shape: [1] } });
    expect(out[0].data[0]).toBeCloseTo(0.41703002, 7);
  });
  it("layer_norm of [1, 2, 3, 4] (eps 0) is [-1.3416408, -0.4472136, 0.4472136, 1.3416408]", async () => {
    // Hand derivation: mean 2.5, biased variance 1.25, (x - 2.5) / sqrt(1.25).
    const ir2 = irOf("fn ln(x: f32[1, 4]) -> f32[1, 4] { return layer_norm(x, eps: 0) }");
    await check(ir2, "ln", { x: f32([1, 4], [1, 2, 3, 4]) }, [-1.3416408, -0.4472136, 0.4472136, 1.3416408], 1e-7);
  });
  it("matmul [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]", async () => {
    const ir2 = irOf("fn mm(a: f32[2, 2], b: f32[2, 2]) -> f32[2, 2] { return a @ b }");
    await check(ir2, "mm", { a: f32([2, 2], [1, 2, 3, 4]), b: f32([2, 2], [5, 6, 7, 8]) }, [19, 22, 43, 50]);
  });
});
