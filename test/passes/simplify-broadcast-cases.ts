// Shared by simplify-broadcast.test.ts (plain build) and simplify-broadcast.relaxed.test.ts: broadcast_to operands of
// arithmetic folded away (passes/simplify-broadcast.ts). The softmax / log_softmax gradients lose their two full-size
// broadcast copies (autodiff's seed and the row sum's gradient) and the product with 1; value and gradient against
// PyTorch (test/passes/broadcast-fold-goldens.json from scripts/torch-broadcast-fold-goldens.py) and the float64
// reference interpreter on the IR built without the simplify pass, known and symbolic rows, 2 threads bit for bit
// against 1; broadcasts that carry the result's shape stay.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";

interface Case { fn: "sum_softmax" | "mean_softmax" | "sum_log_softmax"; n: number; x: (number | string)[]; t: number[]; value: number; grad: (number | string)[] }
const GOLD = JSON.parse(readFileSync(new URL("./broadcast-fold-goldens.json", import.meta.url), "utf8")) as { cases: Case[] };
const dec = (v: number | string) => (typeof v === "number" ? v : v === "-inf" ? -Infinity : v === "inf" ? Infinity : NaN);

const BODY = { sum_softmax: "sum(softmax(x, axis: -1) * t)", mean_softmax: "mean(softmax(x, axis: -1) * t)", sum_log_softmax: "sum(log_softmax(x, axis: -1) * t)" };
const src = (c: Case, rows: string) => `
fn f(x: f32[${rows}, ${c.n}], t: f32[${rows}, ${c.n}]) -> f32 { return ${BODY[c.fn]} }
fn g(x: f32[${rows}, ${c.n}], t: f32[${rows}, ${c.n}]) -> (f32, f32[${rows}, ${c.n}]) { return value_and_grad(f)(x, t) }
fn d(x: f32[${rows}, ${c.n}], t: f32[${rows}, ${c.n}]) -> f32[${rows}, ${c.n}] { return grad(f)(x, t) }
`;
const ir = (s: string, skip: string[] = []): IRModule => {
  const r = compileToIR(s, "fold.kiln", [], skip);
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  return r.ir;
};

async function run(m: IRModule, build: "plain" | "relaxed", fn: string, inputs: Record<string, Input>, threads = 1) {
  const b = await buildWasm(m, "t", { wat: false });
  const mod = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads });
  if (mod.threads !== threads) throw new Error(`asked for ${threads} threads, got ${mod.threads}: ${mod.fallbackReason}`);
  try {
    const out = mod.call(fn, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)])));
    return { out: Array.isArray(out) ? out : [out], steps: b.manifest.functions.find((f) => f.name === fn)!.steps };
  } finally {
    mod.dispose();
  }
}

