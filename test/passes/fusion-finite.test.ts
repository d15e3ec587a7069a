// all_finite fused into the kernels producing its inputs (passes/fusion-finite.ts): the loss scaler's overflow
// check of a training step launches no kernel that reads a gradient again, and every way a value can be
// produced (matmul with and without epilogue, reduction, elementwise kernel, a copy that falls back to a `finite`
// kernel) gives the reference interpreter's answer, fused and unfused, on 1 and 2 threads.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm, type Precision } from "../../compiler/compile.js";
import { planModule } from "../../compiler/codegen/plan.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { referenceParams } from "../../compiler/cli/run.js";

function ir(src: string, skip: string[] = [], precision?: Precision): IRModule {
  const r = compileToIR(src, "finite.kiln", [], skip, precision ? { precision } : {});
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "finite.kiln": src }));
  return r.ir;
}

const kindOf = (plan: ReturnType<typeof planModule>) => new Map(plan.kernels.map((k) => [k.name, k.spec]));

describe("all_finite in training steps: checked by the kernels that store the gradients", () => {
  const cases = [
    ["mlp_train.kiln", "Sgd.step", "mixed-f16"], ["mlp_train.kiln", "Adam.step", "mixed-f16"],
    ["mnist_mlp.kiln", "Train.step", "mixed-f16"], ["mnist_cnn.kiln", "Train.step", "mixed-f16"],
  ] as const;
  for (const [file, step, precision] of cases) {
    it(`${file} ${step} ${precision}: one flag, filled once, no finite kernel, every gradient's kernel clears it`, () => {
      const m = ir(readFileSync(`dsl-examples/${file}`, "utf8"), [], precision);
      const g = m.functions.find((f) => f.name === step)!;
      const checks = g.nodes.filter((n) => n.op === "all_finite");
      expect(checks).toHaveLength(1);
      const plan = planModule(m);
      const specs = kindOf(plan);
      const fn = plan.functions.find((f) => f.name === step)!;
      const F = checks[0]!.id;
      const writers = fn.steps.filter((s) => s.buffers.slice(s.buffers.length - (s.outputs ?? 1)).includes(F));
      // The fill, then one kernel per gradient that stores it (weights: matmuls; biases: reductions).
      expect(specs.get(writers[0]!.kernel)).toMatchObject({ kind: "elementwise", inputs: [] });
      expect(fn.steps.filter((s) => specs.get(s.kernel)!.kind === "finite")).toEqual([]);
      const grads = checks[0]!.inputs.length;
      expect(writers.slice(1).map((s) => specs.get(s.kernel)!.kind).every((k) => k === "matmul" || k === "reduce")).toBe(true);
      expect(writers.length - 1).toBe(new Set(writers.slice(1)).size);
      expect(writers.length - 1).toBeLessThanOrEqual(grads);
      for (const s of writers.slice(1)) expect((specs.get(s.kernel) as { flag?: true }).flag).toBe(true);
    });
  }

  it("a gradient that is a view of a constant (a param the loss ignores) needs no check; a sliced param's does", () => {
    const src = `
model M {
  param w: f32[4] = constant(0.5)
  param unused: f32[2, 3] = zeros()
  fn loss(x: f32[4]) -> f32 { return sum(slice(w * x, 0, 1, 3) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1), loss_scale: dynamic() }`;
    const plan = planModule(ir(src));
    const specs = kindOf(plan);
    const fn = plan.functions.find((f) => f.name === "T.step")!;
    const finite = fn.steps.filter((s) => specs.get(s.kernel)!.kind === "finite");
    // w's gradient is an elementwise product of the padded slice gradient: its kernel checks it; unused's is 0.
    expect(finite).toEqual([]);
    const flagged = fn.steps.filter((s) => (specs.get(s.kernel) as { flag?: true }).flag);
    expect(flagged).toHaveLength(1);
  });

  it("with fusion off, each gradient gets a finite kernel (the fallback)", () => {
    const m = ir(readFileSync("dsl-examples/mlp_train.kiln", "utf8"), ["fusion"], "mixed-f16");
    const plan = planModule(m);
    const specs = kindOf(plan);
    const fn = plan.functions.find((f) => f.name === "Sgd.step")!;
    expect(fn.steps.filter((s) => specs.get(s.kernel)!.kind === "finite")).toHaveLength(4);
  });
});

const SRC = `
model M {
  param w: f32[12, 7] = xavier()
  param b: f32[7] = zeros()
  param v: f32[10] = constant(0.25)
  // A matmul epilogue, a plain elementwise kernel, a reduction and a copy (slice of a concat): every host kind.
  fn f(x: f32[B, 12]) -> bool { return all_finite(x @ w + b, x * 2) }
  fn g(x: f32[B, 12]) -> bool { return all_finite(sum(x, axis: 0), x @ w) }
  fn h(x: f32[B, 12]) -> bool { return all_finite(slice(concat(x, x, axis: 1), 1, 9, 14)) }
  fn loss(x: f32[B, 12]) -> f32 { return sum(relu(x @ w + b) ** 2) + sum(slice(v, 0, 2, 7) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.01, momentum: 0.9), loss_scale: dynamic(init: 1024, interval: 100) }`;

