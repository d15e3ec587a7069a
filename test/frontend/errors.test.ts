// Frontend on malformed input: each error's code and exact position, recovery to report several errors,
// and the guarantee that parseProgram never throws.

import { describe, expect, it } from "vitest";
import type { FnDecl, ModelDecl } from "../../compiler/frontend/kiln/ast.js";
import { parseProgram } from "../../compiler/frontend/kiln/parse.js";
import { diags } from "./helpers.js";

describe("lexical errors", () => {
  it("K101: unknown character, and lexing continues after it", () => {
    expect(diags("fn f(x: f32) -> f32 {\n  return x $ 1 # 2\n}")).toEqual([
      "K101 2:12 unexpected character '$'",
      "K101 2:16 unexpected character '#'",
    ]);
  });

  it("K101: a run of unknown characters is one diagnostic", () => {
    const [d] = parseProgram("fn f() { return 1 }\n$$", "t.kiln").diagnostics;
    expect(d).toMatchObject({ code: "K101", message: "unexpected characters '$$'", span: { line: 2, col: 1, length: 2 } });
  });

  it.each([
    ["1.2.3", 5],
    ["1e", 2],
    ["1e+", 3],
    ["12abc", 5],
    ["1.", 2],
  ])("K103: malformed number %s", (num, length) => {
    const { diagnostics } = parseProgram(`fn f() {\n  let y = ${num}\n  return y\n}`, "t.kiln");
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({
      code: "K103",
      message: `malformed number literal '${num}'`,
      span: { file: "t.kiln", line: 2, col: 11, length },
    });
  });

  it("K103: a malformed number still parses as a literal, so nothing else is reported", () => {
    expect(diags("fn f() { return 1e + 1.2.3 * 2 }")).toEqual([
      "K103 1:17 malformed number literal '1e'",
      "K103 1:22 malformed number literal '1.2.3'",
    ]);
  });

  it("K104: unterminated block comment", () => {
    expect(diags("fn f() { return 1 }\n  /* oops\nfn g() {}")).toEqual([
      "K104 2:3 unexpected end of file: block comment '/*' is never closed",
    ]);
  });
});

describe("syntax errors", () => {
  it("K102: missing ')' points at the token found instead", () => {
    expect(diags("fn f(x: f32 {\n  return x\n}")).toEqual(["K102 1:13 expected ')' but found '{'"]);
  });

  it("K102: missing ')' in a call", () => {
    expect(diags("fn f() {\n  let a = g(1, 2\n  return a\n}")).toEqual(["K102 3:3 expected ')' but found 'return'"]);
  });

  it("K104: unterminated '{' at end of file names the opening brace", () => {
    const src = "fn f(x: f32) -> f32 {\n  let y = x\n  return y\n";
    const { diagnostics } = parseProgram(src, "t.kiln");
    expect(diagnostics).toEqual([
      {
        code: "K104",
        message: "unexpected end of file: '{' opened at 1:21 is never closed",
        span: { file: "t.kiln", line: 3, col: 11, length: 1 },
        hint: undefined,
        severity: "error",
      },
    ]);
  });

  it("K104: names the innermost unclosed bracket", () => {
    expect(diags("fn f() {\n  return g(1,")).toEqual(["K104 2:14 unexpected end of file: '(' opened at 2:11 is never closed"]);
  });

  it("K104: end of file with no open bracket says what was expected", () => {
    expect(diags("fn f() ->")).toEqual(["K104 1:10 unexpected end of file: expected a type"]);
  });

  it("K102: 'let' without a name", () => {
    expect(diags("fn f() {\n  let = 3\n  return 1\n}")).toEqual(["K102 2:7 expected a name but found '='"]);
  });

  it("K102: 'fn' without a name", () => {
    expect(diags("fn (x: f32) { return x }")).toEqual(["K102 1:4 expected a name but found '('"]);
  });

  it("K102: missing expression", () => {
    expect(diags("fn f() {\n  return\n}")).toEqual(["K102 3:1 expected an expression but found '}'"]);
  });

  it("K102: comparison is non-associative", () => {
    expect(diags("fn f() { return a < b < c }")).toEqual(["K102 1:23 expected '}' but found '<'"]);
  });

  it("K102: a dimension must be an integer", () => {
    expect(diags("fn f(x: f32[2.5]) { return x }")).toEqual(["K102 1:13 expected an integer dimension but found '2.5'"]);
  });

  it("K102: stray tokens at top level and in a model body", () => {
    expect(diags("let x = 1\nfn f() { return 1 }")).toEqual(["K102 1:1 expected 'fn', 'model', 'train' or an attribute but found 'let'"]);
    expect(diags("model M {\n  let x = 1\n}")).toEqual(["K102 2:3 expected 'param', 'fn' or '}' but found 'let'"]);
  });

  it("reports two separate syntax errors in one file and keeps the rest of the program", () => {
    const src = [
      "fn f() {", //
      "  let a = (1 + 2",
      "  return a",
      "}",
      "fn g() {",
      "  let b = 3 +* 4",
      "  return b",
      "}",
      "fn h() { return 0 }",
    ].join("\n");
    const { program, diagnostics } = parseProgram(src, "t.kiln");
    expect(diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`)).toEqual([
      "K102 3:3 expected ')' but found 'return'",
      "K102 6:14 expected an expression but found '*'",
    ]);
    expect(program.items.map((i) => i.name)).toEqual(["f", "g", "h"]);
  });

  it("recovers inside a model and keeps later members", () => {
    const { program, diagnostics } = parseProgram("model M {\n  param w: f32[2] = zeros(\n  fn f() { return w }\n}", "t.kiln");
    expect(diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col}`)).toEqual(["K102 3:3"]);
    const model = program.items[0] as ModelDecl;
    expect(model.params.map((p) => p.name)).toEqual(["w"]);
    expect(model.methods.map((m) => m.name)).toEqual(["f"]);
  });

  it("collapses recovery fallout right after an error into one diagnostic", () => {
    expect(diags("fn f() { return g(,) }")).toEqual(["K102 1:19 expected ')' but found ','"]);
  });

  it("reports lexing and parsing errors together, sorted by position", () => {
    expect(diags("fn f() {\n  let x = 1.2.3\n  let = $\n}")).toEqual([
      "K103 2:11 malformed number literal '1.2.3'",
      "K102 3:7 expected a name but found '='",
      "K101 3:9 unexpected character '$'",
    ]);
  });
});

