// Frontend on well-formed input: declarations, statements, operator precedence, literals and spans.

import { describe, expect, it } from "vitest";
import type { FnDecl, ModelDecl } from "../../compiler/frontend/kiln/ast.js";
import { parseExpr, parseOk, sexpr } from "./helpers.js";

const MLP = `// A two-layer MLP classifier.
/* block
   comment */
model Mlp {
  param w1: f32[784, 128] = he()
  param b1: f32[128] = zeros()
  param w2: f32[128, 10] = normal(std: 0.01, mean: 0)

  @autocast(f16)
  fn forward(x: f32[B, 784]) -> f32[B, 10] {
    let h = relu(x @ w1 + b1);
    let logits: f32[B, 10] = linear(h, w2, zeros())
    return logits
  }

  fn loss(x: f32[B, 784], y: i32[B]) -> f32 {
    return cross_entropy(forward(x), y)
  }
}

fn stats(x: f32[N],) -> (f32, f32) {
  let m = mean(x, axis: [0], keepdims: false)
  let v = mean((x - m) ** 2, axis: 0)
  return m, v
}
`;

describe("declarations", () => {
  const program = parseOk(MLP);

  it("produces one model and one top-level fn", () => {
    expect(program.file).toBe("t.kiln");
    expect(program.items.map((i) => `${i.kind} ${i.name}`)).toEqual(["model Mlp", "fn stats"]);
  });

  it("parses params with types and initialiser calls", () => {
    const model = program.items[0] as ModelDecl;
    expect(model.params.map((p) => p.name)).toEqual(["w1", "b1", "w2"]);
    const w1 = model.params[0]!;
    expect(w1.type.dtype).toBe("f32");
    expect(w1.type.dims).toEqual([
      { kind: "const", value: 784, span: { file: "t.kiln", line: 5, col: 17, length: 3 } },
      { kind: "const", value: 128, span: { file: "t.kiln", line: 5, col: 22, length: 3 } },
    ]);
    expect(w1.init.callee).toBe("he");
    expect(w1.init.args).toEqual([]);
    expect(w1.init.span).toEqual({ file: "t.kiln", line: 5, col: 29, length: 4 });
    expect(w1.span).toEqual({ file: "t.kiln", line: 5, col: 3, length: 30 });
    expect(sexpr(model.params[2]!.init)).toBe("(call normal std=0.01f mean=0)");
  });

  it("parses methods with attributes, symbolic dims and declared results", () => {
    const model = program.items[0] as ModelDecl;
    expect(model.methods.map((m) => m.name)).toEqual(["forward", "loss"]);
    const forward = model.methods[0]!;
    expect(forward.attrs).toHaveLength(1);
    expect(forward.attrs[0]!.name).toBe("autocast");
    expect(forward.attrs[0]!.args.map(sexpr)).toEqual(["f16"]);
    expect(forward.attrs[0]!.span).toEqual({ file: "t.kiln", line: 9, col: 3, length: 14 });
    expect(forward.params).toHaveLength(1);
    expect(forward.params[0]!.name).toBe("x");
    expect(forward.params[0]!.type.dims).toEqual([
      { kind: "sym", name: "B", span: { file: "t.kiln", line: 10, col: 21, length: 1 } },
      { kind: "const", value: 784, span: { file: "t.kiln", line: 10, col: 24, length: 3 } },
    ]);
    expect(forward.returns?.map((t) => `${t.dtype}[${t.dims.map((d) => (d.kind === "sym" ? d.name : d.value)).join(",")}]`)).toEqual([
      "f32[B,10]",
    ]);
    expect(forward.nameSpan).toEqual({ file: "t.kiln", line: 10, col: 6, length: 7 });
    expect(forward.span).toEqual({ file: "t.kiln", line: 10, col: 3, length: 42 });
    expect(forward.endSpan).toEqual({ file: "t.kiln", line: 14, col: 3, length: 1 });
    expect(model.methods[1]!.attrs).toEqual([]);
  });

  it("parses let (with and without type), optional semicolons and return", () => {
    const forward = (program.items[0] as ModelDecl).methods[0]!;
    expect(forward.body.map((s) => s.kind)).toEqual(["let", "let", "return"]);
    const [h, logits, ret] = forward.body;
    if (h?.kind !== "let" || logits?.kind !== "let" || ret?.kind !== "return") throw new Error("shape");
    expect(h.name).toBe("h");
    expect(h.type).toBeUndefined();
    expect(h.nameSpan).toEqual({ file: "t.kiln", line: 11, col: 9, length: 1 });
    expect(sexpr(h.value)).toBe("(call relu (+ (@ x w1) b1))");
    expect(h.span).toEqual({ file: "t.kiln", line: 11, col: 5, length: 25 });
    expect(logits.type?.dtype).toBe("f32");
    expect(logits.type?.dims.map((d) => d.kind)).toEqual(["sym", "const"]);
    expect(sexpr(logits.value)).toBe("(call linear h w2 (call zeros))");
    expect(ret.values.map(sexpr)).toEqual(["logits"]);
  });

  it("parses tuple return types, multi-value return, trailing commas and keyword args", () => {
    const stats = program.items[1] as FnDecl;
    expect(stats.params.map((p) => p.name)).toEqual(["x"]);
    expect(stats.returns?.map((t) => t.dtype)).toEqual(["f32", "f32"]);
    expect(stats.returns?.map((t) => t.dims)).toEqual([[], []]);
    expect(stats.attrs).toEqual([]);
    const [m, v, ret] = stats.body;
    if (m?.kind !== "let" || v?.kind !== "let" || ret?.kind !== "return") throw new Error("shape");
    expect(sexpr(m.value)).toBe("(call mean x axis=[0] keepdims=false)");
    expect(sexpr(v.value)).toBe("(call mean (** (- x m) 2) axis=0)");
    expect(ret.values.map(sexpr)).toEqual(["m", "v"]);
    expect(ret.span).toEqual({ file: "t.kiln", line: 24, col: 3, length: 11 });
  });

  it("leaves returns undefined when '-> type' is omitted and accepts expression statements", () => {
    const fn = parseOk("fn f(a: f32, b: f32) { g(a)\n b; }").items[0] as FnDecl;
    expect(fn.returns).toBeUndefined();
    expect(fn.body.map((s) => (s.kind === "expr" ? sexpr(s.expr) : s.kind))).toEqual(["(call g a)", "b"]);
  });

  it("accepts an empty file and a file of only comments", () => {
    expect(parseOk("").items).toEqual([]);
    expect(parseOk("// nothing\n/* here */\n").items).toEqual([]);
  });
});