export function foldSuite(): void {
  const build = process.execArgv.includes("--experimental-wasm-relaxed-simd") ? "relaxed" as const : "plain" as const;
  describe(`broadcast_to folded into arithmetic (${build})`, () => {
    for (const c of GOLD.cases) {
      for (const rows of ["4", "B"]) {
        it(`${c.fn}, rows of ${c.n}, ${rows === "B" ? "symbolic" : "known"} rows: value and gradient vs PyTorch and the reference`, async () => {
          const s = src(c, rows);
          const m = ir(s);
          const x: Input = { dtype: "f32", shape: [4, c.n], data: c.x.map(dec) };
          const t: Input = { dtype: "f32", shape: [4, c.n], data: c.t };
          const a = await run(m, build, "g", { x, t });
          // The gradient-only function: no broadcast copy left, the backward is one softmax_grad_rows kernel
          // (codegen/plan-rows-grad.ts; with KILN_SOFTMAX_GRAD_ROWS=0 a reduce and an elementwise kernel, and for
          // log_softmax the [rows, 1] division between them) after the forward's exp-and-sum rows; rows of one need
          // no reduce kernel (their sums are elementwise). mean's [1, 1] seed 1 / numel is a constant folded by
          // simplify over known rows; over symbolic rows it divides by a dim_size the runtime writes (no step of its
          // own), which is one small kernel more (it counted its elements as the sum of a broadcast 1, a copy and a
          // reduce more before dim_size).
          const d = (await run(m, build, "d", { x, t })).steps.map((st) => st.ops.join(","));
          expect(d.filter((o) => o.includes("broadcast_to")), d.join(" | ")).toEqual([]);
          expect(d.length, d.join(" | ")).toBe(2 + (c.fn === "mean_softmax" && rows === "B" ? 1 : 0));
          const what = `${c.fn} [4, ${c.n}] ${rows}`;
          expectClose(a.out[0]!, { dtype: "f32", shape: [], data: [c.value] }, `${what} value vs torch`, 2e-5, 1e-5);
          expectClose(a.out[1]!, { dtype: "f32", shape: [4, c.n], data: c.grad.map(dec) }, `${what} gradient vs torch`, 2e-5, 1e-6);
          // The reference on the graph as autodiff wrote it (simplify off: the broadcasts still there).
          const ref = evaluateGraph(ir(s, ["simplify"]).functions.find((f) => f.name === "g")!, { x, t }, new Map());
          expectClose(a.out[0]!, ref[0]!, `${what} value vs reference`, 2e-5, 1e-5);
          expectClose(a.out[1]!, ref[1]!, `${what} gradient vs reference`, 2e-5, 1e-6);
          if (c.n === 257) {
            const two = await run(m, build, "g", { x, t }, 2);
            for (let k = 0; k < 2; k++) expect(Array.from(two.out[k]!.data as Float32Array), `${what} output ${k}, 2 threads`).toEqual(Array.from(a.out[k]!.data as Float32Array));
          }
        });
      }
    }

    // Large enough (2^18 elements) for the row kernels and the fused kernels to be split between threads.
    it("softmax and log_softmax gradients over 256x1024, causal: 2 threads bit for bit as 1, values as the reference", async () => {
      for (const body of [BODY.sum_softmax, BODY.sum_log_softmax]) {
        const s = `fn f(x: f32[256, 1024], t: f32[256, 1024]) -> f32 { return ${body} }
fn g(x: f32[256, 1024], t: f32[256, 1024]) -> (f32, f32[256, 1024]) { return value_and_grad(f)(x, t) }`;
        const x = lcgInput([256, 1024], 5), t = lcgInput([256, 1024], 6);
        const mask = body.includes("log_") ? -1e30 : -Infinity;
        x.data = x.data.map((v, k) => (k % 1024 > 4 * Math.floor(k / 1024) ? mask : v * 8));
        const m = ir(s);
        const one = await run(m, build, "g", { x, t }), two = await run(m, build, "g", { x, t }, 2);
        expect(one.steps.filter((st) => st.ops.includes("broadcast_to"))).toEqual([]);
        for (let k = 0; k < 2; k++) expect(Array.from(two.out[k]!.data as Float32Array).every((v, i) => Object.is(v, (one.out[k]!.data as Float32Array)[i])), `${body} output ${k}`).toBe(true);
        const ref = evaluateGraph(ir(s, ["simplify"]).functions.find((f) => f.name === "g")!, { x, t }, new Map());
        expectClose(one.out[1]!, ref[1]!, `${body} gradient vs reference`, 2e-5, 1e-6);
      }
    });

    it("folds only where the other operand gives the shape (reference values)", async () => {
      const s = `
fn both(a: f32[3, 1], b: f32[1, 4]) -> f32[3, 4] { return broadcast_to(a, [3, 4]) * broadcast_to(b, [3, 4]) }
fn one(a: f32[3, 1], b: f32[3, 1]) -> f32[3, 4] { return broadcast_to(a, [3, 4]) - broadcast_to(b, [3, 4]) }
fn unary(a: f32[3, 1]) -> f32[3, 4] { return exp(broadcast_to(a, [3, 4])) }`;
      const m = ir(s);
      const ops = (fn: string) => m.functions.find((f) => f.name === fn)!.nodes.map((n) => n.op);
      expect(ops("both").filter((o) => o === "broadcast_to")).toEqual([]);
      expect(ops("one").filter((o) => o === "broadcast_to")).toEqual(["broadcast_to"]);
      expect(ops("unary").filter((o) => o === "broadcast_to")).toEqual(["broadcast_to"]);
      const a: Input = { dtype: "f32", shape: [3, 1], data: [1, -2, 3.5] };
      const b4: Input = { dtype: "f32", shape: [1, 4], data: [2, 0.5, -1, 4] };
      const b3: Input = { dtype: "f32", shape: [3, 1], data: [0.25, 7, -3] };
      // By hand: both[i][j] = a[i] * b[j]; one[i][j] = a[i] - b[i].
      const r1 = await run(m, build, "both", { a, b: b4 });
      expect(Array.from(r1.out[0]!.data as Float32Array)).toEqual([2, 0.5, -1, 4, -4, -1, 2, -8, 7, 1.75, -3.5, 14]);
      const r2 = await run(m, build, "one", { a, b: b3 });
      expect(Array.from(r2.out[0]!.data as Float32Array)).toEqual([0.75, 0.75, 0.75, 0.75, -9, -9, -9, -9, 6.5, 6.5, 6.5, 6.5]);
    });
  });
}
