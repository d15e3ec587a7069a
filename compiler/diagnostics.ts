// Diagnostics for every stage: one table of numbered codes, and formatting as file:line:col + source line + caret.
// Compiler stages never throw on bad programs; they push a Diagnostic and keep going so that all errors are reported.

export interface Span {
  readonly file: string;
  readonly line: number; // 1-based
  readonly col: number; // 1-based
  readonly length: number; // characters to underline (>= 1)
}

/** Every diagnostic code, with the one-line meaning shown by `kiln explain`-style docs. Never renumber. */
export const DIAGNOSTIC_CODES = {
  // 1xx: lexing and parsing
  K101: "unexpected character",
  K102: "syntax error",
  K103: "malformed number literal",
  K104: "unterminated block or argument list",
  K105: "expression nested too deeply",
  K106: "source file too large",
  // 2xx: names and declarations
  K201: "unknown name",
  K202: "duplicate definition",
  K203: "unknown function or builtin",
  K204: "wrong number of arguments",
  K205: "unknown or duplicate keyword argument",
  K206: "param used outside its model",
  K207: "unknown initialiser or bad initialiser arguments",
  K208: "missing return",
  K209: "unknown dtype",
  K210: "recursive function call",
  // 3xx: types
  K301: "dtype mismatch",
  K302: "operation not defined for this dtype",
  K303: "return type does not match the declared type",
  K304: "argument must be a compile-time constant",
  K305: "bad precision attribute (@autocast) or precision request",
  K306: "number out of range for its dtype",
  // 4xx: shapes
  K401: "shapes do not broadcast",
  K402: "matmul shape mismatch",
  K403: "axis out of range",
  K404: "reshape changes the number of elements",
  K405: "symbolic dimensions cannot be unified",
  K406: "bad permutation",
  K407: "slice out of range",
  K408: "concat shapes do not match",
  K409: "argument shape does not match the parameter type",
  K410: "bad window or padding (kernel, stride, padding, dilation, groups), or the window does not fit the input",
  K411: "argument value out of range",
  K412: "tensor has too many elements",
  // 5xx: unsupported features / backend limits
  K501: "unsupported feature",
  K502: "dtype not supported by the target backend",
  K503: "function too large to compile",
  // 6xx: gradients, control flow and training
  K601: "bad use of a function transform (grad, value_and_grad)",
  K602: "differentiated function must return a float scalar",
  K603: "gradient with respect to a non-float value",
  K604: "unknown name in wrt",
  K605: "gradient cannot flow through this operation",
  K606: "backward rule returns the wrong number of gradients",
  K607: "backward rule gradient has the wrong shape or dtype",
  K608: "loop needs a bound",
  K609: "train hyperparameter out of range (optimizer, schedule, clipping, loss scale)",
  K610: "branches or loop iterations disagree on a variable",
  K611: "bad train block",
  // 9xx: internal (a compiler bug)
  K901: "internal compiler error",
} as const;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly message: string;
  readonly span: Span;
  readonly hint?: string;
  readonly severity: "error" | "warning";
}

export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  /** Code, position and message of every diagnostic so far: one reported twice (a type resolved twice, an inlined
   * function lowered at several call sites) is reported once. */
  private readonly seen = new Set<string>();
  error(code: DiagnosticCode, message: string, span: Span, hint?: string): void {
    this.add({ code, message, span, hint, severity: "error" });
  }
  warning(code: DiagnosticCode, message: string, span: Span, hint?: string): void {
    this.add({ code, message, span, hint, severity: "warning" });
  }
  /**
   * A function body is lowered once per call site (calls are inlined), so a mistake in it would be reported at
   * the same place with the same words once per call: identical diagnostics are kept once.
   */
  private add(d: Diagnostic): void {
    const key = `${d.severity} ${d.code} ${d.span.file}:${d.span.line}:${d.span.col}+${d.span.length} ${d.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.items.push(d);
  }
  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
  /** Errors sorted by position, then code, so output is stable. */
  sorted(): Diagnostic[] {
    return [...this.items].sort(
      (a, b) => a.span.file.localeCompare(b.span.file) || a.span.line - b.span.line || a.span.col - b.span.col || a.code.localeCompare(b.code),
    );
  }
}

/**
 * Renders one diagnostic like:
 *   examples/bad.kiln:3:15: error K402: matmul shape mismatch: ...
 *      3 |   let y = x @ w
 *        |           ^^^^^
 *   hint: matmul needs x[..., K] @ w[K, N]
 */
export function formatDiagnostic(d: Diagnostic, source: string | undefined): string {
  const head = `${d.span.file}:${d.span.line}:${d.span.col}: ${d.severity} ${d.code}: ${d.message}`;
  const out = [head];
  // A bare \r ends a line too (the lexer counts it as one), so positions and source lines agree.
  const lines = source?.split(/\r\n|\r|\n/);
  const text = lines?.[d.span.line - 1];
  if (text !== undefined) {
    const num = String(d.span.line);
    const pad = " ".repeat(num.length);
    const width = Math.max(1, Math.min(d.span.length, text.length - d.span.col + 1));
    out.push(` ${num} | ${text}`);
    out.push(` ${pad} | ${" ".repeat(Math.max(0, d.span.col - 1))}${"^".repeat(width)}`);
  }
  if (d.hint) out.push(`hint: ${d.hint}`);
  return out.join("\n");
}

export function formatDiagnostics(ds: readonly Diagnostic[], sources: Record<string, string>): string {
  return ds.map((d) => formatDiagnostic(d, sources[d.span.file])).join("\n\n");
}

/** Thrown only for compiler bugs or CLI-level problems; bad programs produce Diagnostics instead. */
export class CompileError extends Error {
  constructor(readonly diagnostics: Diagnostic[], readonly sources: Record<string, string>) {
    super(formatDiagnostics(diagnostics, sources));
    this.name = "CompileError";
  }
}
