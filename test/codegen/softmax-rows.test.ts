// softmax / log_softmax as one row kernel (codegen/plan-rows.ts): which programs get it, and its results on the
// plain build (softmax-rows-cases.ts; the relaxed build in softmax-rows.relaxed.test.ts).
import { describe, expect, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { checkRows, checkTorchGoldens, specialRows } from "./softmax-rows-cases.js";
import { expectClose, irOf, lcgInput, runBoth } from "../helpers/backend.js";

const kernelsOf = async (src: string) => {
  const r = compileToIR(src, "t.kiln");
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  return (await buildWasm(r.ir, "t", { wat: false })).manifest.functions.map((f) => f.steps.map((s) => s.ops.join(",")));
};

describe("softmax rows on one kernel", () => {
  it("the builtins and the written-out decompositions get the row kernel; intermediates read elsewhere keep the old kernels", async () => {
    expect(await kernelsOf("fn f(x: f32[4, 9]) -> f32[4, 9] { return softmax(x, axis: -1) }")).toEqual([["softmax"]]);
    expect(await kernelsOf("fn f(x: f32[2, 4, 9]) -> f32[2, 4, 9] { return log_softmax(x, axis: 2) }")).toEqual([["log_softmax"]]);
    // As `kiln import` writes ONNX Softmax / LogSoftmax, and as a user might.
    expect(await kernelsOf(`fn f(x: f32[4, 9]) -> f32[4, 9] {
      let e = exp(x - max(x, axis: -1, keepdims: true))
      return e / sum(e, axis: -1, keepdims: true)
    }`)).toEqual([["softmax"]]);
    expect(await kernelsOf(`fn f(x: f32[4, 9]) -> f32[4, 9] {
      let z = x - max(x, axis: 1, keepdims: true)
      return z - log(sum(exp(z), axis: 1, keepdims: true))
    }`)).toEqual([["log_softmax"]]);
    // The row max is read again: it must be stored, so the three kernels stay.
    expect((await kernelsOf(`fn f(x: f32[4, 9]) -> f32[4, 9] {
      let m = max(x, axis: -1, keepdims: true)
      let e = exp(x - m)
      return e / sum(e, axis: -1, keepdims: true) + m
    }`))[0]!.length).toBeGreaterThan(1);
    // Over the first axis: not rows.
    expect((await kernelsOf("fn f(x: f32[4, 9]) -> f32[4, 9] { return softmax(x, axis: 0) }"))[0]).not.toEqual(["softmax"]);
  });

  for (const c of [1, 3, 4, 5, 16, 17, 1024, 1025]) {
    it(`rows of ${c}: reference, unfused build, special values`, async () => {
      await checkRows("softmax", specialRows(c), "plain");
      await checkRows("log_softmax", specialRows(c), "plain");
    });
  }

  it("one axis, and a symbolic row count", async () => {
    const x = specialRows(5);
    await checkRows("softmax", { ...x, shape: [40] }, "plain");
    await checkRows("log_softmax", { ...x, shape: [40] }, "plain");
    expect(await kernelsOf("fn f(x: f32[B, 9]) -> f32[B, 9] { return log_softmax(x, axis: -1) }")).toEqual([["log_softmax"]]);
  });

  it("three axes", async () => {
    const x = specialRows(37);
    await checkRows("softmax", { ...x, shape: [2, 4, 37] }, "plain");
    await checkRows("log_softmax", { ...x, shape: [4, 2, 37] }, "plain");
  });

  it("a softmax whose input the max's kernel computes and stores (a stored prologue) keeps its kernels: equals the reference", async () => {
    // Found by test/passes/fusion-fuzz.test.ts (program #44): the row kernel replaced the max's kernel, which was
    // also the one storing x, and read x unwritten (a wrong answer).
    const src = `fn f(x: f32[2, 257], y: f32[2, 257]) -> f32[2, 257] {
      let d = (y - mean(y, axis: 1, keepdims: true)) * (y - mean(y, axis: 1, keepdims: true))
      return softmax(where(softmax(x, axis: 0) > d, softmax(x, axis: 0), d * 0.25), axis: 1)
    }`;
    const { wasm, ref } = await runBoth(irOf(src), "f", { x: lcgInput([2, 257], 3), y: lcgInput([2, 257], 5) });
    expectClose(wasm[0]!, ref[0]!, "softmax over a stored prologue", 1e-5, 1e-6);
  });

  it("PyTorch's float32 softmax and log_softmax", async () => {
    await checkTorchGoldens("plain");
  });
});
