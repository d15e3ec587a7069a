// Reduce prologues (passes/fusion-reduce.ts): softmax, log_softmax + NLL, layer_norm and mean/var with their
// elementwise producers fused into the reductions agree with the unfused program and the float64 reference on
// odd sizes and broadcast patterns, on wasm; the kernel counts show the fusion (no separate exp kernel).
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import type { FunctionManifest } from "../../runtime/manifest.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose, type Input } from "../helpers/backend.js";
import { compileBoth, randomInput } from "./fusion-helpers.js";

async function runWasm(ir: IRModule, fn: string, inputs: Record<string, Input>): Promise<{ out: Tensor[]; manifest: FunctionManifest }> {
  const b = await buildWasm(ir, "fusion");
  const mod = await loadKilnModule(b.manifest, b.wasm);
  const given = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)]));
  const r = mod.call(fn, given);
  return { out: Array.isArray(r) ? r : [r as Tensor], manifest: b.manifest.functions.find((f) => f.name === fn)! };
}

/** Fused and unfused wasm against the reference; returns both manifests for kernel-count assertions. */
export async function checkWasm(src: string, fn: string, inputs: Record<string, Input>, rtol = 2e-5, atol = 2e-6) {
  const { fused, plain } = compileBoth(src);
  const ref = evaluateGraph(plain.functions.find((g) => g.name === fn)!, inputs);
  const f = await runWasm(fused, fn, inputs);
  const p = await runWasm(plain, fn, inputs);
  ref.forEach((want, i) => {
    expectClose(f.out[i]!, want, `fused ${fn}[${i}]`, rtol, atol);
    expectClose(p.out[i]!, want, `unfused ${fn}[${i}]`, rtol, atol);
  });
  return { fused: f.manifest, plain: p.manifest };
}

const SIZES = [1, 3, 17, 255, 257];

/** Steps whose ops are exactly `ops` (a kernel that computes only these). */
const kernelsOf = (fn: FunctionManifest, ops: string[]) => fn.steps.filter((s) => s.ops.join(",") === ops.join(","));

