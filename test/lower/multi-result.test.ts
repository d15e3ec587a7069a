// A user function with several results, destructured by `let a, b = f(...)` (what K204's message asks for),
// and K204 where its results are used as one value.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { irOf, runBoth } from "../helpers/backend.js";

const TWO = "fn two(x: f32[2]) -> (f32[2], f32[2]) {\n  return x, x * 2\n}\n";

describe("functions with several results", () => {
  it("let a, b = f(x) binds each result, twice in a row", async () => {
    const ir = irOf(`${TWO}fn use(x: f32[2]) -> f32[2] {\n  let a, b = two(x)\n  let c, d = two(a + b)\n  return d - c\n}`);
    const { wasm, ref } = await runBoth(ir, "use", { x: { dtype: "f32", shape: [2], data: [1, -2] } });
    // a + b = 3x; d - c = 2 (3x) - 3x = 3x.
    expect([...wasm[0].data]).toEqual([3, -6]);
    expect([...ref[0].data]).toEqual([3, -6]);
  });
  it("K204 when the results are used as one value, or the names do not match their count", () => {
    const codes = (body: string) => compileToIR(`${TWO}fn use(x: f32[2]) -> f32[2] {\n  ${body}\n}`, "t.kiln").diagnostics.map((d) => `${d.code} ${d.message}`);
    expect(codes("return two(x)")).toContain("K204 'two' returns 2 results; use them with let a, b = two(...)");
    expect(codes("let a = two(x) + x\n  return a")).toContain("K204 'two' returns 2 results; use them with let a, b = two(...)");
    expect(codes("let a, b, c = two(x)\n  return a")).toContain("K204 3 names but the value has 2 result(s)");
    expect(codes("let a, b = two(two(x))\n  return a")[0]).toMatch(/^K204 'two' returns 2 results/);
  });
});
