// The `kiln export` command: writes a compiled module for other engines (compiler/export/): one self-contained ES
// module (bundle), one ONNX model per function (onnx), or a PyTorch package (torch). Weights from --weights (else
// the params' init rules with --seed) are checked against the module first; files appear whole or not at all.

import { readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { IRModule } from "../ir/graph.js";
import { KilnError } from "../../runtime/errors.js";
import { checkWeights, initWeights } from "../export/weights.js";
import { checkFile, frontend, intOpt, list, readSource, SEED_OPTION, str, UsageError, type Command, type CommandIo, type Values } from "./common.js";
import { writeDirAtomic, writeFileAtomic } from "../export/stage.js";

export const EXPORT_FORMATS = ["bundle", "onnx", "torch"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  file: string;
  source: string;
  format: ExportFormat;
  weights?: string;
  out?: string;
  fns: string[];
  seed: number;
}

/** Flags each format accepts (beyond --format, --weights, --out and --seed). */
export const EXPORT_FLAGS: Record<ExportFormat, readonly string[]> = { onnx: ["--fn"], bundle: [], torch: [] };

async function weightsFor(ir: IRModule, o: ExportOptions, withState = false) {
  if (!o.weights) return { tensors: initWeights(ir, o.seed), quantized: new Map() };
  let bytes: Uint8Array;
  try {
    bytes = await readFile(o.weights);
  } catch (e) {
    throw new KilnError(`kiln: cannot read weights '${o.weights}': ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return checkWeights(ir, bytes, o.weights, withState);
}

function sizeText(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export async function runExport(ir: IRModule, o: ExportOptions, out: (s: string) => void): Promise<number> {
  const name = basename(o.file, extname(o.file));
  if (o.format === "onnx") {
    const w = await weightsFor(ir, o);
    const { exportOnnx } = await import("../export/onnx/index.js");
    const files = exportOnnx(ir, w, o.fns);
    const dir = o.out ?? join("build", `${name}-onnx`);
    await writeDirAtomic(dir, files);
    for (const [f, b] of files) out(`kiln: exported ${join(dir, f)} (${sizeText(b.length)}, ${b.length} bytes)`);
    return 0;
  }
  if (o.format === "bundle") {
    const w = await weightsFor(ir, o);
    const bytes = o.weights ? await readFile(o.weights) : undefined;
    const { writeBundle } = await import("../export/bundle/index.js");
    const { text, modules } = await writeBundle({ ir, baseName: name, weights: bytes, quantized: w.quantized.size > 0 });
    const path = o.out ?? join("build", `${name}.bundle.js`);
    await writeFileAtomic(path, text);
    const size = Buffer.byteLength(text);
    out(`kiln: bundled ${o.file} -> ${path} (${sizeText(size)}, ${size} bytes; ${modules.length} runtime modules)`);
    return 0;
  }
  const w = await weightsFor(ir, o);
  if (w.quantized.size) throw new KilnError(`kiln: ${o.weights} holds int8 weights ('${[...w.quantized.keys()][0]}'); --format torch trains in float: export the f32 weights (kiln quantize's --weights input)`);
  const { exportTorch } = await import("../export/torch/index.js");
  const files = exportTorch(ir, o.source, o.file, w.tensors);
  const dir = o.out ?? join("build", `${name}_torch`);
  await writeDirAtomic(dir, files);
  out(`kiln: exported ${o.file} -> ${dir}/ (${[...files.keys()].join(", ")})`);
  return 0;
}

export const exportCommand: Command = {
  name: "export",
  args: "FILE.kiln",
  summary: "write the model for other engines: one self-contained ES module, ONNX, or a PyTorch package (docs/deploy.md)",
  details: [
    "bundle: one ES module with the wasm, WGSL, manifest, weights and the runtime it uses",
    "onnx: one model per function (opset 17; --fn picks them; training steps are left out)",
    "torch: an nn.Module package with the train block's loss and optimizer and a DDP training script",
  ],
  options: {
    format: { type: "string", value: EXPORT_FORMATS.join("|"), help: "what to write (required)" },
    weights: { type: "string", value: "W.safetensors", help: "trained weights (else the init rules with --seed), checked against the params" },
    out: { type: "string", value: "PATH", help: "the file (bundle) or folder (onnx, torch) to write" },
    fn: { type: "string", multiple: true, value: "NAME", help: "onnx only: the functions to export (default: all but training steps)" },
    seed: SEED_OPTION,
  },
  run: exportRun,
};

async function exportRun(v: Values, positionals: string[], io: CommandIo): Promise<number> {
  const { file, source } = await readSource(positionals);
  const format = str(v, "format");
  if (!format) throw new UsageError(`kiln export needs --format ${EXPORT_FORMATS.join("|")}`);
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be ${EXPORT_FORMATS.join(", ")}, got '${format}'`);
  const fmt = format as ExportFormat;
  if (list(v, "fn").length && !EXPORT_FLAGS[fmt].includes("--fn")) throw new UsageError(`export --format ${fmt} does not take --fn`);
  const weights = str(v, "weights");
  if (weights) await checkFile(weights, "weights");
  // ONNX and torch map the pre-fusion IR (standard ops); the bundle embeds the fully optimised kernels.
  const r = await frontend(file, source, io, { skip: fmt === "bundle" ? [] : ["fusion"] });
  if (!r.ir) return 1;
  const opts = { file, source, format: fmt, ...(weights ? { weights } : {}), ...(str(v, "out") ? { out: str(v, "out") } : {}), fns: list(v, "fn"), seed: intOpt(v, "seed", 0, -(2 ** 31)) };
  return runExport(r.ir, opts, io.out);
}