describe("reduce prologues on wasm", () => {
  it("softmax: the sum computes exp(x - max) and stores it for the divide (3 kernels, no exp kernel); odd rows", async () => {
    for (const n of SIZES) {
      const rng = new Rng(n);
      // Over the leading axis (over the last one the planner makes the three kernels one, codegen/plan-rows.ts).
      const src = `fn f(x: f32[${n}, 3]) -> f32[${n}, 3] { return softmax(x, axis: 0) }`;
      const { fused, plain } = await checkWasm(src, "f", { x: randomInput(rng, [n, 3], 3) });
      // exp(x - max) feeds the sum and the divide: the sum's kernel computes it and stores it once (recomputing
      // exp in the divide costs more, see RECOMPUTE_MAX_OPS).
      expect(fused.steps.map((s) => s.ops)).toEqual([["max"], ["sub", "exp", "sum"], ["div"]]);
      expect(fused.steps[1]!.outputs).toBe(2);
      expect(plain.steps.length).toBe(5);
      const rows = await checkWasm(`fn f(x: f32[3, ${n}]) -> f32[3, ${n}] { return softmax(x, axis: -1) }`, "f", { x: randomInput(rng, [3, n], 3) });
      expect(rows.fused.steps.map((s) => s.ops)).toEqual([["softmax"]]);
    }
  });

  it("softmax over the leading axis (the reduced axis is outer, rows are kept inner)", async () => {
    for (const n of [1, 5, 17]) {
      const src = `fn f(x: f32[${n}, 6]) -> f32[${n}, 6] { return softmax(x, axis: 0) }`;
      await checkWasm(src, "f", { x: randomInput(new Rng(7 + n), [n, 6], 2) });
    }
  });

  it("layer_norm: the variance recomputes x - mean in its prologue; x - mean is never stored", async () => {
    for (const n of SIZES) {
      const rng = new Rng(100 + n);
      const src = `fn g(x: f32[5, ${n}], gamma: f32[${n}], beta: f32[${n}]) -> f32[5, ${n}] { return layer_norm(x, gamma, beta, eps: 1e-5) }`;
      const { fused } = await checkWasm(src, "g", { x: randomInput(rng, [5, n], 2), gamma: randomInput(rng, [n]), beta: randomInput(rng, [n]) }, 5e-5, 5e-6);
      // mean(x); mean((x - m)^2) with the subtraction recomputed; rsqrt(var + eps); the normalisation. (With
      // one column the [5, 1] statistics have the output's shape and rsqrt joins the last kernel.)
      if (n > 1) expect(fused.steps.map((s) => s.ops)).toEqual([["mean"], ["sub", "mul", "mean"], ["add", "rsqrt"], ["sub", "mul", "mul", "add"]]);
      if (n > 1) expect(fused.values.filter((v) => v.source.kind === "temp").length).toBe(4);
    }
  });

  it("log_softmax + NLL (cross_entropy): reductions read fused expressions", async () => {
    for (const n of [1, 3, 17, 257]) {
      const rng = new Rng(200 + n);
      const src = `fn h(x: f32[4, ${n}], labels: i32[4]) -> f32 { return cross_entropy(x, labels) }`;
      const labels: Input = { dtype: "i32", shape: [4], data: [0, n - 1, Math.floor(n / 2), n > 1 ? 1 : 0] };
      const { fused, plain } = await checkWasm(src, "h", { x: randomInput(rng, [4, n], 3), labels }, 5e-5, 5e-6);
      expect(fused.steps.length).toBeLessThan(plain.steps.length);
      // sum(exp(x - max)) in one kernel: the exp has no consumer but the sum.
      expect(fused.steps.some((s) => s.ops.includes("exp") && ["sum", "mean"].includes(s.ops.at(-1)!))).toBe(true);
    }
  });

  it("mean and variance over several axes and broadcast patterns", async () => {
    const rng = new Rng(300);
    const cases: [string, Record<string, Input>][] = [
      // var over axes 0 and 2 of [3, 17, 5] with the mean broadcast along both (keepdims).
      [`fn f(x: f32[3, 17, 5]) -> f32[1, 17, 1] { return mean((x - mean(x, axis: [0, 2], keepdims: true)) * (x - mean(x, axis: [0, 2], keepdims: true)), axis: [0, 2], keepdims: true) }`,
        { x: randomInput(rng, [3, 17, 5]) }],
      // A row vector and a column vector broadcast into a full reduction.
      [`fn f(x: f32[255, 3], r: f32[3], c: f32[255, 1]) -> f32 { return sum(tanh(x * r) + c * 2) }`,
        { x: randomInput(rng, [255, 3]), r: randomInput(rng, [3]), c: randomInput(rng, [255, 1]) }],
      // The loss-scale overflow check: sum(g * 0) is 0, or NaN when any g is Inf/NaN.
      [`fn f(g: f32[257]) -> f32 { return sum(g * 0) }`, { g: randomInput(rng, [257]) }],
      [`fn f(g: f32[17]) -> f32 { return sum(g * 0) }`, { g: { dtype: "f32", shape: [17], data: Array.from({ length: 17 }, (_, i) => (i === 11 ? Infinity : i)) } }],
      // max and min of expressions, a kept inner axis, and an integer count of a comparison.
      [`fn f(x: f32[17, 3], y: f32[3]) -> f32[3] { return max(abs(x - y), axis: 0) - min(x * y, axis: 0) }`,
        { x: randomInput(rng, [17, 3]), y: randomInput(rng, [3]) }],
      [`fn f(x: f32[5, 257]) -> i32[5] { return sum(cast(x > 0, i32), axis: 1) }`, { x: randomInput(rng, [5, 257]) }],
    ];
    for (const [src, inputs] of cases) {
      const { fused, plain } = await checkWasm(src, "f", inputs, 5e-5, 5e-6);
      expect(fused.steps.length, src).toBeLessThan(plain.steps.length);
    }
  });

  it("mixed precision: f16/bf16 storage read by a prologue (sum(cast(x16, f32) * y)), odd sizes", async () => {
    for (const dt of ["f16", "bf16"] as const) {
      for (const n of [1, 3, 17, 257]) {
        const rng = new Rng(400 + n);
        const src = `fn f(x: ${dt}[3, ${n}], y: f32[${n}]) -> f32[3] { return sum(cast(x, f32) * y, axis: 1) }`;
        // Inputs exactly representable in the format (multiples of 1/8 in [-4, 4)), so only the f32 sum rounds.
        const x = { dtype: dt, shape: [3, n], data: Array.from({ length: 3 * n }, () => Math.round(rng.uniform(-32, 32)) / 8) };
        const { fused } = await checkWasm(src, "f", { x, y: randomInput(rng, [n]) });
        expect(fused.steps.length).toBe(1);
      }
    }
  });

  it("no prologue reads more than 7 buffers (the WebGPU storage-buffer limit)", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `a${i}`);
    const src = `fn f(${names.map((n) => `${n}: f32[4, 9]`).join(", ")}) -> f32[4] { return sum(${names.join(" * ")}, axis: 1) }`;
    const rng = new Rng(9);
    const { fused } = await checkWasm(src, "f", Object.fromEntries(names.map((n) => [n, randomInput(rng, [4, 9])])));
    for (const s of fused.steps) expect(s.buffers.length).toBeLessThanOrEqual(8);
  });

  it("a reduction under a guard (if branch) fuses with its guarded producers only", async () => {
    const src = `fn f(x: f32[4, 17], c: f32) -> f32[4] {
  let y = sum(x, axis: 1)
  if c > 0 { y = sum(exp(x) * c, axis: 1) }
  return y
}`;
    const rng = new Rng(11);
    for (const c of [1, -1]) await checkWasm(src, "f", { x: randomInput(rng, [4, 17]), c: { dtype: "f32", shape: [], data: [c] } });
  });
});
