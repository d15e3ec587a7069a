// What every `kiln` command shares: the command/option table types, argument parsing (node:util parseArgs, with
// "did you mean" and "that flag belongs to kiln X"), the generated help, one-line file errors, the frontend
// call that prints diagnostics, the typed option readers, and the "compiling…" status line on a terminal.

import { readFile, stat, access } from "node:fs/promises";
import { constants } from "node:fs";
import { parseArgs } from "node:util";
// compile.ts (the frontend, Chevrotain) loads only when a program is compiled: a cached run or compile skips it.
import { PRECISIONS, type Precision } from "../options.js";
import { formatDiagnostics } from "../diagnostics.js";
import { DUMP_POINTS } from "../passes/pipeline.js";
import { closest } from "../suggest.js";
import { KilnError } from "../../runtime/errors.js";

/** A mistake in how the command was called: exit code 2 and the usage text. */
export class UsageError extends Error {
  /** The command whose help to show under the message (undefined: the general usage). */
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

export interface OptionSpec {
  type: "string" | "boolean";
  /** May be given more than once (the values are collected in order). */
  multiple?: boolean;
  short?: string;
  /** Placeholder for the value in the help ("DIR", "wasm|reference"). */
  value?: string;
  help: string;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/** Where a command writes: stdout and stderr lines (tests capture them), and the terminal for transient lines. */
export interface CommandIo {
  out(s: string): void;
  err(s: string): void;
  /** The terminal stream for the compiling status and progress bars (default process.stderr). */
  tty: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Shows "kiln: compiling FILE…" on a terminal until the next line is printed. */
  status(text: string): void;
}

export interface Command {
  name: string;
  /** The positional arguments, as shown in the usage ("FILE.kiln"). */
  args: string;
  /** One line for the command list. */
  summary: string;
  /** Lines shown under the usage by `kiln NAME --help`. */
  details?: string[];
  options: Record<string, OptionSpec>;
  run(values: Values, positionals: string[], io: CommandIo): Promise<number>;
}

/** `kiln NAME --help`: the usage line, what it does, and each option with its help, from the command's table. */
export function commandHelp(c: Command): string {
  const rows = Object.entries(c.options).map(([name, o]) => [`--${name}${o.value ? " " + o.value : ""}${o.multiple ? " ..." : ""}`, o.help] as const);
  const width = Math.min(28, Math.max(6, ...rows.map((r) => r[0].length)));
  const lines = [`usage: kiln ${c.name} ${c.args}${rows.length ? " [options]" : ""}`, "", `  ${c.summary}`, ...(c.details ?? []).map((l) => `  ${l}`)];
  if (rows.length) {
    lines.push("", "options:");
    for (const [flag, help] of rows) lines.push(flag.length > width ? `  ${flag}\n  ${" ".repeat(width)}  ${help}` : `  ${flag.padEnd(width)}  ${help}`);
  }
  lines.push(`  ${"--help".padEnd(width)}  this help`);
  return lines.join("\n");
}

/** Options of a command, checked against the command table: a flag of another command is named as such. */
export function parseCommandArgs(c: Command, argv: string[], all: readonly Command[]): { values: Values; positionals: string[] } {
  const options = Object.fromEntries(Object.entries(c.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }]));
  // A lenient pass first, to name unknown flags the way a person thinks of them before parseArgs' strict message.
  const loose = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const t of loose.tokens ?? []) {
    if (t.kind !== "option" || t.name in c.options) continue;
    const flag = t.rawName.startsWith("--") ? `--${t.name}` : t.rawName;
    const owners = all.filter((o) => t.name in o.options).map((o) => `kiln ${o.name}`);
    if (owners.length) throw new UsageError(`${flag} is an option of ${owners.join(", ")}, not of kiln ${c.name}`, c.name);
    const near = closest(t.name, Object.keys(c.options));
    throw new UsageError(`unknown option ${flag} for kiln ${c.name}${near ? `; did you mean --${near}?` : ""}`, c.name);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e as Error), c.name);
  }
  for (const [name, o] of Object.entries(c.options)) {
    const n = parsed.tokens.filter((t) => t.kind === "option" && t.name === name).length;
    if (!o.multiple && n > 1) throw new UsageError(`--${name} given more than once`, c.name);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** parseArgs' messages ("Option '--out <value>' argument missing") in the CLI's words, on one line. */
function parseArgsMessage(e: Error): string {
  const m = e.message.split("\n")[0]!;
  const missing = /^Option '(-\S+)(?:, (--\S+))? <value>' argument missing/.exec(m);
  if (missing) return `${missing[2] ?? missing[1]} needs a value`;
  const noArg = /^Option '(-\S+)(?:, (--\S+))?' does not take an argument/.exec(m);
  if (noArg) return `${noArg[2] ?? noArg[1]} is a switch and takes no value`;
  const ambiguous = /^Option '(-\S+)(?:, (--\S+))?' argument is ambiguous/.exec(m);
  if (ambiguous) {
    const f = ambiguous[2] ?? ambiguous[1];
    return `${f} needs a value (for one starting with '-', write ${f}=VALUE)`;
  }
  return m.replace(/^Option /, "option ");
}

/** A string option given at most once. */
export function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === "string" ? x : undefined;
}

