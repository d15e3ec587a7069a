// Shared by lse-rows.test.ts (plain build) and lse-rows.relaxed.test.ts: cross-entropy's log-sum-exp rows on the
// softmax row kernel (codegen/plan-rows.ts `saves` without exps, with the max stored: "lse_rows_max"; in a training
// step the exps are stored too: "exp_sum_rows_max") in place of the max and sub,exp,sum kernels. Loss and gradient
// against the float64 reference interpreter, the same program built without fusion (NaN identical), PyTorch
// (lse-rows-goldens.json, from scripts/torch-lse-rows-goldens.py), symbolic rows, and two threads against one.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";
import { compileBoth } from "../passes/fusion-helpers.js";

const src = (r: string, c: number) => `
fn f(x: f32[${r}, ${c}], labels: i32[${r}]) -> f32 { return cross_entropy(x, labels) }
fn g(x: f32[${r}, ${c}], labels: i32[${r}]) -> (f32, f32[${r}, ${c}]) { return value_and_grad(f)(x, labels) }
`;

type Build = "plain" | "relaxed";

async function run(ir: IRModule, build: Build, fn: string, x: Input, labels: number[], threads = 1) {
  const b = await buildWasm(ir, "t", { wat: false });
  const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads });
  if (m.threads !== threads) throw new Error(`asked for ${threads} threads, got ${m.threads}: ${m.fallbackReason}`);
  try {
    const out = m.call(fn, { x: new Tensor("f32", x.shape, x.data), labels: new Tensor("i32", [labels.length], labels) });
    return { out: Array.isArray(out) ? out : [out], kernels: b.manifest.functions.find((f) => f.name === fn)!.steps.map((s) => s.kernel) };
  } finally {
    m.dispose();
  }
}

/**
 * Rows of c logits in [-10, 10): row 1 masked (-1e30; -inf would make the loss NaN, as cross_entropy's one-hot
 * product has 0 * -inf) at every third column, row 2 spanning > 87.6 (the exp's general path).
 */
function logits(r: number, c: number, seed: number): Input {
  const x = lcgInput([r, c], seed);
  x.data = x.data.map((v) => v * 10);
  for (let j = 1; j < c; j += 3) x.data[c + j] = -1e30;
  if (c > 1) x.data[2 * c + c - 1] = -100;
  return x;
}
const labelsFor = (r: number, c: number) => Array.from({ length: r }, (_, i) => (i * 7) % c);

function sameAsUnfused(a: Tensor[], b: Tensor[], what: string): void {
  for (let k = 0; k < a.length; k++) {
    const [u, v] = [a[k]!.data, b[k]!.data];
    for (let i = 0; i < v.length; i++) {
      const [p, q] = [Number(u[i]), Number(v[i])];
      if (!Number.isFinite(q)) expect(Object.is(p, q) || (Number.isNaN(p) && Number.isNaN(q)), `${what} output ${k}[${i}]: ${p} vs unfused ${q}`).toBe(true);
      else expect(Math.abs(p - q), `${what} output ${k}[${i}]: ${p} vs unfused ${q}`).toBeLessThanOrEqual(2e-5 * Math.abs(q) + 1e-6);
    }
  }
}

const dec = (v: number | string) => (typeof v === "number" ? v : v === "nan" ? NaN : v === "inf" ? Infinity : -Infinity);

