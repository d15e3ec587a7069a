// The `kiln` command line: compile (write an ES module + .d.ts + .wasm/.wgsl + manifest, or print IR/WAT/WGSL),
// run a function on given inputs (wasm backend or the float64 reference), and check a file. Every failure is a
// message naming the file (and position) and what to do, with exit code 1 (2 for usage errors).

import { mkdir, readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { buildWasm, buildWgsl, checkWasmDtypes, compileToIR, PRECISIONS, withWgsl, type Precision } from "../compile.js";
import type { Manifest } from "../../runtime/manifest.js";
import { DiagnosticBag, formatDiagnostics } from "../diagnostics.js";
import { ioType } from "../ir/graph.js";
import { printModule } from "../ir/print.js";
import { DUMP_POINTS } from "../passes/pipeline.js";
import { COMPILER_VERSION } from "../version.js";
import { InputSpecError, parseInputSpec, type ParsedInput } from "./inputs.js";
import { Rng } from "../../runtime/rng.js";
import { KilnError } from "../../runtime/errors.js";

const USAGE = `kiln ${COMPILER_VERSION} — compile .kiln models to WebAssembly and WGSL

usage:
  kiln compile FILE.kiln [--out DIR] [--target wasm|wgsl|all] [--emit ir|wat|wgsl|manifest] [--dump-after PASS]...
      writes DIR/NAME.js, NAME.d.ts, NAME.wasm, NAME.manifest.json and DIR/kiln-runtime/ (DIR defaults to build/NAME)
      --target all also writes NAME.wgsl (WebGPU: load({ backend: "webgpu" })); wgsl writes no .wasm
      --emit prints the IR, the WebAssembly text, the WGSL or the manifest instead of writing files
      --dump-after prints the IR after a pass (${DUMP_POINTS.join(", ")})
      --report prints each function's kernels, fused ops and peak memory (symbolic dims from --dims, else 1)
      --precision f32|mixed-f16|mixed-bf16 (compile, run, train): matmuls in f16/bf16 with f32 accumulation,
      f32 master weights; mixed-f16 training scales the loss dynamically (docs/language.md, Mixed precision)
  kiln run FILE.kiln --fn NAME [--input NAME=SPEC]... [--dims B=4] [--seed N] [--backend wasm|reference]
      SPEC: random:[4,784] | zeros:[3] | ones:[2,2] | 2.5 | [[1,2],[3,4]]
  kiln train FILE.kiln [--train NAME] [--data synthetic|mnist|FILE.txt] [--epochs E] [--steps N] [--batch B] [--seed N]
                       [--classes C] [--check-numerics] [--augment] [--save FILE.safetensors] [--plot FILE.svg] [--data-dir DIR]
                       [--checkpoint FILE.safetensors] [--resume FILE.safetensors]
      runs a train block: on MNIST (images 0-7999 train, 8000-9999 test) with a progress bar per epoch and the
      held-out accuracy, or on one synthetic batch printing the loss per step
  kiln quantize FILE.kiln --weights W.safetensors [--out Q.safetensors] [--mode dynamic|static] [--fn NAME]
                          [--data mnist] [--calibration-batches N] [--percentile P] [--data-dir DIR]
      switches every linear layer (matmul on a param) to int8 and reports each op's error; --data mnist also
      measures held-out accuracy (and static mode calibrates on training batches); --out writes I8 weights + scales
  kiln check FILE.kiln      report diagnostics only
  kiln --version | --help`;

class UsageError extends Error {}

interface Flags {
  positional: string[];
  values: Map<string, string[]>;
}

const VALUE_FLAGS = new Set(["--out", "--emit", "--dump-after", "--fn", "--input", "--dims", "--seed", "--backend", "--target", "--train", "--steps", "--batch", "--classes", "--save", "--data", "--epochs", "--plot", "--data-dir", "--weights", "--mode", "--calibration-batches", "--percentile", "--precision", "--checkpoint", "--resume"]);
const BOOL_FLAGS = new Set(["--check-numerics", "--report", "--no-fusion", "--augment"]);

function parseFlags(args: string[]): Flags {
  const f: Flags = { positional: [], values: new Map() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) {
      f.positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (BOOL_FLAGS.has(name) && eq < 0) {
      f.values.set(name, ["true"]);
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new UsageError(`unknown option ${name}`);
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    f.values.set(name, [...(f.values.get(name) ?? []), value]);
  }
  return f;
}

function one(f: Flags, name: string): string | undefined {
  const v = f.values.get(name);
  if (v && v.length > 1) throw new UsageError(`${name} given more than once`);
  return v?.[0];
}

async function readSource(f: Flags): Promise<{ file: string; source: string }> {
  const file = f.positional[0];
  if (!file) throw new UsageError("missing FILE.kiln");
  if (f.positional.length > 1) throw new UsageError(`unexpected argument '${f.positional[1]}'`);
  try {
    return { file, source: await readFile(file, "utf8") };
  } catch (e) {
    throw new KilnError(`kiln: cannot read '${file}': ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}

/** Parse + lower + optimise; prints diagnostics and returns undefined on errors. */
function frontend(file: string, source: string, dumpAfter: string[], err: (s: string) => void, skip: string[] = [], precision: Precision = "f32") {
  for (const d of dumpAfter) if (!DUMP_POINTS.includes(d)) throw new UsageError(`--dump-after: unknown pass '${d}' (passes: ${DUMP_POINTS.join(", ")})`);
  const r = compileToIR(source, file, dumpAfter, skip, { precision });
  if (r.diagnostics.length) err(formatDiagnostics(r.diagnostics, { [file]: source }));
  if (!r.ir) {
    const n = r.diagnostics.filter((d) => d.severity === "error").length;
    err(`kiln: ${n} error${n === 1 ? "" : "s"} in ${file}; nothing was written`);
  }
  return r;
}

function precisionFlag(f: Flags): Precision {
  const v = one(f, "--precision") ?? "f32";
  if (!(PRECISIONS as readonly string[]).includes(v)) throw new UsageError(`--precision must be ${PRECISIONS.join(", ")}, got '${v}'`);
  return v as Precision;
}

async function cmdCompile(f: Flags, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { file, source } = await readSource(f);
  const emit = one(f, "--emit");
  if (emit && !["ir", "wat", "wgsl", "manifest"].includes(emit)) throw new UsageError(`--emit must be ir, wat, wgsl or manifest, got '${emit}'`);
  const target = one(f, "--target") ?? "wasm";
  if (target !== "wasm" && target !== "wgsl" && target !== "all") throw new UsageError(`--target must be wasm, wgsl or all, got '${target}'`);
  if (emit === "wat" && target === "wgsl") throw new UsageError(`--emit wat needs the wasm target (--target wasm or all)`);
  const r = frontend(file, source, f.values.get("--dump-after") ?? [], err, f.values.has("--no-fusion") ? ["fusion"] : [], precisionFlag(f));
  for (const d of r.dumps) out(`// after ${d.pass}\n${d.text}`);
  if (!r.ir) return 1;
  if (emit === "ir") {
    out(printModule(r.ir));
    return 0;
  }
  const diags = new DiagnosticBag();
  checkWasmDtypes(r.ir, diags);
  if (diags.hasErrors) {
    err(formatDiagnostics(diags.sorted(), { [file]: source }));
    err(`kiln: ${file} uses dtypes the wasm backend cannot run; nothing was written`);
    return 1;
  }
  const name = basename(file, extname(file));
  if (emit === "wgsl" || target === "wgsl") {
    const g = buildWgsl(r.ir, name);
    if (emit === "wgsl") out(g.wgsl);
    else if (emit === "manifest") out(JSON.stringify(g.manifest, null, 2));
    else return writeFiles(f, file, name, { manifest: g.manifest, wasm: new Uint8Array(0), wgsl: g.wgsl }, out);
    return 0;
  }
  const wasmBuild = await buildWasm(r.ir, name);
  // --target all: the same plan rendered as WGSL too, described in the manifest.
  const withShaders = target === "all" ? withWgsl(wasmBuild.manifest, wasmBuild.plan, name) : undefined;
  const build = { ...wasmBuild, manifest: withShaders?.manifest ?? wasmBuild.manifest };
  if (f.values.has("--report")) {
    const { reportManifest, formatReport } = await import("../report.js");
    const dims = parseDims(f);
    out(formatReport(reportManifest(build.manifest, dims), dims));
    if (!one(f, "--out") && !emit) return 0;
  }
  if (emit === "wat") {
    out(build.wat);
    return 0;
  }
  if (emit === "manifest") {
    out(JSON.stringify(build.manifest, null, 2));
    return 0;
  }
  return writeFiles(f, file, name, { manifest: build.manifest, wasm: build.wasm, wasmRelaxed: build.wasmRelaxed, ...(withShaders ? { wgsl: withShaders.wgsl } : {}) }, out);
}

async function writeFiles(f: Flags, file: string, name: string, files: { manifest: Manifest; wasm: Uint8Array; wasmRelaxed?: Uint8Array; wgsl?: string }, out: (s: string) => void): Promise<number> {
  const outDir = one(f, "--out") ?? join("build", name);
  await mkdir(outDir, { recursive: true });
  const { writeModule } = await import("../emit/module-writer.js");
  const written = await writeModule({ outDir, baseName: name, ...files });
  out(`kiln: compiled ${file} -> ${written.filter((p) => !p.includes("kiln-runtime")).join(", ")}`);
  return 0;
}

function parseDims(f: Flags): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const spec of f.values.get("--dims") ?? []) {
    for (const part of spec.split(",")) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$/.exec(part.trim());
      if (!m) throw new UsageError(`--dims: '${part}' should look like B=4`);
      dims[m[1]] = Number(m[2]);
    }
  }
  return dims;
}

async function cmdRun(f: Flags, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { file, source } = await readSource(f);
  const fnName = one(f, "--fn");
  if (!fnName) throw new UsageError("kiln run needs --fn NAME");
  const seedText = one(f, "--seed") ?? "0";
  if (!/^-?\d+$/.test(seedText)) throw new UsageError(`--seed must be an integer, got '${seedText}'`);
  const seed = Number(seedText);
  const backend = one(f, "--backend") ?? "wasm";
  if (backend !== "wasm" && backend !== "reference") throw new UsageError(`--backend must be wasm or reference, got '${backend}'`);
  const r = frontend(file, source, f.values.get("--dump-after") ?? [], err, [], precisionFlag(f));
  if (!r.ir) return 1;
  const g = r.ir.functions.find((x) => x.name === fnName) ?? r.ir.functions.filter((x) => x.name.split(".").pop() === fnName).at(0);
  if (!g) throw new KilnError(`kiln: ${file} has no function '${fnName}' (it has: ${r.ir.functions.map((x) => x.name).join(", ")})`);
  const rng = new Rng(seed + 1);
  const inputs: Record<string, ParsedInput> = {};
  for (const spec of f.values.get("--input") ?? []) {
    const eq = spec.indexOf("=");
    if (eq < 1) throw new UsageError(`--input '${spec}' should look like x=random:[4,784]`);
    const name = spec.slice(0, eq);
    const io = g.inputs.find((i) => i.name === name);
    if (!io) throw new KilnError(`kiln: ${g.name} has no input '${name}' (inputs: ${g.inputs.map((i) => i.name).join(", ") || "none"})`);
    const dt = ioType(g, io).dtype;
    inputs[name] = parseInputSpec(name, spec.slice(eq + 1), rng, dt === "i32" || dt === "i8" || dt === "u8");
  }
  const dims = parseDims(f);
  const { runOnBackend } = await import("./run.js");
  const results = await runOnBackend(r.ir, g, inputs, dims, seed, backend);
  results.forEach((t, i) => out(`${g.outputs[i].name}: ${t}`));
  return 0;
}

function intFlag(f: Flags, name: string, dflt: number, min: number): number {
  const v = one(f, name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

async function cmdTrain(f: Flags, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { file, source } = await readSource(f);
  const data = one(f, "--data") ?? "synthetic";
  // A .txt file trains a language model on its characters (compiler/cli/train-text.ts).
  const text = data.endsWith(".txt");
  if (data !== "synthetic" && data !== "mnist" && !text) throw new UsageError(`--data must be synthetic, mnist or a FILE.txt, got '${data}'`);
  const opts = {
    data: (text ? "text" : data) as "synthetic" | "mnist" | "text",
    ...(text ? { textFile: data } : {}),
    dataDir: one(f, "--data-dir"),
    epochs: intFlag(f, "--epochs", 1, 1),
    plot: one(f, "--plot"),
    augment: f.values.has("--augment"),
    train: one(f, "--train"),
    steps: intFlag(f, "--steps", 10, 1),
    batch: intFlag(f, "--batch", 32, 1),
    seed: intFlag(f, "--seed", 0, -(2 ** 31)),
    classes: intFlag(f, "--classes", 10, 1),
    checkNumerics: f.values.has("--check-numerics"),
    save: one(f, "--save"),
    checkpoint: one(f, "--checkpoint"),
    resume: one(f, "--resume"),
  };
  const r = frontend(file, source, [], err, [], precisionFlag(f));
  if (!r.ir) return 1;
  const { runTraining } = await import("./train.js");
  await runTraining(r.ir, opts, out);
  return 0;
}

async function cmdQuantize(f: Flags, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { file, source } = await readSource(f);
  const weights = one(f, "--weights");
  if (!weights) throw new UsageError("kiln quantize needs --weights FILE.safetensors (f32 weights, e.g. from kiln train --save)");
  const mode = one(f, "--mode") ?? "dynamic";
  if (mode !== "dynamic" && mode !== "static") throw new UsageError(`--mode must be dynamic or static, got '${mode}'`);
  const data = one(f, "--data");
  if (data !== undefined && data !== "mnist") throw new UsageError(`kiln quantize --data must be mnist, got '${data}'`);
  const pct = one(f, "--percentile");
  if (pct !== undefined && !(Number(pct) > 50 && Number(pct) <= 100)) throw new UsageError(`--percentile must be a number in (50, 100], got '${pct}'`);
  const opts = {
    weights, mode: mode as "dynamic" | "static", out: one(f, "--out"), fn: one(f, "--fn"), data: data as "mnist" | undefined, dataDir: one(f, "--data-dir"),
    batches: intFlag(f, "--calibration-batches", 8, 1), calibration: pct === undefined ? ("minmax" as const) : { percentile: Number(pct) }, seed: intFlag(f, "--seed", 0, -(2 ** 31)),
  };
  const r = frontend(file, source, [], err);
  if (!r.ir) return 1;
  const { runQuantize } = await import("./quantize.js");
  await runQuantize(r.ir, opts, out);
  return 0;
}

async function cmdCheck(f: Flags, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { file, source } = await readSource(f);
  const r = frontend(file, source, [], err);
  if (!r.ir) return 1;
  out(`kiln: ${file}: no errors (${r.ir.functions.length} function(s), ${r.ir.params.length} param(s))`);
  return 0;
}

/** Runs the CLI; returns the exit code. `out`/`err` default to stdout/stderr (tests capture them). */
export async function main(argv: string[], out = (s: string) => console.log(s), err = (s: string) => console.error(s)): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
      out(USAGE);
      return cmd ? 0 : 2;
    }
    if (cmd === "--version") {
      out(COMPILER_VERSION);
      return 0;
    }
    const flags = parseFlags(rest);
    if (cmd === "compile") return await cmdCompile(flags, out, err);
    if (cmd === "run") return await cmdRun(flags, out, err);
    if (cmd === "check") return await cmdCheck(flags, out, err);
    if (cmd === "train") return await cmdTrain(flags, out, err);
    if (cmd === "quantize") return await cmdQuantize(flags, out, err);
    throw new UsageError(`unknown command '${cmd}'`);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`kiln: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof KilnError || e instanceof InputSpecError) {
      err(e.message.startsWith("kiln:") ? e.message : `kiln: ${e.message}`);
      return 1;
    }
    err(`kiln: internal error (please report): ${(e as Error).stack ?? e}`);
    return 3;
  }
}
