// Shared by softmax-saves.test.ts (plain build) and softmax-saves.relaxed.test.ts: softmax rows whose exps and sums
// are read elsewhere (codegen/plan-rows.ts `saves`, SoftmaxRowsKernel.saves): one row kernel storing the exps, the
// row sums and y where y has a kernel of its own ("softmax_saves"; "exp_sum_rows" without y) in place of the max /
// sub,exp,sum (/ div) kernels. Value and gradient against the float64 reference interpreter and the build without
// fusion (the same tolerance: the relaxed build's FMAs round differently); two threads against one, bit for bit; a
// training step's loss and updated params against the unfused build and a hand derivation.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";
import { compileBoth } from "../passes/fusion-helpers.js";

// The division fused into its consumers: the kernel stores the exps and sums only ("exp_sum_rows").
const gradSrc = (r: number, c: number) => `
fn f(x: f32[${r}, ${c}], t: f32[${r}, ${c}]) -> f32 { return sum(softmax(x, axis: -1) * t) }
fn g(x: f32[${r}, ${c}], t: f32[${r}, ${c}]) -> (f32, f32[${r}, ${c}]) { return value_and_grad(f)(x, t) }
`;
// softmax(z) read by the backward as well: the kernel stores it too ("softmax_saves"); x is z's rows here.
const gradOutSrc = (r: number, c: number) => `
fn f(x: f32[${r}, ${c}], t: f32[${c}, ${c}]) -> f32 {
  let z = x @ t
  return sum(softmax(z, axis: -1) * z)
}
fn g(x: f32[${r}, ${c}], t: f32[${c}, ${c}]) -> (f32, f32[${r}, ${c}]) { return value_and_grad(f)(x, t) }
`;

async function run(ir: IRModule, build: "plain" | "relaxed", fn: string, inputs: Record<string, Input>, threads = 1) {
  const b = await buildWasm(ir, "t", { wat: false });
  const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads });
  if (m.threads !== threads) throw new Error(`asked for ${threads} threads, got ${m.threads}: ${m.fallbackReason}`);
  try {
    const given = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
    const out = m.call(fn, given);
    const ops = b.manifest.functions.find((f) => f.name === fn)!.steps.map((s) => s.kernel);
    return { out: Array.isArray(out) ? out : [out], kernels: ops };
  } finally {
    m.dispose();
  }
}

/** Rows of values in [-8, 8), a third of row 1 masked with -inf (exps of 0, gradients of 0 there). */
function rows(r: number, c: number, seed: number): Input {
  const x = lcgInput([r, c], seed);
  x.data = x.data.map((v) => v * 8);
  for (let j = 0; j < c; j += 3) if (r > 1 && c > 1) x.data[c + j] = -Infinity;
  return x;
}

