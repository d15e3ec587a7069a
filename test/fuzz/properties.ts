// Fuzz suite, the properties every generated case must keep: the compiler returns diagnostics (never throws,
// never K901, every position inside the file); valid programs agree with the float64 reference on each wasm
// build (plain, relaxed where the engine has it, unfused, 2 threads, mixed f16); bad calls are KilnErrors.
import { expect } from "vitest";
import { buildWasm, compileToIR, type CompileOptions } from "../../compiler/compile.js";
import { DIAGNOSTIC_CODES, formatDiagnostics, type Diagnostic } from "../../compiler/diagnostics.js";
import { KilnError } from "../../runtime/errors.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { expectClose, type Input } from "../helpers/backend.js";
import type { ValidCase } from "./arbitraries.js";

/** Where a diagnostic may point: a line of the file, a column up to one past its end (a missing closer). */
function insideFile(d: Diagnostic, src: string): boolean {
  const lines = src.split(/\r\n|\r|\n/);
  const text = lines[d.span.line - 1];
  return text !== undefined && d.span.col >= 1 && d.span.col <= text.length + 1 && d.span.length >= 1;
}

/**
 * The compiler's contract on any source: diagnostics with known codes, no K901, positions inside the file,
 * each reported once; a program without errors also plans and builds wasm when `build` is set.
 */
export async function checkCompilerTotal(src: string, build = false): Promise<{ ok: boolean; codes: string[] }> {
  let r: ReturnType<typeof compileToIR>;
  try {
    r = compileToIR(src, "fuzz.kiln");
  } catch (e) {
    throw new Error(`compileToIR threw ${(e as Error).stack}\n--- source ---\n${src.slice(0, 2000)}`);
  }
  const show = () => `${formatDiagnostics(r.diagnostics, { "fuzz.kiln": src })}\n--- source ---\n${src.slice(0, 2000)}`;
  const keys = r.diagnostics.map((d) => `${d.code}:${d.span.line}:${d.span.col}:${d.message}`);
  expect(new Set(keys).size, `a diagnostic reported twice\n${show()}`).toBe(keys.length);
  for (const d of r.diagnostics) {
    expect(d.code in DIAGNOSTIC_CODES, `unknown code ${d.code}`).toBe(true);
    expect(d.code, `internal compiler error\n${show()}`).not.toBe("K901");
    expect(insideFile(d, src), `position ${d.span.line}:${d.span.col} outside the file\n${show()}`).toBe(true);
    // A value printed as Infinity or NaN means a literal was read wrong ("dimension Infinity"); only a message
    // saying what a value would become may name Infinity.
    expect(d.message, show()).not.toMatch(/(?<!become -?)Infinity|\bNaN\b|undefined/);
  }
  if (r.ir && build) {
    try {
      await buildWasm(r.ir, "fuzz");
    } catch (e) {
      throw new Error(`buildWasm threw ${(e as Error).stack}\n--- source ---\n${src.slice(0, 2000)}`);
    }
  }
  return { ok: r.ir !== undefined, codes: r.diagnostics.map((d) => d.code) };
}

function inputsFor(c: ValidCase): Record<string, Input> {
  const rng = new Rng(c.seed);
  const make = (shape: number[], scale = 1): Input => ({ dtype: "f32", shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.fround(rng.uniform(-scale, scale))) });
  return { x: make([c.R, c.C]), y: make([c.R, c.C]), v: make([c.C]), u: make([c.R, 1]), w: make([c.C, c.C], 0.5) };
}

export interface Variant {
  readonly name: string;
  readonly compile: CompileOptions;
  readonly skip: readonly string[];
  readonly load: { threads?: number; relaxed?: boolean };
  /** f32 sums are ordered differently per build; under mixed f16 a value near a rounding boundary may round the other way. */
  readonly rtol: number;
  readonly atol: number;
}

export const VARIANTS: readonly Variant[] = [
  { name: "plain", compile: {}, skip: [], load: {}, rtol: 1e-4, atol: 1e-5 },
  { name: "relaxed", compile: {}, skip: [], load: { relaxed: true }, rtol: 1e-4, atol: 1e-5 },
  { name: "unfused", compile: {}, skip: ["fusion"], load: {}, rtol: 1e-4, atol: 1e-5 },
  { name: "threads", compile: {}, skip: [], load: { threads: 2 }, rtol: 1e-4, atol: 1e-5 },
  { name: "mixed-f16", compile: { precision: "mixed-f16" }, skip: [], load: {}, rtol: 1e-2, atol: 1e-2 },
];

/** The variants this engine can run (relaxed SIMD only where WebAssembly validates it). */
export function runnableVariants(): Variant[] {
  return VARIANTS.filter((v) => !v.load.relaxed || relaxedSimdSupported());
}

/** Compiles `c` under `v`, runs it on wasm and compares every element with the float64 reference. */
export async function checkAgreement(c: ValidCase, v: Variant): Promise<void> {
  const r = compileToIR(c.src, "fuzz.kiln", [], v.skip, v.compile);
  expect(r.diagnostics, c.src).toEqual([]);
  const inputs = inputsFor(c);
  // The reference runs the variant's own IR: under mixed precision it rounds the same values to f16.
  const want = evaluateGraph(r.ir!.functions[0]!, inputs);
  const b = await buildWasm(r.ir!, "fuzz");
  const mod = await loadKilnModule(b.manifest, b.wasm, { ...(v.load.threads ? { threads: v.load.threads } : {}), ...(v.load.relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const got = mod.call("f", Object.fromEntries(Object.entries(inputs).map(([k, x]) => [k, new Tensor(x.dtype, x.shape, x.data)])));
    expectClose(got as Tensor, want[0]!, `${v.name}: ${c.src}`, v.rtol, v.atol);
  } finally {
    mod.dispose?.();
  }
}

/** A call with one thing wrong must throw a KilnError (nothing else, and never return). */
export function checkRejected(mod: KilnModule, fn: string, what: string, inputs: unknown, opts?: unknown): void {
  let err: unknown;
  try {
    (mod as unknown as { call(f: string, i: unknown, o?: unknown): unknown }).call(fn, inputs, opts);
  } catch (e) {
    err = e;
  }
  expect(err, `${fn} accepted a bad call (${what})`).toBeInstanceOf(KilnError);
}
