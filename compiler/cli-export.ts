// The `kiln export` command: writes a compiled module for other engines (compiler/export/): one self-contained ES
// module (bundle), one ONNX model per function (onnx), or a PyTorch package (torch). Weights from --weights (else
// the params' init rules with --seed) are checked against the module first; files appear whole or not at all.

import { readFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { IRModule } from "./ir/graph.js";
import { KilnError } from "../runtime/errors.js";
import { checkWeights, initWeights } from "./export/weights.js";
import { writeDirAtomic, writeFileAtomic } from "./export/stage.js";

export const EXPORT_FORMATS = ["bundle", "onnx", "torch"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  file: string;
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
    const { exportOnnx } = await import("./export/onnx/index.js");
    const files = exportOnnx(ir, w, o.fns);
    const dir = o.out ?? join("build", `${name}-onnx`);
    await writeDirAtomic(dir, files);
    for (const [f, b] of files) out(`kiln: exported ${join(dir, f)} (${sizeText(b.length)}, ${b.length} bytes)`);
    return 0;
  }
  if (o.format === "bundle") {
    const w = await weightsFor(ir, o);
    const bytes = o.weights ? await readFile(o.weights) : undefined;
    const { writeBundle } = await import("./export/bundle/index.js");
    const { text, modules } = await writeBundle({ ir, baseName: name, weights: bytes, quantized: w.quantized.size > 0 });
    const path = o.out ?? join("build", `${name}.bundle.js`);
    await writeFileAtomic(path, text);
    const size = Buffer.byteLength(text);
    out(`kiln: bundled ${o.file} -> ${path} (${sizeText(size)}, ${size} bytes; ${modules.length} runtime modules)`);
    return 0;
  }
  throw new KilnError(`kiln: export --format ${o.format} is not available yet`);
}
