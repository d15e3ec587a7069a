// Fused reductions on WebGPU (lavapipe or llvmpipe here, skipped with the reason when there is no adapter):
// softmax, layer_norm, cross_entropy and broadcast prologues agree with the reference, fused and unfused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rng } from "../../runtime/rng.js";
import { expectClose, type Input } from "../helpers/backend.js";
import { runGpuVsRef, webgpuEnv, type GpuEnv } from "../webgpu/helpers.js";
import { compileBoth, randomInput, randomProgram } from "./fusion-helpers.js";
import { buildWgsl } from "../../compiler/compile.js";

let env: GpuEnv = {};
beforeAll(async () => { env = await webgpuEnv("fusion-webgpu"); }, 70_000);
afterAll(() => env.h?.device.destroy());

const CASES: [string, string, (rng: Rng, n: number) => Record<string, Input>][] = [
  ["softmax", "fn f(x: f32[3, N]) -> f32[3, N] { return softmax(x, axis: -1) }", (r, n) => ({ x: randomInput(r, [3, n], 3) })],
  ["layer_norm", "fn f(x: f32[5, N], g: f32[N], b: f32[N]) -> f32[5, N] { return layer_norm(x, g, b, eps: 1e-5) }",
    (r, n) => ({ x: randomInput(r, [5, n], 2), g: randomInput(r, [n]), b: randomInput(r, [n]) })],
  ["cross_entropy", "fn f(x: f32[4, N], labels: i32[4]) -> f32 { return cross_entropy(x, labels) }",
    (r, n) => ({ x: randomInput(r, [4, n], 3), labels: { dtype: "i32", shape: [4], data: [0, n - 1, n >> 1, 0] } })],
  ["variance over the outer axis", "fn f(x: f32[N, 3], c: f32[3]) -> f32[1, 3] { return mean((x - c) * (x - c), axis: 0, keepdims: true) }",
    (r, n) => ({ x: randomInput(r, [n, 3]), c: randomInput(r, [3]) })],
  ["f16 storage read by a prologue", "fn f(x: f16[3, N], y: f32[N]) -> f32[3] { return sum(cast(x, f32) * y, axis: 1) }",
    // Multiples of 1/8 in [-4, 4): exact in f16, so only the f32 sum rounds.
    (r, n) => ({ x: { dtype: "f16", shape: [3, n], data: Array.from({ length: 3 * n }, () => Math.round(r.uniform(-32, 32)) / 8) }, y: randomInput(r, [n]) })],
  ["full sum of broadcast inputs", "fn f(x: f32[N, 3], r: f32[3], c: f32[N, 1]) -> f32 { return sum(tanh(x * r) + c * 2) }",
    (r, n) => ({ x: randomInput(r, [n, 3]), r: randomInput(r, [3]), c: randomInput(r, [n, 1]) })],
];

