// Hostile programs from issue 15 and the diagnostics they must get (code and position) instead of a stack
// overflow, a wrapped or infinite value, or a position outside the file. Companion of docs/architecture.md "Limits".
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { MAX_NESTING } from "../../compiler/frontend/kiln/nesting.js";
import { MAX_GRAPH_NODES } from "../../compiler/lower/size-limits.js";
import { buildWasm } from "../../compiler/compile.js";

/** [code, line, col] of every diagnostic; the program must not compile. */
function diags(src: string): [string, number, number][] {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir).toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}

function compiles(src: string): void {
  const r = compileToIR(src, "ok.kiln");
  expect(r.diagnostics.map((d) => d.message)).toEqual([]);
  expect(r.ir).toBeDefined();
}

const ret = (e: string) => `fn f(x: f32) -> f32 {\n  return ${e}\n}`;

describe("nesting: K105 at the token that passes the limit, never a stack overflow", () => {
  const over = MAX_NESTING + 1;
  /** Column of the n-th `token` on line 2: the function's '{' is one level, so the limit falls at n = MAX_NESTING. */
  const nth = (src: string, token: string, n: number) => {
    const line = src.split("\n")[1]!;
    let at = -1;
    for (let k = 0; k < n; k++) at = line.indexOf(token, at + 1);
    return at + 1;
  };
  it.each([
    ["256 nested parentheses", ret("(".repeat(256) + "x" + ")".repeat(256)), "("],
    ["256 nested calls", ret("exp(".repeat(256) + "x" + ")".repeat(256)), "("],
    ["2,900 prefix minuses", ret("-".repeat(2900) + "x"), "-"],
    ["1,450 '**'", ret("x" + " ** x".repeat(1450)), "**"],
  ])("%s", (_name, src, token) => {
    expect(diags(src)).toEqual([["K105", 2, nth(src, token, MAX_NESTING)]]);
  });

  it("770 nested ifs", () => {
    const src = `fn f(x: f32) -> f32 {\n  let y = x\n${"if x > 0 { ".repeat(770)}y = x${" }".repeat(770)}\n  return y\n}`;
    const [d] = compileToIR(src, "bad.kiln").diagnostics;
    expect(d).toMatchObject({ code: "K105", span: { line: 3 } });
    expect(d!.message).toMatch(/nested too deeply/);
  });

  it("a long else-if chain", () => {
    const chain = Array.from({ length: 400 }, (_, i) => `if x > ${i} { y = x }`).join(" else ");
    expect(diags(`fn f(x: f32) -> f32 {\n  let y = x\n  ${chain}\n  return y\n}`)[0]![0]).toBe("K105");
  });

  it("the limit itself compiles", () => {
    const n = MAX_NESTING - 2; // the function's own '{' and 'return' expression level
    compiles(ret("(".repeat(n) + "x" + ")".repeat(n)));
    compiles(ret("-".repeat(n) + "x"));
    compiles(ret("x" + " ** x".repeat(n)));
    compiles(`fn f(x: f32) -> f32 {\n  let y = x\n${"if x > 0 { ".repeat(n)}y = y * 2${" }".repeat(n)}\n  return y\n}`);
  });

  it("prefix minuses separated by operators do not add up", () => {
    compiles(ret(Array.from({ length: 3 * over }, () => "-x").join(" + ")));
  });

  it("a sum of 35,000 terms lowers without a stack overflow (the left spine is walked by a loop)", () => {
    const r = compileToIR(ret("x" + " + x".repeat(35000)), "long.kiln");
    expect(r.diagnostics).toEqual([]);
  }, 300_000);

  it("K503: a sum of 60,000 terms passes the IR size limit", () => {
    const [d, ...rest] = compileToIR(ret("x" + " + x".repeat(60000)), "long.kiln").diagnostics;
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ code: "K503", span: { line: 2 } });
    expect(d!.message).toContain(MAX_GRAPH_NODES.toLocaleString("en-US"));
  }, 300_000);

  it("K106: a source file past the size limit", () => {
    const big = `fn f(x: f32) -> f32 {\n  return x\n}\n` + "// padding\n".repeat(400_000);
    expect(diags(big)).toEqual([["K106", 1, 1]]);
  });
});