export function lseSuite(build: Build): void {
  describe(`cross-entropy's log-sum-exp rows on the row kernel, ${build}`, () => {
    for (const c of [1, 3, 5, 17, 1024, 1025]) {
      it(`rows of ${c}: loss and gradient vs the reference and the unfused kernels`, async () => {
        const R = 6;
        const { fused, plain } = compileBoth(src(String(R), c));
        const x = logits(R, c, 11 + c);
        const labels = labelsFor(R, c);
        for (const [fn, kernel] of [["f", "lse_rows_max"], ["g", "exp_sum_rows_max"]] as const) {
          const a = await run(fused, build, fn, x, labels);
          expect(a.kernels.filter((k) => k.startsWith(kernel)), `${fn}: one row kernel`).toHaveLength(1);
          expect(a.kernels.some((k) => k.startsWith("reduce_max")), `${fn}: no max kernel`).toBe(false);
          const ref = evaluateGraph(fused.functions.find((h) => h.name === fn)!, { x, labels: { dtype: "i32", shape: [R], data: labels } }, new Map());
          a.out.forEach((t, k) => expectClose(t, ref[k]!, `${build} ${fn} [${R}, ${c}] output ${k}`, 2e-5, 1e-6));
          sameAsUnfused(a.out, (await run(plain, build, fn, x, labels)).out, `${build} ${fn} [${R}, ${c}]`);
        }
      });
    }

    it("a NaN logit: the loss and that row's gradient NaN, as unfused", async () => {
      const { fused, plain } = compileBoth(src("4", 1025));
      const x = logits(4, 1025, 5);
      x.data[3 * 1025 + 600] = NaN;
      const labels = labelsFor(4, 1025);
      for (const fn of ["f", "g"]) {
        const a = await run(fused, build, fn, x, labels);
        expect(Number.isNaN(Number(a.out[0]!.data[0]))).toBe(true);
        sameAsUnfused(a.out, (await run(plain, build, fn, x, labels)).out, `${build} ${fn} NaN`);
      }
    });

    it("symbolic rows (B = 6, 1025 classes)", async () => {
      const { fused } = compileBoth(src("B", 1025));
      const x = logits(6, 1025, 21);
      const labels = labelsFor(6, 1025);
      for (const [fn, kernel] of [["f", "lse_rows_max"], ["g", "exp_sum_rows_max"]] as const) {
        const a = await run(fused, build, fn, x, labels);
        expect(a.kernels.filter((k) => k.startsWith(kernel))).toHaveLength(1);
        const ref = evaluateGraph(fused.functions.find((h) => h.name === fn)!, { x, labels: { dtype: "i32", shape: [6], data: labels } }, new Map());
        a.out.forEach((t, k) => expectClose(t, ref[k]!, `${build} symbolic ${fn} output ${k}`, 2e-5, 1e-6));
      }
    });

    it("PyTorch's cross_entropy loss and gradient", async () => {
      const goldens = JSON.parse(readFileSync(new URL("./lse-rows-goldens.json", import.meta.url), "utf8")) as { cases: { n: number; x: (number | string)[]; labels: number[]; loss: number; grad: (number | string)[] }[] };
      for (const cs of goldens.cases) {
        const { fused } = compileBoth(src("4", cs.n));
        const a = await run(fused, build, "g", { dtype: "f32", shape: [4, cs.n], data: cs.x.map(dec) }, cs.labels);
        expect(a.kernels.filter((k) => k.startsWith("exp_sum_rows_max"))).toHaveLength(1);
        const loss = Number(a.out[0]!.data[0]);
        expect(Math.abs(loss - cs.loss), `torch loss, ${cs.n} classes: ${loss} vs ${cs.loss}`).toBeLessThanOrEqual(2e-6 * Math.abs(cs.loss));
        cs.grad.map(dec).forEach((want, i) => {
          const got = Number(a.out[1]!.data[i]);
          // (softmax - one-hot) / 4: near the label the difference cancels, leaving f32's absolute error of 1 / 4.
          expect(Math.abs(got - want), `torch grad, ${cs.n} classes [${i}]: ${got} vs ${want}`).toBeLessThanOrEqual(1e-5 * Math.abs(want) + 6e-8);
        });
      }
    });

    it("two threads (rows split between them): the one-thread bits", async () => {
      // 128 x 1025 elements: past the split threshold (runtime/wasm/threads-split.ts, 2^17).
      const { fused } = compileBoth(src("128", 1025));
      const x = logits(128, 1025, 9);
      const labels = labelsFor(128, 1025);
      for (const [fn, kernel] of [["f", "lse_rows_max"], ["g", "exp_sum_rows_max"]] as const) {
        const one = await run(fused, build, fn, x, labels, 1);
        const two = await run(fused, build, fn, x, labels, 2);
        expect(two.kernels.filter((k) => k.startsWith(kernel))).toHaveLength(1);
        for (let k = 0; k < one.out.length; k++) expect(Array.from(two.out[k]!.data), `${fn} output ${k}`).toEqual(Array.from(one.out[k]!.data));
      }
    }, 60_000);
  });
}
