// CLI helper for `kiln run`: executes one function of a compiled module on the wasm backend (through the same
// runtime a generated module uses) or on the float64 reference interpreter, with params from the seeded init.

import { basename } from "node:path";
import { ioType, type Graph, type IRModule } from "./ir/graph.js";
import { buildWasm, checkWasmDtypes } from "./compile.js";
import { DiagnosticBag, formatDiagnostics } from "./diagnostics.js";
import type { ParsedInput } from "./cli-inputs.js";
import { loadKilnModule } from "../runtime/module.js";
import { Tensor } from "../runtime/tensor.js";
import { KilnError } from "../runtime/errors.js";
import { Rng } from "../runtime/rng.js";
import { fillInit } from "../runtime/init.js";
import { evaluateGraph } from "../runtime/reference.js";
import { checkClassLabels } from "../runtime/bind.js";
import { RandomStreams } from "../runtime/random.js";

/** Param values exactly as the wasm runtime initialises them (same RNG stream, rounded to f32). */
export function referenceParams(ir: IRModule, seed: number): Record<string, Float64Array> {
  const rng = new Rng(seed);
  const out: Record<string, Float64Array> = {};
  for (const p of ir.params) {
    const data = new Float64Array((p.type.shape as number[]).reduce((a, b) => a * b, 1));
    // A mixed-precision copy holds its master's (f32) values; the reference rounds them to the copy's dtype.
    if (p.init.kind === "copy") data.set(out[p.init.of]);
    else fillInit(p.init, data, rng, p.name);
    if (p.type.dtype === "f32") for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i]);
    out[p.name] = data;
  }
  return out;
}

export async function runOnBackend(
  ir: IRModule,
  g: Graph,
  inputs: Record<string, ParsedInput>,
  dims: Record<string, number>,
  seed: number,
  backend: "wasm" | "reference",
): Promise<Tensor[]> {
  if (backend === "reference") {
    // The same label check as the runtime's (bind.ts): the reference would otherwise give a loss for them.
    for (const i of g.inputs) if (i.classes !== undefined && inputs[i.name]) checkClassLabels(g.name, i.name, i.classes, inputs[i.name]!.data);
    const params = referenceParams(ir, seed);
    // The same random streams (dropout masks) as the wasm runtime for this seed.
    const outs = evaluateGraph(g, inputs, params, dims, { random: new RandomStreams(seed) });
    return outs.map((t) => new Tensor(t.dtype === "f32" ? "f64" : t.dtype, t.shape, t.dtype === "f32" ? t.data : Array.from(t.data)));
  }
  const diags = new DiagnosticBag();
  checkWasmDtypes({ ...ir, functions: [g] }, diags);
  if (diags.hasErrors) throw new KilnError(formatDiagnostics(diags.sorted(), {}) + "\nkiln: use --backend reference for this function");
  const build = await buildWasm(ir, basename(ir.source));
  const mod = await loadKilnModule(build.manifest, build.wasm, { seed });
  const given: Record<string, Tensor> = {};
  for (const io of g.inputs) {
    const p = inputs[io.name];
    if (!p) continue;
    const dt = ioType(g, io).dtype;
    given[io.name] = new Tensor(dt, p.shape, p.data);
  }
  const r = mod.call(g.name, given, { dims });
  return Array.isArray(r) ? r : [r];
}