describe("literals: values float64 or the dtype cannot hold are diagnostics, not Inf or a wrap", () => {
  it.each([
    ["i32 wrap", "fn f(x: i32[3]) -> i32[3] { return x + 3000000000 }", ["K306", 1, 40]],
    ["u8 wrap", "fn f(y: u8[3]) -> u8[3] { return y - 300 }", ["K306", 1, 38]],
    ["negative u8", "fn f(y: u8[3]) -> u8[3] { return y * -1 }", ["K306", 1, 38]],
    ["i8 wrap", "fn f(y: i8[3]) -> i8[3] { return y + 128 }", ["K306", 1, 38]],
    ["f32 overflow", "fn f(x: f32[3]) -> f32[3] { return x * 1e39 }", ["K306", 1, 40]],
    ["f16 overflow", "fn f(x: f16[3]) -> f16[3] { return x + 70000 }", ["K306", 1, 40]],
    ["constant(1e40)", "model M {\n  param w: f32[3] = constant(1e40)\n  fn f(x: f32[3]) -> f32[3] { return x * w }\n}", ["K306", 2, 21]],
    ["constant(300) on u8", "model M {\n  param w: u8[3] = constant(300)\n  fn f(x: u8[3]) -> u8[3] { return x * w }\n}", ["K306", 2, 20]],
    ["a literal past float64", "fn f(x: f32[3]) -> f32[3] { return dropout(x, p: 1e400) }", ["K103", 1, 50]],
    ["a dimension past float64", "fn f(x: f32[B, 1e400]) -> f32 { return sum(x) }", ["K103", 1, 16]],
    ["a dimension of 2^53", "fn f(x: f32[9007199254740992]) -> f32 { return sum(x) }", ["K103", 1, 13]],
  ] as const)("%s", (_name, src, want) => {
    expect(diags(src)).toEqual([want]);
  });

  it("the message names the value, not Infinity", () => {
    const r = compileToIR("fn f(x: f32[B, 1e400]) -> f32 { return sum(x) }", "bad.kiln");
    expect(r.diagnostics[0]!.message).toBe("number literal '1e400' is too large: it overflows float64");
  });

  it("the extremes of each dtype still compile", () => {
    compiles("fn f(x: i32[3]) -> i32[3] { return x + 2147483647 - -2147483648 * 0 }");
    compiles("fn f(y: u8[3]) -> u8[3] { return y + 255 }");
    compiles("fn f(y: i8[3]) -> i8[3] { return y * -128 }");
    compiles("fn f(x: f32[3]) -> f32[3] { return x * 3.4e38 + 1e-50 }");
  });
});

describe("shapes, loops, names", () => {
  it.each([
    ["a 10^10-element param", "model M {\n  param w: f32[100000, 100000] = zeros()\n  fn f(x: f32[3]) -> f32 { return sum(w) }\n}", [["K412", 2, 12]]],
    ["a 2^31-element param", "model M {\n  param w: f32[2147483647] = zeros()\n  fn f(x: f32[3]) -> f32 { return sum(w) }\n}", [["K412", 2, 12]]],
    ["a huge broadcast", "fn f(x: f32[100000]) -> f32 {\n  return sum(broadcast_to(x, [100000, 100000]))\n}", [["K412", 2, 14]]],
    ["one_hot with a negative class count", "fn f(labels: i32[4]) -> f32 {\n  return sum(one_hot(labels, -3))\n}", [["K411", 2, 30]]],
    ["a fractional for bound", "fn f(x: f32) -> f32 {\n  let y = x\n  for i in 0..1.5 { y = y * 2 }\n  return y\n}", [["K304", 3, 15]]],
    ["duplicate parameter names", "fn f(x: f32[3], x: f32[2]) -> f32 {\n  return sum(x)\n}", [["K202", 1, 17]]],
    ["nested loops past the unroll limit", "fn f(x: f32) -> f32 {\n  let y = x\n  for i in 0..4 { for j in 0..300 { y = y * 0.5 } }\n  return y\n}", [["K608", 3, 19]]],
    ["3 x 1024 nested loops", "fn f(x: f32) -> f32 {\n  let y = x\n  for i in 0..1024 { for j in 0..1024 { for k in 0..1024 { y = y * 0.5 } } }\n  return y\n}", [["K608", 3, 22]]],
  ])("%s", (_name, src, want) => {
    expect(diags(src)).toEqual(want);
  });

  it("each diagnostic is reported once even when a type is resolved twice", () => {
    const src = "model M {\n  param w: f32[100000, 100000] = zeros()\n  fn f(x: f32[3]) -> f32 { return sum(w) }\n}";
    expect(compileToIR(src, "bad.kiln").diagnostics).toHaveLength(1);
  });

  it("nested loops within the limit compile", () => {
    compiles("fn f(x: f32) -> f32 {\n  let y = x\n  for i in 0..4 { for j in 0..256 { y = y * 0.5 } }\n  return y\n}");
  });
});