describe("operator precedence and associativity", () => {
  it.each([
    ["a + b * c", "(+ a (* b c))"],
    ["a * b + c", "(+ (* a b) c)"],
    ["a - b - c", "(- (- a b) c)"],
    ["a / b * c", "(* (/ a b) c)"],
    ["-x ** 2", "(neg (** x 2))"],
    ["a @ b + c", "(+ (@ a b) c)"],
    ["a + b @ c", "(+ a (@ b c))"],
    ["2 ** 3 ** 2", "(** 2 (** 3 2))"],
    ["2 ** -1", "(** 2 (neg 1))"],
    ["-a * b", "(* (neg a) b)"],
    ["- -a", "(neg (neg a))"],
    ["(a + b) * c", "(* (+ a b) c)"],
    ["a + b < c * d", "(< (+ a b) (* c d))"],
    ["a == b", "(== a b)"],
    ["a != b", "(!= a b)"],
    ["a <= b", "(<= a b)"],
    ["a >= b", "(>= a b)"],
    ["a > b", "(> a b)"],
    ["a < b", "(< a b)"],
    ["x ** 2 * y", "(* (** x 2) y)"],
  ])("%s", (src, expected) => {
    expect(sexpr(parseExpr(src))).toBe(expected);
  });

  it("continues an expression onto a line that starts with '-'", () => {
    const fn = parseOk("fn f(a: f32, b: f32) {\n  let x = a\n    - b\n  return x\n}").items[0] as FnDecl;
    expect(fn.body).toHaveLength(2);
    const x = fn.body[0]!;
    if (x.kind !== "let") throw new Error("shape");
    expect(sexpr(x.value)).toBe("(- a b)");
  });

  it("gives binary expressions an operator span and a span over both operands", () => {
    const e = parseExpr("aa + bb * cc");
    if (e.kind !== "binary" || e.right.kind !== "binary") throw new Error("shape");
    // `fn f() { return ` is 16 characters, so the expression starts at column 17.
    expect(e.span).toEqual({ file: "t.kiln", line: 1, col: 17, length: 12 });
    expect(e.opSpan).toEqual({ file: "t.kiln", line: 1, col: 20, length: 1 });
    expect(e.right.opSpan).toEqual({ file: "t.kiln", line: 1, col: 25, length: 1 });
    expect(e.right.span).toEqual({ file: "t.kiln", line: 1, col: 22, length: 7 });
    const pow = parseExpr("x ** 2");
    if (pow.kind !== "binary") throw new Error("shape");
    expect(pow.opSpan).toEqual({ file: "t.kiln", line: 1, col: 19, length: 2 });
  });

  it("widens a parenthesised expression's span to cover the parentheses", () => {
    const e = parseExpr("(a + b)");
    expect(e.kind).toBe("binary");
    expect(e.span).toEqual({ file: "t.kiln", line: 1, col: 17, length: 7 });
  });
});

