// No silent or noisy diagnostics (issue 16.8): a mistake in a function body is reported once however many call
// sites inline it; every problem of a train block is reported in one run; a result that does not match the
// declared return type is K303, the code docs/language.md gives it.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";

const diags = (src: string) => compileToIR(src, "t.kiln").diagnostics.map((d) => `${d.span.line}:${d.span.col} ${d.code} ${d.message}`);

describe("diagnostics", () => {
  it("an error inside a function called from three places is reported once", () => {
    const src = [
      "fn g(x: f32[3]) -> f32[3] { return x + ones_like(x) }",
      "fn f(x: f32[3]) -> f32[3] { return g(x) + g(x * 2) + g(x * 3) }",
    ].join("\n");
    const ds = diags(src);
    expect(ds.filter((d) => d.includes("K203")), ds.join("\n")).toHaveLength(1);
  });

  it("a result of the wrong shape, rank or dtype is K303", () => {
    expect(diags("fn f(x: f32[3]) -> f32[4] { return x }")[0]).toMatch(/K303 result 0 of 'f' must be f32\[4\], got f32\[3\]/);
    expect(diags("fn f(x: f32[3]) -> f32[3, 1] { return x }")[0]).toMatch(/K303 result 0 of 'f' must have rank 2/);
    expect(diags("fn f(x: f32[3]) -> i32[3] { return x }")[0]).toMatch(/K303 result 0 of 'f' must be i32\[3\]/);
    // Arguments keep their own codes.
    expect(diags("fn g(x: f32[4]) -> f32[4] { return x }\nfn f(x: f32[3]) -> f32[4] { return g(x) }")[0]).toMatch(/K409 argument 'x' of 'g'/);
  });

  it("every problem of a train block is reported in one run", () => {
    const src = `model M {
  param w: f32[2] = zeros()
  fn loss(x: f32[2]) -> f32 { return sum(w * x) }
}
train T { model: M, loss: lss, optimizer: sgd(lr: 0.1, momentun: 0.9, weight_decay: w), epochs: 3 }`;
    const ds = diags(src);
    expect(ds.some((d) => /K611 unknown train entry 'epochs'/.test(d)), ds.join("\n")).toBe(true);
    expect(ds.some((d) => /K611 loss: must name a method of M/.test(d)), ds.join("\n")).toBe(true);
    expect(ds.some((d) => /K205 sgd has no hyperparameter 'momentun'/.test(d)), ds.join("\n")).toBe(true);
    expect(ds.some((d) => /K304 sgd: weight_decay must be a number/.test(d)), ds.join("\n")).toBe(true);
  });
});
