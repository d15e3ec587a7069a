// Bad uses of gradients, backward rules and loops: each gets a compile-time diagnostic with code and position.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";

function diags(src: string) {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir, "should not compile").toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}

const F = "fn f(x: f32[3]) -> f32 { return sum(x * x) }\n";

const CASES: [string, string, [string, number, number][]][] = [
  ["grad of a non-scalar function", "fn g(x: f32[3]) -> f32[3] { return x * 2 }\nfn d(x: f32[3]) -> f32[3] {\n  return grad(g)(x)\n}", [["K602", 3, 10]]],
  ["grad of a builtin", "fn d(x: f32) -> f32 {\n  return grad(exp)(x)\n}", [["K601", 2, 15]]],
  ["unknown transform", F + "fn d(x: f32[3]) -> f32[3] {\n  return hess(f)(x)\n}", [["K601", 3, 10]]],
  ["wrt an unknown name", F + "fn d(x: f32[3]) -> f32[3] {\n  return grad(f, wrt: y)(x)\n}", [["K604", 3, 23]]],
  ["wrt an integer argument", "fn f(x: f32[3], n: i32) -> f32 { return sum(x) }\nfn d(x: f32[3], n: i32) -> i32 {\n  return grad(f, wrt: n)(x, n)\n}", [["K603", 3, 10]]],
  ["gradient through an integer cast", "fn f(x: f32) -> f32 {\n  return cast(cast(x, i32), f32) * x\n}\nfn d(x: f32) -> f32 { return grad(f)(x) }", [["K605", 2, 15]]],
  ["gradient through argmax", "fn f(x: f32[3]) -> f32 {\n  return cast(argmax(x), f32) * sum(x)\n}\nfn d(x: f32[3]) -> f32[3] { return grad(f)(x) }", [["K605", 2, 15]]],
  ["backward returns too many gradients", "fn r(x: f32[N]) -> f32[N] { return x } backward(dy) {\n  return dy, dy\n}\nfn t(x: f32[3]) -> f32[3] { return r(x) }", [["K606", 2, 10]]],
  ["backward returns the wrong shape", "fn r(x: f32[N]) -> f32[N] { return x } backward(dy) {\n  return sum(dy)\n}\nfn t(x: f32[3]) -> f32[3] { return r(x) }", [["K607", 2, 10]]],
  ["run-time loop without a bound", "fn p(x: f32, n: i32) -> f32 {\n  let y = x\n  for i in 0..n {\n    y = y * y\n  }\n  return y\n}", [["K608", 3, 3]]],
  ["while without a bound", "fn p(x: f32) -> f32 {\n  let y = x\n  while y < 10 {\n    y = y * y\n  }\n  return y\n}", [["K608", 3, 3]]],
  ["loop variable changes shape", "fn p(x: f32[3]) -> f32[3] {\n  let y = x\n  if sum(x) > 0 {\n    y = sum(x)\n  }\n  return y\n}", [["K610", 3, 3]]],
  ["only one branch returns", "fn p(x: f32[3]) -> f32[3] {\n  if sum(x) > 0 {\n    return x\n  }\n  return x * 2\n}", [["K501", 2, 3]]],
  ["non-scalar condition", "fn p(x: f32[3]) -> f32[3] {\n  if x > 0 {\n    return x\n  } else {\n    return -x\n  }\n}", [["K301", 2, 6]]],
  ["assign to an undeclared variable", "fn p(x: f32) -> f32 {\n  z = x\n  return x\n}", [["K201", 2, 3]]],
];

describe("autodiff and control-flow diagnostics", () => {
  for (const [name, src, want] of CASES) it(name, () => expect(diags(src)).toEqual(want));
});