describe("literals, lists and calls", () => {
  it.each([
    ["123", 123, true],
    ["0", 0, true],
    ["1.5", 1.5, false],
    ["0.5", 0.5, false],
    [".5", 0.5, false],
    ["1e-3", 0.001, false],
    ["2.5E+4", 25000, false],
    ["3e2", 300, false],
  ])("number %s", (src, value, isInt) => {
    const e = parseExpr(src);
    expect(e).toEqual({ kind: "number", value, isInt, span: { file: "t.kiln", line: 1, col: 17, length: src.length } });
  });

  it("parses booleans and names (keywords need a word boundary)", () => {
    expect(parseExpr("true")).toMatchObject({ kind: "bool", value: true });
    expect(parseExpr("false")).toMatchObject({ kind: "bool", value: false });
    expect(parseExpr("fnx")).toMatchObject({ kind: "name", name: "fnx" });
    expect(parseExpr("returned")).toMatchObject({ kind: "name", name: "returned" });
    expect(parseExpr("_a1")).toMatchObject({ kind: "name", name: "_a1" });
  });

  it("parses lists, including empty, nested and trailing-comma forms", () => {
    expect(sexpr(parseExpr("[1, 2, 3]"))).toBe("[1 2 3]");
    expect(sexpr(parseExpr("[]"))).toBe("[]");
    expect(sexpr(parseExpr("[-1, [a],]"))).toBe("[(neg 1) [a]]");
    expect(parseExpr("[1, 2]").span).toEqual({ file: "t.kiln", line: 1, col: 17, length: 6 });
  });

  it("parses calls with positional then keyword arguments", () => {
    const e = parseExpr("concat(a, b, axis: -1,)");
    expect(sexpr(e)).toBe("(call concat a b axis=(neg 1))");
    if (e.kind !== "call") throw new Error("shape");
    expect(e.calleeSpan).toEqual({ file: "t.kiln", line: 1, col: 17, length: 6 });
    expect(e.span).toEqual({ file: "t.kiln", line: 1, col: 17, length: 23 });
    expect(e.kwargs[0]!.span).toEqual({ file: "t.kiln", line: 1, col: 30, length: 8 });
    expect(sexpr(parseExpr("f()"))).toBe("(call f)");
    expect(sexpr(parseExpr("cast(x, i32)"))).toBe("(call cast x i32)");
  });

  it("parses attribute keyword arguments and several attributes", () => {
    const fn = parseOk("@a @b(1, mode: x)\nfn f() { return 1 }").items[0] as FnDecl;
    expect(fn.attrs.map((a) => a.name)).toEqual(["a", "b"]);
    expect(fn.attrs[0]!.args).toEqual([]);
    expect(fn.attrs[1]!.args.map(sexpr)).toEqual(["1"]);
    expect(fn.attrs[1]!.kwargs?.map((k) => `${k.name}=${sexpr(k.value)}`)).toEqual(["mode=x"]);
  });
});