describe("fused reductions on WebGPU", () => {
  for (const [name, template, inputs] of CASES) {
    it(name, async (ctx) => {
      if (!env.h) return ctx.skip();
      for (const n of [1, 3, 17, 257]) {
        const { fused, plain } = compileBoth(template.replace(/N/g, String(n)));
        const given = inputs(new Rng(n), n);
        for (const [label, ir] of [["fused", fused], ["unfused", plain]] as const) {
          const { gpu, ref } = await runGpuVsRef(env, ir, "f", given);
          ref.forEach((want, i) => expectClose(gpu[i]!, want, `${name} ${label} n=${n}`, 5e-5, 5e-6));
        }
        const fusedSteps = buildWgsl(fused, "t").manifest.functions[0]!.steps.length;
        expect(fusedSteps).toBeLessThan(buildWgsl(plain, "t").manifest.functions[0]!.steps.length);
      }
    }, 120_000);
  }

  it("random elementwise/reduction/matmul graphs (20 programs): fused = unfused = reference", async (ctx) => {
    if (!env.h) return ctx.skip();
    const rng = new Rng(777);
    const shapes: [number, number][] = [[1, 1], [3, 17], [17, 3], [2, 257]];
    for (let p = 0; p < 20; p++) {
      const [R, C] = shapes[p % shapes.length]!;
      const src = randomProgram(rng, R, C, 1 + (p % 3));
      const inputs = { x: randomInput(rng, [R, C]), y: randomInput(rng, [R, C]), v: randomInput(rng, [C]), u: randomInput(rng, [R, 1]), w: randomInput(rng, [C, C], 0.5) };
      const { fused, plain } = compileBoth(src);
      for (const [label, ir] of [["fused", fused], ["unfused", plain]] as const) {
        const { gpu, ref } = await runGpuVsRef(env, ir, "f", inputs);
        expectClose(gpu[0]!, ref[0]!, `${label} #${p}: ${src}`, 1e-4, 1e-5);
      }
    }
  }, 300_000);

  it("multi-output elementwise kernels (a function output and its consumers in one kernel)", async (ctx) => {
    if (!env.h) return ctx.skip();
    for (const n of [1, 3, 17, 257]) {
      const src = `fn f(x: f32[${n}], y: f32[${n}]) -> (f32[${n}], f32[${n}], f32[${n}]) {
  let a = tanh(x) * 2 + y
  return a, exp(-abs(a)), cast(a > y, f32) + x
}`;
      const { fused, plain } = compileBoth(src);
      const rng = new Rng(n);
      const inputs = { x: randomInput(rng, [n]), y: randomInput(rng, [n]) };
      expect(buildWgsl(fused, "t").manifest.functions[0]!.steps.map((s) => s.outputs ?? 1)).toEqual([3]);
      for (const [label, ir] of [["fused", fused], ["unfused", plain]] as const) {
        const { gpu, ref } = await runGpuVsRef(env, ir, "f", inputs);
        ref.forEach((want, i) => expectClose(gpu[i]!, want, `${label} n=${n} output ${i}`, 1e-5, 1e-6));
      }
    }
  }, 120_000);
});

describe("all_finite on WebGPU, checked by the kernels that store its inputs", () => {
  // A matmul epilogue, an elementwise kernel, a reduction, a plain matmul and a copy (the finite-kernel fallback).
  const SRC = `
fn f(x: f32[B, 12], w: f32[12, 7], b: f32[7]) -> bool { return all_finite(x @ w + b, x * 2) }
fn g(x: f32[B, 12], w: f32[12, 7]) -> bool { return all_finite(sum(x, axis: 0), x @ w) }
fn h(x: f32[B, 12]) -> bool { return all_finite(slice(concat(x, x, axis: 1), 1, 9, 14)) }`;
  it("agrees with the reference, fused and unfused, for finite inputs and a planted Inf or NaN", async (ctx) => {
    if (!env.h) return ctx.skip();
    const { fused, plain } = compileBoth(SRC);
    const B = 5;
    const w = { dtype: "f32" as const, shape: [12, 7], data: Array.from({ length: 84 }, (_, i) => Math.fround(Math.sin(i) * 0.3)) };
    const b = { dtype: "f32" as const, shape: [7], data: [0.1, -0.2, 0.3, 0, 0.5, -0.6, 0.7] };
    for (const [at, bad] of [[undefined, 0], [0, Infinity], [5, NaN], [B * 12 - 1, -Infinity]] as const) {
      const x = Array.from({ length: B * 12 }, (_, i) => Math.fround(Math.cos(i * 0.7)));
      if (at !== undefined) x[at] = bad;
      const inputs: Record<string, Input> = { x: { dtype: "f32", shape: [B, 12], data: x }, w, b };
      for (const fn of ["f", "g", "h"]) {
        const given = fn === "h" ? { x: inputs.x! } : fn === "g" ? { x: inputs.x!, w } : inputs;
        for (const [label, ir] of [["fused", fused], ["unfused", plain]] as const) {
          const { gpu, ref } = await runGpuVsRef(env, ir, fn, given);
          expect(Number(gpu[0]!.data[0]), `${fn} ${label} at=${at}`).toBe(ref[0]!.data[0]);
        }
      }
    }
  });
});
