// Bad programs and the diagnostics they must get: code, line and column (positions counted by hand from the
// sources below). Covers names, arity, dtypes, shapes (incl. symbolic), params outside models, unsupported use.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";

function diags(src: string) {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir).toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}

const CASES: [string, string, [string, number, number][]][] = [
  ["unknown name", "fn f(x: f32[3]) -> f32[3] {\n  return x + y\n}", [["K201", 2, 14]]],
  ["unknown function", "fn f(x: f32[3]) -> f32[3] {\n  return rleu(x)\n}", [["K203", 2, 10]]],
  ["builtin arity", "fn f(x: f32[3]) -> f32[3] {\n  return exp(x, x)\n}", [["K204", 2, 10]]],
  ["user fn arity", "fn g(a: f32[3], b: f32[3]) -> f32[3] { return a + b }\nfn f(x: f32[3]) -> f32[3] {\n  return g(x)\n}", [["K204", 3, 10]]],
  ["unknown keyword", "fn f(x: f32[2, 3]) -> f32[2] {\n  return sum(x, axes: 1)\n}", [["K205", 2, 17]]],
  ["dtype mismatch", "fn f(x: f32[3], n: i32[3]) -> f32[3] {\n  return x + n\n}", [["K301", 2, 12]]],
  ["float literal with ints", "fn f(n: i32[3]) -> i32[3] {\n  return n * 1.5\n}", [["K301", 2, 14]]],
  ["float-only op on ints", "fn f(n: i32[3]) -> i32[3] {\n  return exp(n)\n}", [["K302", 2, 10]]],
  ["return type mismatch", "fn f(x: f32[3]) -> f32[4] {\n  return x\n}", [["K303", 2, 10]]],
  ["broadcast mismatch", "fn f(a: f32[2, 3], b: f32[4]) -> f32[2, 3] {\n  return a + b\n}", [["K401", 2, 12]]],
  ["matmul mismatch", "fn f(x: f32[4, 784], w: f32[128, 10]) -> f32[4, 10] {\n  return x @ w\n}", [["K402", 2, 12]]],
  ["symbolic dims do not unify", "fn f(a: f32[B, 3], b: f32[C, 3]) -> f32[B, 3] {\n  return a + b\n}", [["K405", 2, 12]]],
  ["symbolic vs concrete argument", "fn g(a: f32[4]) -> f32[4] { return a }\nfn f(x: f32[N]) -> f32[N] {\n  return g(x)\n}", [["K405", 3, 12]]],
  ["axis out of range", "fn f(x: f32[2, 3]) -> f32[2] {\n  return sum(x, axis: 2)\n}", [["K403", 2, 23]]],
  ["reshape count", "fn f(x: f32[2, 3]) -> f32[5] {\n  return reshape(x, [5])\n}", [["K404", 2, 10]]],
  ["param outside model", "model M {\n  param w: f32[3] = zeros()\n  fn id(x: f32[3]) -> f32[3] { return x * w }\n}\nfn f(x: f32[3]) -> f32[3] {\n  return x * w\n}", [["K206", 6, 14]]],
  ["unknown initialiser", "model M {\n  param w: f32[3] = glorot()\n  fn id(x: f32[3]) -> f32[3] { return x * w }\n}", [["K207", 2, 21]]],
  ["duplicate definition", "fn f(x: f32) -> f32 { return x }\nfn f(x: f32) -> f32 { return x }", [["K202", 2, 4]]],
  ["missing return", "fn f(x: f32) -> f32 {\n  let y = x\n}", [["K208", 3, 1]]],
  ["unknown dtype", "fn f(x: f33[3]) -> f32[3] {\n  return x\n}", [["K209", 1, 9]]],
  ["recursion", "fn f(x: f32) -> f32 {\n  return f(x)\n}", [["K210", 2, 10]]],
  ["non-constant axis", "fn f(x: f32[2, 3], a: i32) -> f32[2] {\n  return sum(x, axis: a)\n}", [["K304", 2, 23]]],
  ["bad permutation", "fn f(x: f32[2, 3]) -> f32[3, 2] {\n  return permute(x, [0, 0])\n}", [["K406", 2, 10]]],
  ["slice out of range", "fn f(x: f32[4]) -> f32[2] {\n  return slice(x, axis: 0, start: 3, end: 5)\n}", [["K407", 2, 10]]],
  ["concat mismatch", "fn f(a: f32[2, 3], b: f32[3, 3]) -> f32[2, 6] {\n  return concat(a, b, axis: 1)\n}", [["K408", 2, 10]]],
  ["unreachable after return", "fn f(x: f32) -> f32 {\n  return x\n  let y = x\n}", [["K501", 3, 3]]],
  ["method outside its model", "model M {\n  fn g(x: f32) -> f32 { return x }\n}\nfn f(x: f32) -> f32 {\n  return g(x)\n}", [["K206", 5, 10]]],
];

describe("diagnostics for bad programs (code, line, col)", () => {
  for (const [name, src, want] of CASES) {
    it(name, () => expect(diags(src)).toEqual(want));
  }

  it("reports several errors in one file, in source order", () => {
    const src = "fn f(x: f32[3]) -> f32[3] {\n  let a = x + q\n  let b = exp(x, x)\n  return rleu(x)\n}";
    expect(diags(src)).toEqual([["K201", 2, 15], ["K204", 3, 11], ["K203", 4, 10]]);
  });

  it("does not cascade: one unknown name used twice downstream gives one diagnostic", () => {
    const src = "fn f(x: f32[3]) -> f32[3] {\n  let a = q * 2\n  let b = a + a\n  return b * x\n}";
    expect(diags(src)).toEqual([["K201", 2, 11]]);
  });

  it("hints name the fix", () => {
    const r = compileToIR("fn f(x: f32[4, 784], w: f32[128, 10]) -> f32[4, 10] {\n  return x @ w\n}", "bad.kiln");
    expect(r.diagnostics[0].hint).toBe("matmul needs x[..., K] @ w[K, N]: got [4, 784] @ [128, 10]");
    const s = compileToIR("fn f(value: f32) -> f32 {\n  return valeu\n}", "bad.kiln");
    expect(s.diagnostics[0].hint).toBe("did you mean 'value'?");
  });
});
