// `kiln compile`: a .kiln file to an ES module + .d.ts + .wasm (and .wgsl) + manifest in a folder, or the IR,
// WebAssembly text, WGSL or manifest printed, or a per-function kernel and memory report.

import { mkdir, readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { Manifest } from "../../runtime/manifest.js";
import { DiagnosticBag, formatDiagnostics } from "../diagnostics.js";
import { printModule } from "../ir/print.js";
import { DUMP_POINTS } from "../passes/pipeline.js";
import { KilnError } from "../../runtime/errors.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { checkNoMissingWeights, checkWeightType } from "../../runtime/weights-check.js";
import { checkFile, dimsOpt, flag, frontend, list, PRECISION_OPTION, precisionOpt, readSource, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";

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
    weights: { type: "string", value: "W.safetensors", help: "ship trained weights as NAME.safetensors; load() uses them (checked against the params)" },
    standalone: { type: "boolean", help: "copy the runtime beside the module (kiln-runtime/) instead of importing @kiln-ml/kiln/runtime" },
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
  if (!emit && !list(v, "dump-after").length && !flag(v, "report")) {
    // Writing files: through the compile cache (an unchanged program skips lowering and Binaryen). On errors the
    // full path below reports them.
    const { buildSource, moduleName } = await import("../build-source.js");
    const b = await buildSource(source, { file, target, precision: precisionOpt(v), skipPasses: flag(v, "no-fusion") ? ["fusion"] : [], cache: true });
    if (b.build) {
      if (b.diagnostics.length) io.err(formatDiagnostics(b.diagnostics, { [file]: source }));
      return writeFiles(v, file, moduleName(file), { manifest: b.build.manifest, wasm: b.build.wasm ?? new Uint8Array(0), ...(b.build.wasmRelaxed ? { wasmRelaxed: b.build.wasmRelaxed } : {}), ...(b.build.wgsl !== undefined ? { wgsl: b.build.wgsl } : {}) }, io);
    }
  }
  const r = await frontend(file, source, io, { dumpAfter: list(v, "dump-after"), skip: flag(v, "no-fusion") ? ["fusion"] : [], precision: precisionOpt(v) });
  for (const d of r.dumps) io.out(`// after ${d.pass}\n${d.text}`);
  if (!r.ir) return 1;
  if (emit === "ir") {
    io.out(printModule(r.ir));
    return 0;
  }
  const { buildWasm, buildWgsl, checkWasmDtypes, withWgsl } = await import("../compile.js");
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
  const weightsPath = str(v, "weights");
  const weights = weightsPath ? await checkedWeights(weightsPath, files.manifest) : undefined;
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw new KilnError(`kiln: --out ${outDir}: cannot create the folder: ${(e as NodeJS.ErrnoException).code === "EEXIST" || (e as NodeJS.ErrnoException).code === "ENOTDIR" ? "a file is in the way" : (e as Error).message}`);
  }
  const { writeModule } = await import("../emit/module-writer.js");
  // --standalone: the runtime copied beside the module (no npm needed) instead of imported from the package.
  const written = await writeModule({ outDir, baseName: name, ...files, standalone: flag(v, "standalone"), ...(weights ? { weights } : {}) });
  io.out(`kiln: compiled ${file} -> ${written.filter((p) => !p.includes("kiln-runtime")).join(", ")}`);
  return 0;
}

/**
 * The --weights file's bytes, after checking it against the module's params as load() will (every weight present,
 * nothing else, dtypes and shapes equal), so a bad file fails here rather than in a user's app.
 */
async function checkedWeights(path: string, manifest: Manifest): Promise<Uint8Array> {
  await checkFile(path, "weights");
  const bytes = new Uint8Array(await readFile(path));
  const bad = (msg: string, tensor?: string): never => {
    throw new KilnError(`kiln: --weights ${path}: ${msg}`, tensor ? { tensor } : {});
  };
  let file;
  try {
    file = parseSafetensors(bytes, { name: path });
  } catch (e) {
    return bad((e as Error).message.replace(/^kiln: /, ""));
  }
  if (file.metadata.quantized) return bytes; // int8 files are checked tensor by tensor when load() applies them
  const params = new Set(manifest.params.filter((p) => p.role !== "copy").map((p) => p.name));
  try {
    for (const [name, t] of Object.entries(file.tensors)) {
      if (!params.has(name)) bad(`tensor "${name}" is not a param of ${manifest.source} (params: ${[...params].join(", ")})`, name);
      checkWeightType(manifest, name, t, "the file");
    }
    checkNoMissingWeights(manifest, new Set(Object.keys(file.tensors)), "the file");
  } catch (e) {
    if (e instanceof KilnError && !e.message.startsWith("kiln:")) bad(e.message, e.tensor);
    throw e;
  }
  return bytes;
}
