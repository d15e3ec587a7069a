// CLI helper for `kiln run` on the wasm backend from a built module: the artifacts come from the compile cache (or
// are built and stored there), and the function, its inputs and outputs are read from the manifest, so a cached
// run loads neither the frontend nor Binaryen. The reference backend and --dump-after still go through run.ts.

import { buildSource } from "../build-source.js";
import type { Precision } from "../compile.js";
import { formatDiagnostics } from "../diagnostics.js";
import { parseInputSpec } from "./inputs.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { loadWeights } from "../../runtime/quantize/io.js";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { Rng } from "../../runtime/rng.js";
import type { DType } from "../../runtime/dtype.js";

export interface RunSpec {
  fn: string;
  /** `--input` values: NAME=SPEC. */
  inputs: readonly string[];
  dims: Record<string, number>;
  seed: number;
  precision: Precision;
  /** Trained weights (safetensors) loaded strictly over the seeded init. */
  weights?: string;
}

/**
 * Runs one function and prints its outputs; returns the exit code, or undefined when the program does not build
 * (the caller's full path then reports the diagnostics exactly as before).
 */
export async function runBuilt(file: string, source: string, spec: RunSpec, out: (s: string) => void, err: (s: string) => void): Promise<number | undefined> {
  // A malformed --input is a usage error, which the caller's path reports (with the usage text).
  if (spec.inputs.some((s) => s.indexOf("=") < 1)) return undefined;
  const b = await buildSource(source, { file, precision: spec.precision, cache: true });
  if (!b.build?.wasm) return undefined;
  if (b.diagnostics.length) err(formatDiagnostics(b.diagnostics, { [file]: source }));
  const { manifest } = b.build;
  const fn = manifest.functions.find((x) => x.name === spec.fn) ?? manifest.functions.find((x) => x.name.split(".").pop() === spec.fn);
  if (!fn) throw new KilnError(`kiln: ${file} has no function '${spec.fn}' (it has: ${manifest.functions.map((x) => x.name).join(", ")})`);
  const rng = new Rng(spec.seed + 1);
  const given: Record<string, Tensor> = {};
  for (const s of spec.inputs) {
    const eq = s.indexOf("=");
    const name = s.slice(0, eq);
    const io = fn.inputs.find((i) => i.name === name);
    if (!io) throw new KilnError(`kiln: ${fn.name} has no input '${name}' (inputs: ${fn.inputs.map((i) => i.name).join(", ") || "none"})`);
    const dt = io.dtype as DType;
    const p = parseInputSpec(name, s.slice(eq + 1), rng, dt === "i32" || dt === "i8" || dt === "u8");
    given[name] = new Tensor(dt, p.shape, p.data);
  }
  const mod = await loadKilnModule(manifest, b.build.wasm, { seed: spec.seed });
  try {
    if (spec.weights) {
      try {
        await loadWeights(mod, spec.weights);
      } catch (e) {
        if (e instanceof KilnError) throw new KilnError(`kiln: --weights: ${e.message.replace(/^kiln: /, "")}`, { code: e.code });
        throw e;
      }
    }
    const r = mod.call(fn.name, given, { dims: spec.dims });
    const results = Array.isArray(r) ? r : [r];
    results.forEach((t, i) => out(`${fn.outputs[i]!.name}: ${t}`));
  } finally {
    mod.dispose();
  }
  return 0;
}
