// The same f16/bf16 program on wasm (engineer B's 16-bit storage) and on WebGPU (native and packed): both round
// f32 results to the format with round-to-nearest-even, so elementwise results and copies agree to the bit, and
// f32 sums (reductions, matmul) within the f32 accumulation bound n * 2^-24 * sum|terms| plus one ulp of the
// 16-bit result (2u relative): the documented cross-backend tolerance.
import { afterAll, describe, expect, it } from "vitest";
import { irOf, wasmModule } from "../helpers/backend.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { webgpuEnv } from "./helpers.js";
import { TINY, UNIT, expectWithin, fromValues, loadMode, modesOf, randomInput, valuesOf, type Half } from "./half-helpers.js";

const env = await webgpuEnv("f16/bf16 wasm vs WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);

const source = (H: Half) => `
fn ew(x: ${H}[R, N], y: ${H}[N]) -> ${H}[R, N] { return x * y + x }
fn tr(x: ${H}[N, R]) -> ${H}[R, N] { return transpose(x) }
fn total(x: ${H}[R, N]) -> f32[R] { return sum(cast(x, f32), axis: 1) }
fn mm(a: ${H}[M, K], b: ${H}[K, N]) -> f32[M, N] { return a @ b }
`;

describe.skipIf(!env.h)("f16/bf16 programs give the same answers on wasm and WebGPU", { timeout: 120_000 }, () => {
  for (const H of ["f16", "bf16"] as const) {
    const ir = irOf(source(H));
    for (const mode of MODES) {
      if (H === "bf16" && mode === "native") continue;
      it(`${H}, WebGPU ${mode}`, async () => {
        const wasm = await wasmModule(ir);
        const gpu = await loadMode(env, ir, mode);
        const both = async (fn: string, inputs: Record<string, Tensor>) => {
          const w = wasm.call(fn, inputs) as Tensor;
          const g = await (gpu.call(fn, inputs) as { read(): Promise<Tensor> }).read();
          expect(g.dtype).toBe(w.dtype);
          return { w: valuesOf(w), g: valuesOf(g) };
        };
        const rng = new Rng(7);
        for (const n of [1, 3, 17, 255, 257]) {
          const x = randomInput(rng, H, [3, n]).tensor, y = randomInput(rng, H, [n]).tensor;
          // x * y + x: the products and sums are exact or singly rounded in f32 on both, then rounded to H.
          const ew = await both("ew", { x, y });
          expectWithin(ew.g, ew.w, (_i, v) => 2 * UNIT[H] * Math.abs(v) + TINY[H], `ew n=${n}`);
          const t = await both("tr", { x: randomInput(rng, H, [n, 3]).tensor });
          expect(t.g).toEqual(t.w);
          const pos = fromValues(H, [3, n], Array.from({ length: 3 * n }, () => rng.uniform() * 2)).tensor;
          const s = await both("total", { x: pos });
          expectWithin(s.g, s.w, (_i, v) => 2 * n * UNIT.f32 * Math.abs(v), `total n=${n}`);
          const a = randomInput(rng, H, [5, n]).tensor, b = randomInput(rng, H, [n, 3]).tensor;
          const m = await both("mm", { a, b });
          // Both sum in f32 in different orders: each within n * 2^-24 * sum|a||b| <= n * 2^-24 * 16n of the exact sum.
          expectWithin(m.g, m.w, () => 2 * n * UNIT.f32 * 16 * n, `mm K=${n}`);
        }
        gpu.dispose();
      });
    }
  }
});