async function modules(src: string): Promise<{ name: string; mod: KilnModule }[]> {
  const out: { name: string; mod: KilnModule }[] = [];
  for (const [name, skip] of [["fused", []], ["unfused", ["fusion"]]] as const) {
    const b = await buildWasm(ir(src, [...skip]), "finite");
    for (const threads of [1, 2]) out.push({ name: `${name}, ${threads} thread(s)`, mod: await loadKilnModule(b.manifest, b.wasm, { threads }) });
  }
  return out;
}

/** x [B, 12] of small values with `bad` planted at flat index `at` (none when undefined). */
function input(B: number, at?: number, bad = Infinity): number[] {
  const x = Array.from({ length: B * 12 }, (_, i) => Math.sin(i * 1.7) * 0.5);
  if (at !== undefined) x[at] = bad;
  return x;
}

describe("all_finite on wasm: every producing kernel kind, fused and unfused, 1 and 2 threads, vs the reference", () => {
  it("finite inputs give true; one Inf, -Inf or NaN anywhere gives false", async () => {
    const m = ir(SRC);
    const mods = await modules(SRC);
    const params = referenceParams(m, 0);
    for (const fn of ["M.f", "M.g", "M.h"]) {
      const g = m.functions.find((f) => f.name === fn)!;
      for (const B of [1, 5, 37]) {
        const spots = [undefined, 0, 5, B * 6 + 5, B * 12 - 1];
        for (const at of spots) {
          for (const bad of at === undefined ? [0] : [Infinity, -Infinity, NaN]) {
            const x = input(B, at, bad);
            const want = evaluateGraph(g, { x: { data: x, shape: [B, 12] } }, params)[0]!.data[0];
            // The answer by hand: h reads columns 9..13 of [x, x], i.e. columns 9, 10, 11, 0 and 1 of x.
            const col = at === undefined ? -1 : at % 12;
            const expected = at === undefined ? 1 : fn === "M.h" ? ([0, 1, 9, 10, 11].includes(col) ? 0 : 1) : 0;
            expect(want, `${fn} reference B=${B} at=${at}`).toBe(expected);
            for (const { name, mod } of mods) {
              const r = mod.call(fn, { x: new Tensor("f32", [B, 12], x) }) as Tensor;
              expect(Number(r.data[0]), `${fn} ${name} B=${B} at=${at} bad=${bad}`).toBe(want);
            }
          }
        }
      }
    }
  });

  it("a training step whose gradients overflow is skipped on every build; a clean one is taken", async () => {
    const mods = await modules(SRC);
    for (const { name, mod } of mods) {
      const w0 = Array.from(mod.getParam("M.w").data as Float32Array);
      mod.call("T.step", { x: new Tensor("f32", [4, 12], input(4, 7, 1e30)) });
      expect(Array.from(mod.getParam("M.w").data as Float32Array), name).toEqual(w0);
      expect(mod.getParam("T.scaler.scale").data[0], name).toBe(512);
      mod.call("T.step", { x: new Tensor("f32", [4, 12], input(4)) });
      expect(Array.from(mod.getParam("M.w").data as Float32Array), name).not.toEqual(w0);
      expect(mod.getParam("T.scaler.good_steps").data[0], name).toBe(1);
    }
  });
});

describe("all_finite on 2 threads: calls big enough to be split (row chunks of the matmul, outer chunks of x * 2)", () => {
  const BIG = `
model N {
  param w: f32[256, 64] = xavier()
  fn fm(x: f32[B, 256]) -> bool { return all_finite(relu(x @ w)) }
  fn fe(x: f32[B, 256]) -> bool { return all_finite(x * 2) }
}`;
  it("a bad element in the first or the last chunk clears the flag; none leaves it set", async () => {
    const b = await buildWasm(ir(BIG), "finite-big");
    const one = await loadKilnModule(b.manifest, b.wasm, { threads: 1 });
    const two = await loadKilnModule(b.manifest, b.wasm, { threads: 2 });
    const B = 600;
    for (const at of [undefined, 3, B * 256 - 2, (B / 2) * 256 + 7]) {
      const x = Array.from({ length: B * 256 }, (_, i) => Math.cos(i * 0.37));
      // +Inf times a positive weight of its row gives +Inf, which relu keeps (xavier draws weights of both signs).
      if (at !== undefined) x[at] = Infinity;
      const want = at === undefined ? 1 : 0;
      for (const [name, mod] of [["1 thread", one], ["2 threads", two]] as const) {
        for (const fn of ["N.fm", "N.fe"]) {
          const r = mod.call(fn, { x: new Tensor("f32", [B, 256], x) }) as Tensor;
          expect(Number(r.data[0]), `${fn} ${name} at=${at}`).toBe(want);
        }
      }
    }
  });
});

describe("all_finite: bad programs get diagnostics", () => {
  it("no argument, or an integer argument", () => {
    for (const [body, code] of [["all_finite()", "K204"], ["all_finite(n)", "K302"]] as const) {
      const r = compileToIR(`fn f(x: f32[3], n: i32[3]) -> bool { return ${body} }`, "bad.kiln");
      expect(r.ir, body).toBeUndefined();
      expect(r.diagnostics[0]!.code, body).toBe(code);
    }
  });
});
