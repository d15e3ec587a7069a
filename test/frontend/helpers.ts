// Test helpers for the frontend: parse-and-assert-clean, and a compact S-expression view of expressions.

import { expect } from "vitest";
import type { Expr, FnDecl, Program } from "../../compiler/frontend/kiln/ast.js";
import { parseProgram } from "../../compiler/frontend/kiln/parse.js";

/** Parses `source` and fails the test if there is any diagnostic. */
export function parseOk(source: string): Program {
  const { program, diagnostics } = parseProgram(source, "t.kiln");
  expect(diagnostics).toEqual([]);
  return program;
}

/** The first returned expression of `fn f() { return <src> }`. */
export function parseExpr(src: string): Expr {
  const fn = parseOk(`fn f() { return ${src} }`).items[0] as FnDecl;
  const stmt = fn.body[0]!;
  if (stmt.kind !== "return") throw new Error(`expected a return, got ${stmt.kind}`);
  return stmt.values[0]!;
}

/** `a + b * c` -> `(+ a (* b c))`; numbers print their value, with `.0`-less floats marked by `f`. */
export function sexpr(e: Expr): string {
  switch (e.kind) {
    case "number":
      return e.isInt ? String(e.value) : `${e.value}f`;
    case "bool":
      return String(e.value);
    case "name":
      return e.name;
    case "binary":
      return `(${e.op} ${sexpr(e.left)} ${sexpr(e.right)})`;
    case "unary":
      return `(neg ${sexpr(e.operand)})`;
    case "list":
      return `[${e.items.map(sexpr).join(" ")}]`;
    case "call": {
      const parts = [e.callee, ...e.args.map(sexpr), ...e.kwargs.map((k) => `${k.name}=${sexpr(k.value)}`)];
      return `(call ${parts.join(" ")})`;
    }
  }
}

/** Compact diagnostics for exact comparisons: `K102 3:7 message`. */
export function diags(source: string): string[] {
  return parseProgram(source, "t.kiln").diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`);
}
