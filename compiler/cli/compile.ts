// `kiln compile`: a .kiln file to an ES module + .d.ts + .wasm (and .wgsl) + manifest in a folder, or the IR,
// WebAssembly text, WGSL or manifest printed, or a per-function kernel and memory report.

import { mkdir } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { buildWasm, buildWgsl, checkWasmDtypes, withWgsl } from "../compile.js";
import type { Manifest } from "../../runtime/manifest.js";
import { DiagnosticBag, formatDiagnostics } from "../diagnostics.js";
import { printModule } from "../ir/print.js";
import { DUMP_POINTS } from "../passes/pipeline.js";
import { KilnError } from "../../runtime/errors.js";
import { dimsOpt, flag, frontend, list, PRECISION_OPTION, precisionOpt, readSource, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

export const compileCommand: Command = {
  name: "compile",
  args: "FILE.kiln",
  summary: "write an ES module + .d.ts + .wasm (and .wgsl) + manifest, or print the IR, WAT or WGSL",
  details: [
    "writes DIR/NAME.js, NAME.d.ts, NAME.wasm, NAME.manifest.json and DIR/kiln-runtime/ (DIR: --out, else build/NAME)",
    "--target all also writes NAME.wgsl (WebGPU: load({ backend: \"webgpu\" })); --emit prints instead of writing",
  ],
  options: {
    out: { type: "string", value: "DIR", help: "where to write the module (default build/NAME)" },
    target: { type: "string", value: "wasm|wgsl|all", help: "wasm (default), wgsl (WebGPU only, no .wasm) or all" },
    emit: { type: "string", value: "ir|wat|wgsl|manifest", help: "print the optimised IR, WebAssembly text, WGSL or manifest; write nothing" },
    "dump-after": { type: "string", multiple: true, value: "PASS", help: `print the IR after a pass (${DUMP_POINTS.join(", ")})` },
    report: { type: "boolean", help: "print each function's kernels, fused ops and peak memory" },
    dims: { type: "string", multiple: true, value: "B=64", help: "sizes of symbolic dims for --report (else 1)" },
    precision: PRECISION_OPTION,
    "no-fusion": { type: "boolean", help: "skip the fusion pass (to compare kernels)" },
    weights: { type: "string", value: "W.safetensors", help: "bake trained weights into the module (not available yet)" },
    standalone: { type: "boolean", help: "one self-contained module without kiln-runtime/ (not available yet)" },
  },
  run: compile,
};

async function compile(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const emit = str(v, "emit");
  if (emit && !["ir", "wat", "wgsl", "manifest"].includes(emit)) throw new UsageError(`--emit must be ir, wat, wgsl or manifest, got '${emit}'`);
  const target = str(v, "target") ?? "wasm";
  if (target !== "wasm" && target !== "wgsl" && target !== "all") throw new UsageError(`--target must be wasm, wgsl or all, got '${target}'`);
  if (emit === "wat" && target === "wgsl") throw new UsageError(`--emit wat needs the wasm target (--target wasm or all)`);
  if (emit && str(v, "out") && !flag(v, "report")) throw new UsageError(`--emit ${emit} prints and writes nothing; drop --out (or --emit to write files)`);
  if (list(v, "dims").length && !flag(v, "report")) throw new UsageError("--dims sizes the --report; add --report");
  // Declared so that `--help` and the flag checks know them; the packaging work wires them into the writer.
  for (const later of ["weights", "standalone"]) if (v[later] !== undefined) throw new KilnError(`kiln: compile --${later} is not available in this build yet`);
  const r = frontend(file, source, io, { dumpAfter: list(v, "dump-after"), skip: flag(v, "no-fusion") ? ["fusion"] : [], precision: precisionOpt(v) });
  for (const d of r.dumps) io.out(`// after ${d.pass}\n${d.text}`);
  if (!r.ir) return 1;
  if (emit === "ir") {
    io.out(printModule(r.ir));
    return 0;
  }
  const diags = new DiagnosticBag();
  checkWasmDtypes(r.ir, diags);
  if (diags.hasErrors) {
    io.err(formatDiagnostics(diags.sorted(), { [file]: source }));
    io.err(`kiln: ${file} uses dtypes the wasm backend cannot run; nothing was written`);
    return 1;
  }
  const name = basename(file, extname(file));
  if (emit === "wgsl" || target === "wgsl") {
    const g = buildWgsl(r.ir, name);
    if (emit === "wgsl") io.out(g.wgsl);
    else if (emit === "manifest") io.out(JSON.stringify(g.manifest, null, 2));
    else return writeFiles(v, file, name, { manifest: g.manifest, wasm: new Uint8Array(0), wgsl: g.wgsl }, io);
    return 0;
  }
  const wasmBuild = await buildWasm(r.ir, name);
  // --target all: the same plan rendered as WGSL too, described in the manifest.
  const withShaders = target === "all" ? withWgsl(wasmBuild.manifest, wasmBuild.plan, name) : undefined;
  const build = { ...wasmBuild, manifest: withShaders?.manifest ?? wasmBuild.manifest };
  if (flag(v, "report")) {
    const { reportManifest, formatReport } = await import("../report.js");
    const dims = dimsOpt(v);
    io.out(formatReport(reportManifest(build.manifest, dims), dims));
    if (!str(v, "out") && !emit) return 0;
  }
  if (emit === "wat") {
    io.out(build.wat);
    return 0;
  }
  if (emit === "manifest") {
    io.out(JSON.stringify(build.manifest, null, 2));
    return 0;
  }
  return writeFiles(v, file, name, { manifest: build.manifest, wasm: build.wasm, wasmRelaxed: build.wasmRelaxed, ...(withShaders ? { wgsl: withShaders.wgsl } : {}) }, io);
}

async function writeFiles(v: Values, file: string, name: string, files: { manifest: Manifest; wasm: Uint8Array; wasmRelaxed?: Uint8Array; wgsl?: string }, io: CommandIo): Promise<number> {
  const outDir = str(v, "out") ?? join("build", name);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw new KilnError(`kiln: --out ${outDir}: cannot create the folder: ${(e as NodeJS.ErrnoException).code === "EEXIST" || (e as NodeJS.ErrnoException).code === "ENOTDIR" ? "a file is in the way" : (e as Error).message}`);
  }
  const { writeModule } = await import("../emit/module-writer.js");
  const written = await writeModule({ outDir, baseName: name, ...files });
  io.out(`kiln: compiled ${file} -> ${written.filter((p) => !p.includes("kiln-runtime")).join(", ")}`);
  return 0;
}
