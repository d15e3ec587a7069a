// The direct pool2d kernel's WGSL form (codegen/wgsl/pool2d.ts) against the float64 reference: the cases of
// test/helpers/pool-cases.ts (max exact with ties, NaN and infinities, a zero of either sign (WGSL's max may not order them); avg within f32 rounding),
// on images narrower and wider than wasm's vector block. Skips, saying why, without an adapter.
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