export function list(v: Values, name: string): string[] {
  const x = v[name];
  return Array.isArray(x) ? x : typeof x === "string" ? [x] : [];
}

export function flag(v: Values, name: string): boolean {
  return v[name] === true;
}

export function intOpt(v: Values, name: string, dflt: number, min: number): number {
  const s = str(v, name);
  if (s === undefined) return dflt;
  if (!/^-?\d+$/.test(s) || Number(s) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${s}'`);
  return Number(s);
}

export function precisionOpt(v: Values): Precision {
  const p = str(v, "precision") ?? "f32";
  if (!(PRECISIONS as readonly string[]).includes(p)) throw new UsageError(`--precision must be ${PRECISIONS.join(", ")}, got '${p}'`);
  return p as Precision;
}

export function dimsOpt(v: Values): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const spec of list(v, "dims")) {
    for (const part of spec.split(",")) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$/.exec(part.trim());
      if (!m) throw new UsageError(`--dims: '${part}' should look like B=4`);
      dims[m[1]!] = Number(m[2]);
    }
  }
  return dims;
}

export const PRECISION_OPTION: OptionSpec = { type: "string", value: PRECISIONS.join("|"), help: "matmuls in f16/bf16 with f32 accumulation and f32 master weights (default f32)" };
export const SEED_OPTION: OptionSpec = { type: "string", value: "N", help: "seed of the param init and of every random stream (default 0)" };

/** Why a path cannot be read, in a few words, or undefined when it is a readable file. */
export async function fileProblem(path: string): Promise<string | undefined> {
  try {
    if ((await stat(path)).isDirectory()) return "it is a directory, not a file";
    await access(path, constants.R_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "no such file";
    if (code === "ENOTDIR") return "a part of the path is not a directory";
    if (code === "EACCES" || code === "EPERM") return "permission denied";
    return (e as Error).message;
  }
}

/** Throws a one-line error (exit 1) naming the flag and the path unless it is a readable file. */
export async function checkFile(path: string, option: string): Promise<void> {
  const why = await fileProblem(path);
  if (why) throw new KilnError(`kiln: --${option} ${path}: could not read it: ${why}`);
}

/** The single FILE.kiln argument and its text. */
export async function readSource(positionals: string[]): Promise<{ file: string; source: string }> {
  const file = positionals[0];
  if (!file) throw new UsageError("missing FILE.kiln");
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const why = await fileProblem(file);
  if (why) throw new KilnError(`kiln: cannot read '${file}': ${why}`);
  try {
    return { file, source: await readFile(file, "utf8") };
  } catch (e) {
    throw new KilnError(`kiln: cannot read '${file}': ${(e as Error).message}`);
  }
}

/** Parse + lower + optimise; prints diagnostics and returns an undefined `ir` on errors. */
export async function frontend(file: string, source: string, io: CommandIo, opts: { dumpAfter?: string[]; skip?: string[]; precision?: Precision; dataParallel?: boolean } = {}) {
  const dumpAfter = opts.dumpAfter ?? [];
  for (const d of dumpAfter) if (!DUMP_POINTS.includes(d)) throw new UsageError(`--dump-after: unknown pass '${d}' (passes: ${DUMP_POINTS.join(", ")})`);
  io.status(`kiln: compiling ${file}…`);
  const { compileToIR } = await import("../compile.js");
  const r = compileToIR(source, file, dumpAfter, opts.skip ?? [], { precision: opts.precision ?? "f32", ...(opts.dataParallel ? { dataParallel: true } : {}) });
  if (r.diagnostics.length) io.err(formatDiagnostics(r.diagnostics, { [file]: source }));
  if (!r.ir) {
    const n = r.diagnostics.filter((d) => d.severity === "error").length;
    io.err(`kiln: ${n} error${n === 1 ? "" : "s"} in ${file}; nothing was written`);
  }
  return r;
}

/**
 * The IO a command gets: on a terminal, `status` draws a transient line on `tty` that the next printed line
 * (or the end of the command) erases, so a 5-second compile does not look like a hang; elsewhere it prints nothing.
 */
export function commandIo(out: (s: string) => void, err: (s: string) => void, tty: CommandIo["tty"]): CommandIo & { done(): void } {
  let shown = 0;
  const clear = () => {
    if (shown) tty.write(`\r${" ".repeat(shown)}\r`);
    shown = 0;
  };
  return {
    out: (s) => (clear(), out(s)),
    err: (s) => (clear(), err(s)),
    tty,
    status(text) {
      if (!tty.isTTY) return;
      clear();
      const cols = tty.columns ?? 80;
      const line = text.length >= cols ? text.slice(0, Math.max(1, cols - 2)) + "…" : text;
      tty.write(line);
      shown = line.length;
    },
    done: clear,
  };
}
