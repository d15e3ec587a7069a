// Frontend entry point: source text -> Program (ast.ts) plus every lexing/parsing diagnostic (K1xx).
// Runs lexer.ts, parser.ts and to-ast.ts, and rewords their errors into the project's diagnostic codes.

import { EOF, type IRecognitionException, type IToken } from "chevrotain";
import { DiagnosticBag, type Diagnostic, type Span } from "../../diagnostics.js";
import type { Program } from "./ast.js";
import { BadNumber, ERROR_GROUP, GoodNumber, kilnLexer } from "./lexer.js";
import { checkNesting, MAX_SOURCE_CHARS } from "./nesting.js";
import { kilnParser } from "./parser.js";
import { buildAst } from "./to-ast.js";

export interface ParseResult {
  program: Program;
  diagnostics: Diagnostic[];
}

/**
 * Parses one .kiln file. Never throws: a failure inside the frontend itself becomes K901. When diagnostics
 * are returned, `program` may be partial (recovered pieces have empty names) and should not be compiled.
 */
export function parseProgram(source: string, file: string): ParseResult {
  const bag = new DiagnosticBag();
  let program: Program = { file, items: [] };
  if (source.length > MAX_SOURCE_CHARS) {
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    bag.error("K106", `source file too large: ${mb(source.length)} (the limit is ${mb(MAX_SOURCE_CHARS)})`, { file, line: 1, col: 1, length: 1 }, "split the program, or generate smaller functions");
    return { program, diagnostics: bag.sorted() };
  }
  try {
    const lexed = kilnLexer.tokenize(source);
    for (const err of lexed.errors) {
      const text = source.slice(err.offset, err.offset + err.length);
      const what = err.length === 1 ? `character ${showChars(text)}` : `characters ${showChars(text)}`;
      bag.error("K101", `unexpected ${what}`, { file, line: err.line ?? 1, col: err.column ?? 1, length: Math.max(1, err.length) });
    }
    for (const tok of lexed.groups[ERROR_GROUP] ?? []) {
      bag.error("K104", "unexpected end of file: block comment '/*' is never closed", { ...tokenSpan(tok, file), length: 2 });
    }
    for (const tok of lexed.tokens) {
      if (tok.tokenType === BadNumber) {
        bag.error("K103", `malformed number literal '${tok.image}'`, tokenSpan(tok, file), numberHint(tok.image));
      } else if (tok.tokenType === GoodNumber) {
        const tooBig = numberTooLarge(tok.image);
        if (tooBig) bag.error("K103", tooBig, tokenSpan(tok, file), "Kiln numbers are float64: at most 1.7976931348623157e308, integers exact up to 2^53 - 1 = 9007199254740991");
      }
    }

    // Deep nesting would overflow the recursive parser (and the walks after it): refuse it before parsing.
    const tooDeep = checkNesting(lexed.tokens, file);
    if (tooDeep) {
      bag.error("K105", tooDeep.message, tooDeep.span, tooDeep.hint);
      return { program, diagnostics: dedupe(bag.sorted()) };
    }
    kilnParser.input = lexed.tokens;
    const cst = kilnParser.program();
    reportSyntaxErrors(kilnParser.errors, lexed.tokens, file, bag);
    program = buildAst(cst, file, source, bag);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    bag.error("K901", `internal compiler error in the parser: ${detail}`, { file, line: 1, col: 1, length: 1 });
  }
  return { program, diagnostics: dedupe(bag.sorted()) };
}

function tokenSpan(tok: IToken, file: string): Span {
  return { file, line: tok.startLine ?? 1, col: tok.startColumn ?? 1, length: Math.max(1, tok.image.length) };
}

/** A well-formed literal that float64 cannot hold: it would read as Infinity, or as a different integer. */
function numberTooLarge(image: string): string | undefined {
  const value = Number(image);
  if (!Number.isFinite(value)) return `number literal '${image}' is too large: it overflows float64`;
  if (!/[.eE]/.test(image) && !Number.isSafeInteger(value)) return `integer literal '${image}' is too large to be exact (more than 2^53 - 1)`;
  return undefined;
}

function showChars(text: string): string {
  const shown = [...text].map((c) => (c < " " || c === "\u007f" ? `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}` : c));
  return `'${shown.join("")}'`;
}

function numberHint(image: string): string {
  if (/^\d+\.$/.test(image)) return `write ${image}0`;
  if (/[eE][+-]?$/.test(image)) return "an exponent needs digits, e.g. 1e-3";
  if (/^[\d.]+[A-Za-z_]/.test(image) && !/[eE]/.test(image)) return "names cannot start with a digit";
  return "numbers look like 3, 0.5, .5, 1e-3 or 2.5E+4";
}

function reportSyntaxErrors(errors: IRecognitionException[], tokens: IToken[], file: string, bag: DiagnosticBag): void {
  let reportedEof = false;
  let lastIndex = -2;
  const indexOf = new Map(tokens.map((t, i) => [t.startOffset, i]));
  for (const err of [...errors].sort((a, b) => order(a.token) - order(b.token))) {
    const tok = err.token;
    const index = indexOf.get(tok.startOffset);
    if (index !== undefined) {
      // An error on the token right after another error is nearly always fallout from recovering from the first.
      if (index <= lastIndex + 1) continue;
      lastIndex = index;
    }
    if (tok.tokenType === EOF || !Number.isFinite(tok.startOffset)) {
      // Recovery usually hits end of file once per unclosed construct; the first report explains them all.
      if (reportedEof) continue;
      reportedEof = true;
      bag.error("K104", eofMessage(err.message, tokens), endOfInputSpan(tokens, file));
    } else {
      bag.error("K102", err.message, tokenSpan(tok, file));
    }
  }
}

function order(tok: IToken): number {
  return Number.isFinite(tok.startOffset) ? tok.startOffset : Number.MAX_SAFE_INTEGER;
}

const CLOSER: Record<string, string> = { ")": "(", "]": "[", "}": "{" };

/** Names the innermost bracket left open at end of file, which is almost always what the user forgot. */
function eofMessage(parserMessage: string, tokens: IToken[]): string {
  const open: IToken[] = [];
  for (const tok of tokens) {
    if (tok.image === "(" || tok.image === "[" || tok.image === "{") open.push(tok);
    const opener = CLOSER[tok.image];
    if (opener === undefined) continue;
    // A closer without its opener on top closes the nearest matching one; mismatches were already reported.
    const at = open.map((t) => t.image).lastIndexOf(opener);
    if (at >= 0) open.length = at;
  }
  const innermost = open[open.length - 1];
  if (innermost) {
    return `unexpected end of file: '${innermost.image}' opened at ${innermost.startLine}:${innermost.startColumn} is never closed`;
  }
  return `unexpected end of file: ${parserMessage.replace(/ but found end of file$/, "")}`;
}

/** Just after the last token: where the missing closer or construct belongs. */
function endOfInputSpan(tokens: IToken[], file: string): Span {
  const last = tokens[tokens.length - 1];
  if (!last) return { file, line: 1, col: 1, length: 1 };
  return { file, line: last.endLine ?? last.startLine ?? 1, col: (last.endColumn ?? last.startColumn ?? 0) + 1, length: 1 };
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const key = `${d.code}:${d.span.line}:${d.span.col}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
