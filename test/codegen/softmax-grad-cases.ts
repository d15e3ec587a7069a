// Shared by softmax-grad.test.ts (plain build) and softmax-grad.relaxed.test.ts: the backward of softmax and
// log_softmax over the last axis as one row kernel (codegen/plan-rows-grad.ts, "softmax_grad_rows" /
// "log_softmax_grad_rows") in place of a row-sum kernel and an elementwise kernel (and log_softmax's [rows, 1]
// division). Loss and gradient against PyTorch (softmax-grad-goldens.json, from scripts/torch-softmax-grad-goldens.py),
// the float64 reference interpreter and the build with KILN_SOFTMAX_GRAD_ROWS=0 (the kernels it replaces); rows of
// 7, 1000 and 1027 (scalar tails), symbolic batch, a mean loss, causal attention (its bool mask a tile input), two
// threads against one, a training step, and graphs where the row sum is read elsewhere (no match, still right).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";
import { compileBoth } from "../passes/fusion-helpers.js";

type Build = "plain" | "relaxed";
type Mode = "softmax" | "log_softmax";

const src = (mode: Mode, r: string, c: number) => `
fn l(x: f32[${r}, ${c}], t: f32[${r}, ${c}]) -> f32 { return sum(${mode}(x, axis: -1) * t) }
fn g(x: f32[${r}, ${c}], t: f32[${r}, ${c}]) -> (f32, f32[${r}, ${c}]) { return value_and_grad(l)(x, t) }
`;

/** The kernels with the new row kernel switched off (KILN_SOFTMAX_GRAD_ROWS=0, read when the module is planned). */
async function withoutRows<T>(f: () => Promise<T>): Promise<T> {
  const old = process.env.KILN_SOFTMAX_GRAD_ROWS;
  process.env.KILN_SOFTMAX_GRAD_ROWS = "0";
  try {
    return await f();
  } finally {
    if (old === undefined) delete process.env.KILN_SOFTMAX_GRAD_ROWS;
    else process.env.KILN_SOFTMAX_GRAD_ROWS = old;
  }
}

async function run(ir: IRModule, build: Build, fn: string, inputs: Record<string, Input>, threads = 1) {
  const b = await buildWasm(ir, "t", { wat: false });
  const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads });
  if (m.threads !== threads) throw new Error(`asked for ${threads} threads, got ${m.threads}: ${m.fallbackReason}`);
  try {
    const given = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
    const out = m.call(fn, given);
    return { out: Array.isArray(out) ? out : [out], kernels: b.manifest.functions.find((f) => f.name === fn)!.steps.map((s) => s.kernel) };
  } finally {
    m.dispose();
  }
}

/** The inputs of scripts/torch-softmax-grad-goldens.py, recomputed (exact in f32): 3 rows, row 2 scaled by 10. */
function goldenInputs(n: number): { x: Input; t: Input } {
  const x: number[] = [], t: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < n; j++) {
      x.push((((i * 131 + j * 71) % 97) - 48) / 8 * (i === 2 ? 10 : 1));
      t.push((((i * 53 + j * 29) % 23) - 11) / 4);
    }
  }
  return { x: { dtype: "f32", shape: [3, n], data: x }, t: { dtype: "f32", shape: [3, n], data: t } };
}

function close(a: Tensor[], b: Tensor[], what: string, rtol = 2e-5, atol = 1e-6): void {
  for (let k = 0; k < b.length; k++) {
    const [u, v] = [a[k]!.data, b[k]!.data];
    expect(u.length, `${what} output ${k} length`).toBe(v.length);
    for (let i = 0; i < v.length; i++) expect(Math.abs(Number(u[i]) - Number(v[i])), `${what} output ${k}[${i}]: ${u[i]} vs ${v[i]}`).toBeLessThanOrEqual(rtol * Math.abs(Number(v[i])) + atol);
  }
}

const kernelOf = (mode: Mode) => `${mode}_grad_rows`;

