// Short and causal-masked softmax rows (issue 19's GPT attention: rows of T = 64, the causal mask's -1e9 scores) on
// the row kernel (wasm/softmax-rows.ts: masked rows take expRow per vector, all-masked vectors skip the exp, a
// vector reaching [-104, -87.6) below the max the `exp` op's general path): softmax and log_softmax against the
// float64 reference and the unfused build (softmax-rows-cases.ts checkRows, identical NaN / inf / zeros); the
// saving forward (exp_sum_rows) and its backward kernel against the reference. Plain build, or relaxed where this
// worker runs with the relaxed-SIMD flag.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";
import { compileBoth } from "../passes/fusion-helpers.js";
import { checkRows } from "./softmax-rows-cases.js";

const build = process.execArgv.includes("--experimental-wasm-relaxed-simd") ? "relaxed" as const : "plain" as const;

/**
 * Two [c, c] blocks of scores in [-10, 10), row i masked with -1e9 past column i (an attention's causal rows; in
 * exp, -1e9 - max is far below -104, so 0). Block 1: row 1 gets a NaN at column 0 (a masked row with a NaN: all NaN);
 * its last row (unmasked) has 10 at column 0, every odd column -1e9 and the even ones at -85 - (j % 10), 95 to 103
 * below the max: subnormal exps, the band where only the general path is right.
 */
function causalRows(c: number): Input {
  const x = lcgInput([2, c, c], 31 + c).data.map((v) => v * 10);
  for (let b = 0; b < 2; b++) for (let i = 0; i < c; i++) for (let j = i + 1; j < c; j++) x[(b * c + i) * c + j] = -1e9;
  if (c > 1) x[(c + 1) * c] = NaN;
  const last = (2 * c - 1) * c;
  x[last] = 10;
  for (let j = 1; j < c; j++) x[last + j] = j % 2 ? -1e9 : -85 - (j % 10);
  return { dtype: "f32", shape: [2, c, c], data: x };
}

const LENGTHS = [...Array.from({ length: 17 }, (_, i) => i + 1), 31, 63, 64, 65];

describe(`short and causal softmax rows (${build})`, () => {
  it("the test rows reach every path: masked vectors, the general path's band, NaN", () => {
    const x = causalRows(64).data;
    const row = Array.from(x.slice(127 * 64, 128 * 64));
    const max = Math.max(...row.filter((v) => v > -1e8));
    expect(row.some((v) => v - max >= -104 && v - max < -87.6), "a lane in [-104, -87.6) below the max").toBe(true);
    expect(row.some((v) => v - max < -104)).toBe(true);
    expect(Number.isNaN(x[65 * 64]!)).toBe(true);
  });

  for (const c of LENGTHS) {
    it(`rows of ${c}: softmax and log_softmax vs the reference and the unfused build`, async () => {
      await checkRows("softmax", causalRows(c), build);
      await checkRows("log_softmax", causalRows(c), build);
      // Unmasked short rows too (the fast path's 16- and 4-column loops and the scalar tail at each length). The
      // relaxed build's fast rows use the degree-5 polynomial (<= 2 ulp) where the unfused kernels use the `exp`
      // op's, and multiply by 1 / sum: up to about 4 ulp (4.8e-7) apart, where a row of 16 measured 4.2e-7.
      const plain = lcgInput([5, c], 7 + c);
      await checkRows("softmax", { ...plain, data: plain.data.map((v) => v * 10) }, build, build === "relaxed" ? 6e-7 : 4e-7);
    });
  }

  for (const c of [5, 16, 63, 64, 65]) {
    it(`rows of ${c}, causal: the saving forward and the backward kernel vs the reference`, async () => {
      const x = causalRows(c);
      x.data = x.data.map((v) => (Number.isNaN(v) ? 0.5 : v)); // a NaN would make the whole gradient NaN
      const t = lcgInput([2, c, c], 5 + c);
      const S = `f32[2, ${c}, ${c}]`;
      const { fused } = compileBoth(`
fn l(x: ${S}, t: ${S}) -> f32 { return sum(softmax(x, axis: -1) * t) }
fn g(x: ${S}, t: ${S}) -> (f32, ${S}) { return value_and_grad(l)(x, t) }`);
      const b = await buildWasm(fused, "t", { wat: false });
      const kernels = b.manifest.functions.find((f) => f.name === "g")!.steps.map((s) => s.kernel);
      expect(kernels.some((k) => k.startsWith("exp_sum_rows")), kernels.join(" ")).toBe(true);
      expect(kernels.some((k) => k.startsWith("softmax_grad_rows")), kernels.join(" ")).toBe(true);
      const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads: 1 });
      try {
        const out = m.call("g", { x: new Tensor("f32", x.shape, x.data), t: new Tensor("f32", t.shape, t.data) }) as Tensor[];
        const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { x, t }, new Map());
        expectClose(out[0]!, ref[0]!, `[2, ${c}, ${c}] value`, 2e-5, 1e-6);
        expectClose(out[1]!, ref[1]!, `[2, ${c}, ${c}] gradient`, 2e-5, 1e-6);
      } finally {
        m.dispose();
      }
    });
  }
});
