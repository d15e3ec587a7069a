// broadcast_to folded into arithmetic (passes/simplify-broadcast.ts) on WebGPU (lavapipe or llvmpipe here, skipped
// with the reason when there is no adapter): softmax / log_softmax gradients with causal masks, known and symbolic
// rows, odd row lengths, against the float64 reference on the IR built without the simplify pass.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWgsl, compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { expectClose, type Input } from "../helpers/backend.js";
import { runGpuVsRef, webgpuEnv, type GpuEnv } from "./helpers.js";

let env: GpuEnv = {};
beforeAll(async () => { env = await webgpuEnv("broadcast-fold-webgpu"); }, 70_000);
afterAll(() => env.h?.device.destroy());

describe("broadcast_to folding on WebGPU", () => {
  it("softmax and log_softmax gradients: no broadcast copies, values as the reference", async (ctx) => {
    if (!env.h) return ctx.skip();
    for (const c of [1, 5, 17, 300]) {
      for (const [body, mask] of [["sum(softmax(x, axis: -1) * t)", -Infinity], ["mean(softmax(x, axis: -1) * t)", -Infinity], ["sum(log_softmax(x, axis: -1) * t)", -1e30]] as const) {
        for (const rows of ["6", "B"]) {
          const src = `fn f(x: f32[${rows}, ${c}], t: f32[${rows}, ${c}]) -> f32 { return ${body} }
fn g(x: f32[${rows}, ${c}], t: f32[${rows}, ${c}]) -> (f32, f32[${rows}, ${c}]) { return value_and_grad(f)(x, t) }`;
          const r = compileToIR(src, "t.kiln");
          if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
          const ops = buildWgsl(r.ir, "t").manifest.functions.find((f) => f.name === "g")!.steps.map((s) => s.ops.join(","));
          // mean over symbolic rows divides by a dim_size the runtime uploads per call (no broadcast of ones).
          expect(ops.filter((o) => o === "broadcast_to").length, ops.join(" | ")).toBe(0);
          // Row i sees its first i + 1 columns (causal); values in [-6, 6).
          const x: Input = { dtype: "f32", shape: [6, c], data: Array.from({ length: 6 * c }, (_, k) => (k % c > Math.floor(k / c) ? mask : Math.sin(k * 1.3) * 6)) };
          const t: Input = { dtype: "f32", shape: [6, c], data: Array.from({ length: 6 * c }, (_, k) => Math.cos(k * 0.71)) };
          const { gpu } = await runGpuVsRef(env, r.ir, "g", { x, t });
          const plain = compileToIR(src, "t.kiln", [], ["simplify"]).ir!;
          const ref = evaluateGraph(plain.functions.find((f) => f.name === "g")!, { x, t }, new Map());
          const what = `${body}, [${rows}, ${c}]`;
          expectClose(gpu[0]!, ref[0]!, `${what} value`, 2e-5, 1e-5);
          expectClose(gpu[1]!, ref[1]!, `${what} gradient`, 2e-5, 1e-6);
        }
      }
    }
  }, 300_000);
});
