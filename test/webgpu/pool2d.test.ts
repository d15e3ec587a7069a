// The direct pool2d kernel's WGSL form (codegen/wgsl/pool2d.ts) against the float64 reference: the cases of
// test/helpers/pool-cases.ts (max exact with ties, NaN and infinities, a zero of either sign (WGSL's max may not order them); avg within f32 rounding),
// on images narrower and wider than wasm's vector block; and max_pool2d's gradient kernel (maxpool_grad) against
// PyTorch's gradients with ties (test/codegen/pool-grad-goldens.json). Skips, saying why, without an adapter.
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { buildWgsl } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { poolInputs, poolMismatch, poolModule } from "../helpers/pool-cases.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("pool2d on WebGPU");
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("pool2d kernel on WebGPU against the reference", () => {
  for (const [H, W] of [[14, 14], [7, 9]] as const) {
    it(`every pool and producer over ${H}x${W}`, async () => {
      const { src, cases } = poolModule(3, H, W);
      const ir = irOf(src);
      const plan = buildWgsl(ir, "pool").manifest;
      const module = await gpuModule(env, ir);
      try {
        for (const c of cases) {
          expect(plan.functions.find((f) => f.name === c.fn)!.steps.some((s) => /pool/.test(s.kernel)), `${c.fn}: a pool kernel`).toBe(true);
          for (const special of c.exact ? [true, false] : [false]) {
            const { gpu, ref } = await runGpuVsRef(env, ir, c.fn, poolInputs(2, 3, H, W, 7 * H + W, special), { module });
            const bad = poolMismatch(gpu[0]!.data as ArrayLike<number>, ref[0]!.data, c.exact, false);
            expect(bad, `${c.fn} = ${c.call} over ${H}x${W}${special ? " with NaN/inf" : ""}`).toBeUndefined();
          }
        }
      } finally {
        module.dispose();
      }
    });
  }
});

interface T { shape: number[]; data: number[] }
const GOLD = JSON.parse(readFileSync(new URL("../codegen/pool-grad-goldens.json", import.meta.url), "utf8")) as { grads: { name: string; k: number; x: T; w: T; dx: number[] }[] };

describe.skipIf(!env.h)("maxpool_grad kernel on WebGPU against PyTorch", () => {
  for (const c of GOLD.grads.filter((g) => !g.name.includes("relu"))) {
    it(`${c.name}: ties go to the first maximum`, async () => {
      const [, C, H, W] = c.x.shape;
      const ws = `f32[${["B", ...c.w.shape.slice(1)].join(", ")}]`;
      const ir = irOf(`fn loss(x: f32[B, ${C}, ${H}, ${W}], w: ${ws}) -> f32 { return sum(max_pool2d(x, ${c.k}) * w) }
fn grads(x: f32[B, ${C}, ${H}, ${W}], w: ${ws}) { return grad(loss)(x, w) }`);
      expect(buildWgsl(ir, "g").manifest.functions.find((f) => f.name === "grads")!.steps.some((s) => s.kernel.startsWith("maxpool_grad"))).toBe(true);
      const { gpu, ref } = await runGpuVsRef(env, ir, "grads", { x: { dtype: "f32", shape: c.x.shape, data: c.x.data }, w: { dtype: "f32", shape: c.w.shape, data: c.w.data } });
      expect(poolMismatch(gpu[0]!.data as ArrayLike<number>, c.dx, true, false), "dx vs PyTorch").toBeUndefined();
      expect(poolMismatch(gpu[0]!.data as ArrayLike<number>, Array.from(ref[0]!.data), true, false), "dx vs reference").toBeUndefined();
    });
  }
});