describe("positions: every diagnostic points inside the file, with a caret", () => {
  it("bare \\r line endings", () => {
    const src = "fn\rMy";
    const [d] = compileToIR(src, "cr.kiln").diagnostics;
    expect(d).toMatchObject({ code: "K104", span: { line: 2, col: 3 } });
    expect(formatDiagnostics([d!], { "cr.kiln": src })).toContain(" 2 | My\n   |   ^");
  });

  it("a \\r-separated program gets the same positions as with \\n", () => {
    const lines = ["fn f(x: f32[3]) -> f32[3] {", "  return x + y", "}"];
    const at = (sep: string) => compileToIR(lines.join(sep), "t.kiln").diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
    expect(at("\r")).toEqual(at("\n"));
    expect(at("\r\n")).toEqual(at("\n"));
    const [d] = compileToIR(lines.join("\r"), "t.kiln").diagnostics;
    expect(formatDiagnostics([d!], { "t.kiln": lines.join("\r") })).toContain(" 2 |   return x + y\n   |              ^");
  });
});

describe("a valid program is not rejected", () => {
  it("stop_gradient(cast(argmax(x), f32)) inside a differentiated function", () => {
    compiles("fn f(x: f32[4]) -> f32 { return sum(x * stop_gradient(cast(argmax(x), f32))) }\nfn g(x: f32[4]) -> f32[4] { return grad(f)(x) }");
  });

  it("without stop_gradient the same cast is still K605", () => {
    expect(diags("fn f(x: f32[4]) -> f32 { return sum(x * cast(argmax(x), f32)) }\nfn g(x: f32[4]) -> f32[4] { return grad(f)(x) }")).toEqual([["K605", 1, 46]]);
  });
});

describe("loops and fused chains of any legal size compile (or get a diagnostic naming the limit)", () => {
  const loop = (n: number, body: string) => `fn f(x: f32[4]) -> f32[4] {\n  let y = x\n  for i in 0..${n} { y = ${body} }\n  return y\n}`;

  it("for i in 0..1024 { y = y * 0.5 + x }: one fused chain of 2,048 ops, split into kernels", async () => {
    const r = compileToIR(loop(1024, "y * 0.5 + x"), "loop.kiln");
    expect(r.diagnostics).toEqual([]);
    const b = await buildWasm(r.ir!, "loop");
    expect(b.manifest.functions[0]!.steps.length).toBeGreaterThan(1);
  }, 300_000);

  it("a 1,024-iteration loop with a 10-term body builds", async () => {
    const r = compileToIR(loop(1024, "y * 0.5 + x * 0.25 + exp(y) * 0.1 - x * y + y / 3 + x - y * 0.3 + x * 2"), "loop.kiln");
    expect(r.diagnostics).toEqual([]);
    await buildWasm(r.ir!, "loop");
  }, 300_000);

  it("K503: a 1,024-iteration loop with a 100-term body", () => {
    const terms = Array.from({ length: 100 }, (_, i) => (i % 2 ? `x * ${(i % 7) + 1}` : `y * 0.${(i % 9) + 1}`)).join(" + ");
    expect(diags(loop(1024, terms)).map(([c]) => c)).toEqual(["K503"]);
  }, 300_000);
});
