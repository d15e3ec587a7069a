// Multi-output elementwise kernels (passes/fusion-outputs.ts): consumers of a function output or a param update
// are stored by that value's kernel; results agree with the unfused program and the reference, on one and two
// threads, and the mixed-precision training step has no kernel that only casts (the f16 weight copies).
import { describe, expect, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { printModule } from "../../compiler/ir/print.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose } from "../helpers/backend.js";
import { compileBoth, randomInput } from "./fusion-helpers.js";

describe("multi-output elementwise kernels", () => {
  it("a function output's consumers become extra outputs of its kernel (odd sizes, 1 and 2 threads)", async () => {
    for (const n of [1, 3, 17, 255, 257, 40_000]) {
      const src = `fn f(x: f32[${n}], y: f32[${n}], s: f32[1]) -> (f32[${n}], f32[${n}], f32[${n}]) {
  let a = tanh(x) * 2 + y
  return a, exp(-abs(a)) * s, cast(a > y, f32) + x
}`;
      const { fused, plain } = compileBoth(src);
      const rng = new Rng(n);
      const inputs = { x: randomInput(rng, [n]), y: randomInput(rng, [n]), s: randomInput(rng, [1]) };
      const want = evaluateGraph(plain.functions[0]!, inputs);
      const b = await buildWasm(fused, "mo");
      const steps = b.manifest.functions[0]!.steps;
      expect(steps.length).toBe(1);
      expect(steps[0]!.outputs).toBe(3);
      expect(printModule(fused)).toContain("(stored by the kernel of %");
      for (const threads of [1, 2]) {
        for (const [label, build] of [["fused", b], ["unfused", await buildWasm(plain, "mo")]] as const) {
          const mod = await loadKilnModule(build.manifest, build.wasm, { threads });
          const got = mod.call("f", Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)]))) as Tensor[];
          want.forEach((w, i) => expectClose(got[i]!, w, `${label} ${threads}T n=${n} output ${i}`, 1e-5, 1e-6));
          mod.dispose();
        }
      }
    }
  }, 120_000);

  it("a consumer that reads a value computed after the host, or has another shape, keeps its own kernel", async () => {
    const src = `fn f(x: f32[4, 5], v: f32[5]) -> (f32[4, 5], f32[5], f32[4, 5]) {
  let a = x * 3
  let m = sum(a, axis: 0)
  return a, m, a - m
}`;
    const { fused } = compileBoth(src);
    const b = await buildWasm(fused, "mo");
    const steps = b.manifest.functions[0]!.steps;
    // a is computed (and stored) by the sum's kernel; a - m needs m, so it is a kernel of its own.
    expect(steps.map((s) => [s.ops, s.outputs ?? 1])).toEqual([[["mul", "sum"], 2], [["sub"], 1]]);
    const inputs = { x: randomInput(new Rng(5), [4, 5]), v: randomInput(new Rng(6), [5]) };
    const want = evaluateGraph(fused.functions[0]!, inputs);
    const mod = await loadKilnModule(b.manifest, b.wasm);
    const got = mod.call("f", Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)]))) as Tensor[];
    want.forEach((w, i) => expectClose(got[i]!, w, `output ${i}`, 1e-5, 1e-6));
  });

  it("training: SGD updates stay in place and mixed-f16 weight copies are extra outputs (no cast-only kernel)", async () => {
    const src = `model M {
  param w: f32[6, 3] = xavier()
  param b: f32[3] = zeros()
  fn forward(x: f32[B, 6]) -> f32[B, 3] { return x @ w + b }
  fn loss(x: f32[B, 6], labels: i32[B]) -> f32 { return cross_entropy(forward(x), labels) }
}
train Step { model: M  loss: loss  optimizer: sgd(lr: 0.1) }
`;
    for (const precision of ["f32", "mixed-f16"] as const) {
      const r = compileToIR(src, "t.kiln", [], [], { precision });
      if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "t.kiln": src }));
      const b = await buildWasm(r.ir, "t");
      const fn = b.manifest.functions.find((f) => f.name === "Step.step")!;
      for (const s of fn.steps) expect(s.ops, `${precision}: ${s.kernel}`).not.toEqual(["cast"]);
      const copies = r.ir.params.filter((p) => p.role === "copy").length;
      if (precision === "mixed-f16" && copies > 0) expect(fn.steps.some((s) => (s.outputs ?? 1) > 1)).toBe(true);
    }
  });
});