export function softmaxGradSuite(build: Build): void {
  describe(`softmax / log_softmax backward as one row kernel, ${build}`, () => {
    const goldens = JSON.parse(readFileSync(new URL("./softmax-grad-goldens.json", import.meta.url), "utf8")) as { cases: { mode: Mode; n: number; loss: number; grad: number[] }[] };
    for (const cs of goldens.cases) {
      it(`${cs.mode}, rows of ${cs.n}, symbolic batch: PyTorch, the reference and the kernels it replaces`, async () => {
        const { fused } = compileBoth(src(cs.mode, "B", cs.n));
        const { x, t } = goldenInputs(cs.n);
        const a = await run(fused, build, "g", { x, t });
        // The row kernel in place of the row sum and the elementwise kernel (log_softmax: and the [rows, 1] division).
        expect(a.kernels.filter((k) => k.startsWith(kernelOf(cs.mode))), a.kernels.join(" ")).toHaveLength(1);
        const off = await withoutRows(() => run(fused, build, "g", { x, t }));
        expect(off.kernels.some((k) => k.includes("grad_rows")), off.kernels.join(" ")).toBe(false);
        expect(off.kernels.length - a.kernels.length, `${off.kernels.join(" ")} -> ${a.kernels.join(" ")}`).toBe(cs.mode === "softmax" ? 1 : 2);
        // PyTorch (float32 autograd): the loss (both sum up to 3081 f32 terms, log_softmax's of magnitude up to ~600 in
        // row 2, in different orders), and the gradient with an absolute floor for the entries that cancel.
        const loss = Number(a.out[0]!.data[0]);
        expect(Math.abs(loss - cs.loss), `torch loss: ${loss} vs ${cs.loss}`).toBeLessThanOrEqual(1e-4 * Math.abs(cs.loss) + 1e-5);
        cs.grad.forEach((want, i) => {
          const got = Number(a.out[1]!.data[i]);
          expect(Math.abs(got - want), `torch grad [${i}]: ${got} vs ${want}`).toBeLessThanOrEqual(2e-5 * Math.abs(want) + 2e-6);
        });
        const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { x, t }, new Map());
        expectClose(a.out[1]!, ref[1]!, `${build} ${cs.mode} [3, ${cs.n}] gradient vs reference`, 2e-5, 2e-6);
        close(a.out, off.out, `${build} ${cs.mode} [3, ${cs.n}] vs KILN_SOFTMAX_GRAD_ROWS=0`);
      });
    }

    for (const mode of ["softmax", "log_softmax"] as const) {
      for (const c of [1, 3, 4, 16, 17, 33]) {
        it(`${mode}, 5 rows of ${c} with -inf masks: the reference and the unfused build`, async () => {
          const { fused, plain } = compileBoth(src(mode, "5", c));
          const x = lcgInput([5, c], 40 + c);
          x.data = x.data.map((v) => v * 6);
          // -inf in softmax rows: exps of 0 (the gradient there is 0 for softmax, t for log_softmax, as unfused).
          if (mode === "softmax") for (let j = 1; j < c; j += 3) x.data[c + j] = -Infinity;
          const t = lcgInput([5, c], 70 + c);
          const a = await run(fused, build, "g", { x, t });
          // Rows of one: the softmax's gradient is 0 and the planner's shapes (a last axis of 1) are not matched.
          if (c > 1) expect(a.kernels.filter((k) => k.startsWith(kernelOf(mode))), a.kernels.join(" ")).toHaveLength(1);
          const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { x, t }, new Map());
          a.out.forEach((v, k) => expectClose(v, ref[k]!, `${build} ${mode} [5, ${c}] output ${k}`, 2e-5, 1e-6));
          close(a.out, (await run(plain, build, "g", { x, t })).out, `${build} ${mode} [5, ${c}] vs unfused`);
        });
      }
    }

    it("a mean loss (the seed 1 / numel, one value for the whole kernel), symbolic batch: the reference and switched off", async () => {
      for (const mode of ["softmax", "log_softmax"] as const) {
        const { fused } = compileBoth(src(mode, "B", 37).replace(`sum(${mode}`, `mean(${mode}`));
        const x = lcgInput([5, 37], 17), t = lcgInput([5, 37], 18);
        const a = await run(fused, build, "g", { x, t });
        expect(a.kernels.filter((k) => k.startsWith(kernelOf(mode))), a.kernels.join(" ")).toHaveLength(1);
        const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { x, t }, new Map());
        a.out.forEach((v, k) => expectClose(v, ref[k]!, `${build} mean ${mode} output ${k}`, 2e-5, 1e-7));
        close(a.out, (await withoutRows(() => run(fused, build, "g", { x, t }))).out, `${build} mean ${mode} vs KILN_SOFTMAX_GRAD_ROWS=0`, 2e-5, 1e-8);
      }
    });

    // scaled_dot_product_attention(causal: true): dx's group reads the causal mask, bool [T, T] under [B, H, T, T] (a
    // tile: the kernel's outer extent is B * H, its rows T), and the probabilities' gradient comes from a matmul.
    const attention = (T: number, D: number) => `
fn l(q: f32[B, 2, ${T}, ${D}], k: f32[B, 2, ${T}, ${D}], v: f32[B, 2, ${T}, ${D}]) -> f32 {
  return sum(scaled_dot_product_attention(q, k, v, causal: true) * v)
}
fn g(q: f32[B, 2, ${T}, ${D}], k: f32[B, 2, ${T}, ${D}], v: f32[B, 2, ${T}, ${D}]) -> f32[B, 2, ${T}, ${D}] { return grad(l)(q, k, v) }
`;
    for (const [T, D] of [[7, 3], [33, 4], [64, 16]] as const) {
      it(`causal attention (a bool mask tile), T = ${T}, symbolic batch: the reference and switched off`, async () => {
        const { fused } = compileBoth(attention(T, D));
        const shape = [3, 2, T, D];
        const [q, k, v] = [31, 32, 33].map((seed) => lcgInput(shape, seed));
        const a = await run(fused, build, "g", { q: q!, k: k!, v: v! });
        expect(a.kernels.filter((x) => x.startsWith("softmax_grad_rows")), a.kernels.join(" ")).toHaveLength(1);
        const ref = evaluateGraph(fused.functions.find((f) => f.name === "g")!, { q: q!, k: k!, v: v! }, new Map());
        expectClose(a.out[0]!, ref[0]!, `${build} attention T ${T} dq`, 2e-5, 1e-6);
        const off = await withoutRows(() => run(fused, build, "g", { q: q!, k: k!, v: v! }));
        expect(off.kernels.length - a.kernels.length, `${off.kernels.join(" ")} -> ${a.kernels.join(" ")}`).toBe(1);
        close(a.out, off.out, `${build} attention T ${T} vs KILN_SOFTMAX_GRAD_ROWS=0`);
      });
    }

    it("two threads (rows split between them): the one-thread bits", async () => {
      // 130 x 1027 elements: past the split threshold (runtime/wasm/threads-split.ts, 2^17).
      for (const mode of ["softmax", "log_softmax"] as const) {
        const { fused } = compileBoth(src(mode, "130", 1027));
        const x = lcgInput([130, 1027], 5), t = lcgInput([130, 1027], 6);
        const one = await run(fused, build, "g", { x, t }, 1);
        const two = await run(fused, build, "g", { x, t }, 2);
        expect(two.kernels.filter((k) => k.startsWith(kernelOf(mode)))).toHaveLength(1);
        for (let k = 0; k < 2; k++) expect(Array.from(two.out[k]!.data), `${mode} output ${k}`).toEqual(Array.from(one.out[k]!.data));
      }
      // The attention's kernel split over its outer extent (batch x heads), the mask tile shared.
      const { fused } = compileBoth(attention(64, 16).replace(/\bB\b/g, "40"));
      const [q, k, v] = [41, 42, 43].map((seed) => lcgInput([40, 2, 64, 16], seed));
      const one = await run(fused, build, "g", { q: q!, k: k!, v: v! }, 1);
      const two = await run(fused, build, "g", { q: q!, k: k!, v: v! }, 2);
      expect(two.kernels.filter((x) => x.startsWith("softmax_grad_rows"))).toHaveLength(1);
      expect(Array.from(two.out[0]!.data), "attention dq").toEqual(Array.from(one.out[0]!.data));
    }, 60_000);

    it("the row sum read elsewhere (an output of the function): not matched, still right", async () => {
      for (const mode of ["softmax", "log_softmax"] as const) {
        const { fused } = compileBoth(src(mode, "4", 19));
        const g = fused.functions.find((f) => f.name === "g")!;
        // The backward's row sum (the one not read by the forward's exps): made a third output of g.
        const sum = g.nodes.find((n) => n.op === "sum" && n.type.shape.length === 2 && n.type.shape[1] === 1 && g.nodes[n.inputs[0]!]!.op !== "exp")!;
        expect(sum, "the backward's row sum").toBeDefined();
        const ir: IRModule = { ...fused, functions: fused.functions.map((f) => (f === g ? { ...g, outputs: [...g.outputs, { name: "r", node: sum.id }] } : f)) };
        const x = lcgInput([4, 19], 8), t = lcgInput([4, 19], 9);
        const a = await run(ir, build, "g", { x, t });
        expect(a.kernels.some((k) => k.includes("grad_rows")), a.kernels.join(" ")).toBe(false);
        const ref = evaluateGraph(ir.functions.find((f) => f.name === "g")!, { x, t }, new Map());
        expect(a.out).toHaveLength(3);
        a.out.forEach((v, k) => expectClose(v, ref[k]!, `${build} ${mode} output ${k}`, 2e-5, 1e-6));
      }
    });

    it("a training step (attention-like: softmax of a product, the probabilities read by a matmul): as switched off and unfused", async () => {
      const model = `model M {
  param w: f32[8, 12] = normal(0.0, 0.5)
  param v: f32[12, 5] = normal(0.0, 0.5)
  fn loss(x: f32[B, 8], t: f32[B, 5]) -> f32 {
    let p = softmax(x @ w, axis: -1)
    let q = log_softmax(p @ v, axis: -1)
    return -sum(q * t)
  }
}
train T {
  model: M
  loss: loss
  optimizer: sgd(lr: 0.5)
}`;
      const { fused, plain } = compileBoth(model);
      const x = lcgInput([6, 8], 3);
      const t = { dtype: "f32" as const, shape: [6, 5], data: Array.from({ length: 30 }, (_, i) => (i % 5 === i % 3 ? 1 : 0)) };
      const step = async (ir: IRModule) => {
        const b = await buildWasm(ir, "t", { wat: false });
        const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { seed: 7 });
        try {
          const losses = [0, 1, 2].map(() => Number((m.call("T.step", { x: new Tensor("f32", x.shape, x.data), t: new Tensor("f32", t.shape, t.data) }) as Tensor).data[0]));
          return { losses, w: Array.from(m.getParam("M.w").data), v: Array.from(m.getParam("M.v").data), kernels: b.manifest.functions.find((f) => f.name === "T.step")!.steps.map((s) => s.kernel) };
        } finally {
          m.dispose();
        }
      };
      const a = await step(fused);
      const off = await withoutRows(() => step(fused));
      const b = await step(plain);
      expect(a.kernels.filter((k) => k.includes("grad_rows")).length, a.kernels.join(" ")).toBeGreaterThanOrEqual(1);
      for (const other of [off, b]) {
        a.losses.forEach((l, i) => expect(Math.abs(l - other.losses[i]!), `loss ${i}: ${l} vs ${other.losses[i]}`).toBeLessThanOrEqual(1e-5 * Math.abs(l) + 1e-6));
        a.w.forEach((w, i) => expect(Math.abs(w - other.w[i]!), `w[${i}]`).toBeLessThanOrEqual(1e-5));
        a.v.forEach((v, i) => expect(Math.abs(v - other.v[i]!), `v[${i}]`).toBeLessThanOrEqual(1e-5));
      }
      // The loss decreases (a step that is right moves downhill).
      expect(a.losses[2]!).toBeLessThan(a.losses[0]!);
    });
  });
}