describe("argument errors", () => {
  it("K205: positional argument after keyword argument, and parsing continues", () => {
    const { program, diagnostics } = parseProgram("fn f(x: f32) {\n  return sum(axis: 0, x)\n}", "t.kiln");
    expect(diagnostics).toEqual([
      {
        code: "K205",
        message: "positional argument after keyword argument",
        span: { file: "t.kiln", line: 2, col: 23, length: 1 },
        hint: "put positional arguments first",
        severity: "error",
      },
    ]);
    const ret = (program.items[0] as FnDecl).body[0]!;
    expect(ret.kind === "return" && ret.values[0]!.kind).toBe("call");
  });
});

describe("robustness", () => {
  const base = "model M {\n  param w: f32[4, 2] = normal(std: 0.1)\n  fn f(x: f32[B, 4]) -> f32[B, 2] { return relu(x @ w) ** 2 }\n}\nfn g(a: f32) -> (f32, f32) { let b = -a; return a, [b, 1e-3] }\n";

  it("never throws and gives every diagnostic a valid position, for every prefix of a program", () => {
    for (let i = 0; i <= base.length; i++) {
      const src = base.slice(0, i);
      const { program, diagnostics } = parseProgram(src, "t.kiln");
      expect(program.file).toBe("t.kiln");
      const lines = src.split("\n");
      for (const d of diagnostics) {
        expect(d.code).not.toBe("K901");
        expect(d.span.line).toBeGreaterThanOrEqual(1);
        expect(d.span.line).toBeLessThanOrEqual(lines.length);
        expect(d.span.col).toBeGreaterThanOrEqual(1);
        expect(d.span.col).toBeLessThanOrEqual(lines[d.span.line - 1]!.length + 1);
        expect(d.span.length).toBeGreaterThanOrEqual(1);
      }
    }
  });

  it("never throws on token soup", () => {
    const frags = ["(", ")", "{", "}", "[", "]", ",", ":", "=", "->", "fn", "model", "param", "let", "return", "@", "x", "1", "1e", "$", "**", "-", ";", "\n", "/*", "."];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    for (let i = 0; i < 300; i++) {
      let src = "";
      for (let j = rnd(30); j > 0; j--) src += frags[rnd(frags.length)] + " ";
      const { diagnostics } = parseProgram(src, "t.kiln");
      expect(diagnostics.filter((d) => d.code === "K901")).toEqual([]);
    }
  });
});
