// ONNX export, entry point: the functions of a compiled module -> one ONNX model each (file name -> bytes).
// Training steps are left out unless asked for by name (then the writer says why they cannot be exported).

import type { IRModule } from "../../ir/graph.js";
import { KilnError } from "../../../runtime/errors.js";
import { writeOnnxGraph, type OnnxWeights } from "./write.js";

export function exportOnnx(ir: IRModule, weights: OnnxWeights, fns: readonly string[] = []): Map<string, Uint8Array> {
  const chosen = fns.length
    ? fns.map((f) => ir.functions.find((g) => g.name === f || g.name.split(".").pop() === f) ?? fail(ir, f))
    : ir.functions.filter((g) => !g.updates?.length);
  const out = new Map<string, Uint8Array>();
  for (const g of chosen) out.set(`${g.name}.onnx`, writeOnnxGraph(ir, g, weights));
  return out;
}

function fail(ir: IRModule, f: string): never {
  throw new KilnError(`kiln: ${ir.source} has no function '${f}' (it has: ${ir.functions.map((g) => g.name).join(", ")})`);
}