/** The suite on this worker's build: relaxed where the worker runs with the relaxed-SIMD flag. */
export function savesSuite(): void {
describe("softmax rows storing the exps and sums for the backward", () => {
  for (const build of [process.execArgv.includes("--experimental-wasm-relaxed-simd") ? "relaxed" as const : "plain" as const]) {
    for (const c of [1, 3, 4, 5, 16, 17, 64, 1025]) {
      for (const [kernel, src] of [["exp_sum_rows", gradSrc], ["softmax_saves", gradOutSrc]] as const) {
      // The matmul's rows carry no -inf (its inputs are finite); rows of 1025 there would only slow the test.
      if (kernel === "softmax_saves" && c > 64) continue;
      it(`${build}, ${kernel}, rows of ${c}: value and gradient vs the reference and the unfused kernels`, async () => {
        const R = 6;
        const { fused, plain } = compileBoth(src(R, c));
        const x = kernel === "exp_sum_rows" ? rows(R, c, 3 + c) : lcgInput([R, c], 3 + c);
        const t = lcgInput(kernel === "exp_sum_rows" ? [R, c] : [c, c], 99 + c);
        const a = await run(fused, build, "g", { x, t });
        // Rows of one: with the gradient's broadcast_to copies folded away (passes/simplify-broadcast.ts) the division
        // fuses into the backward's one elementwise group, so the kernel stores only the exps and sums.
        const want = kernel === "softmax_saves" && c === 1 ? "exp_sum_rows" : kernel;
        expect(a.kernels.filter((k) => k.startsWith(want)), "one saving row kernel").toHaveLength(1);
        expect(a.kernels.some((k) => k.startsWith("reduce_max"))).toBe(false);
        const b = await run(plain, build, "g", { x, t });
        const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { x, t }, new Map());
        const what = `${build} [${R}, ${c}]`;
        expectClose(a.out[0]!, ref[0]!, `${what} value`, 2e-5, 1e-6);
        expectClose(a.out[1]!, ref[1]!, `${what} gradient`, 2e-5, 1e-6);
        for (let k = 0; k < 2; k++) {
          const [u, v] = [a.out[k]!.data, b.out[k]!.data];
          for (let i = 0; i < v.length; i++) expect(Math.abs(u[i]! - v[i]!), `${what} output ${k}[${i}]: ${u[i]} vs unfused ${v[i]}`).toBeLessThanOrEqual(2e-5 * Math.abs(v[i]!) + 1e-6);
        }
      });
      }
    }
  }

  it("on two threads (rows split between them, each its sums' slice): the one-thread bits", async () => {
    const build = process.execArgv.includes("--experimental-wasm-relaxed-simd") ? "relaxed" as const : "plain" as const;
    // 128 x 1025 elements: past the split threshold (runtime/wasm/threads-split.ts, 2^17).
    const R = 128, C = 1025, K = 4;
    const cases = [
      { kernel: "exp_sum_rows", src: gradSrc(R, C), x: rows(R, C, 5), t: lcgInput([R, C], 6) },
      { kernel: "softmax_saves", src: gradOutSrc(R, C).replace(`x: f32[${R}, ${C}], t: f32[${C}, ${C}]) -> f32`, `x: f32[${R}, ${K}], t: f32[${K}, ${C}]) -> f32`).replace(`(x: f32[${R}, ${C}], t: f32[${C}, ${C}]) -> (f32, f32[${R}, ${C}])`, `(x: f32[${R}, ${K}], t: f32[${K}, ${C}]) -> (f32, f32[${R}, ${K}])`), x: lcgInput([R, K], 7), t: lcgInput([K, C], 8) },
    ];
    for (const c of cases) {
      const { fused } = compileBoth(c.src);
      const one = await run(fused, build, "g", { x: c.x, t: c.t }, 1);
      const two = await run(fused, build, "g", { x: c.x, t: c.t }, 2);
      expect(two.kernels.filter((k) => k.startsWith(c.kernel)), c.kernel).toHaveLength(1);
      for (let k = 0; k < 2; k++) expect(Array.from(two.out[k]!.data), `${c.kernel} output ${k}`).toEqual(Array.from(one.out[k]!.data));
    }
  }, 60_000);

  it("a training step: one row kernel in place of two; loss and update as unfused and by hand", async () => {
    // loss = sum(softmax(w) * t) over 2 rows of 3; sgd(lr: 1). With w = 0 the rows are uniform (y = 1/3 each):
    // loss = sum(t) / 3, and d loss / d w[r, j] = y * (t[r, j] - sum_k y t[r, k]) (softmax's Jacobian, by hand).
    const src = `model M {
  param w: f32[2, 3] = zeros()
  fn loss(t: f32[2, 3]) -> f32 { return sum(softmax(w, axis: -1) * t) }
}
train T {
  model: M
  loss: loss
  optimizer: sgd(lr: 1)
}`;
    const { fused, plain } = compileBoth(src);
    const t = [1, 0, 0, 0, 1, 2];
    const step = async (ir: IRModule) => {
      const b = await buildWasm(ir, "t", { wat: false });
      const m = await loadKilnModule(b.manifest, b.wasm, {});
      const loss = (m.call("T.step", { t }) as Tensor).data[0]!;
      return { loss, w: Array.from(m.getParam("M.w").data), kernels: b.manifest.functions.find((f) => f.name === "T.step")!.steps.map((s) => s.kernel) };
    };
    const a = await step(fused);
    const b = await step(plain);
    expect(a.kernels.filter((k) => k.startsWith("exp_sum_rows"))).toHaveLength(1);
    expect(a.kernels.some((k) => k.startsWith("reduce_max"))).toBe(false);
    const y = 1 / 3;
    const rowDot = [y * (1 + 0 + 0), y * (0 + 1 + 2)];
    const grad = t.map((tv, i) => y * (tv - rowDot[Math.floor(i / 3)]!));
    expect(a.loss).toBeCloseTo(4 / 3, 6);
    a.w.forEach((w, j) => expect(w).toBeCloseTo(-grad[j]!, 6));
    expect(a.loss).toBeCloseTo(b.loss, 6);
    a.w.forEach((w, j) => expect(w).toBeCloseTo(b.w[j]!, 6));
  });
});
}
