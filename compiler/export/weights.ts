// Export, shared: the weights every writer embeds. Reads a safetensors file and checks it against the compiled
// module's params (names, shapes, dtypes), or draws the params from their init rules when no file is given.

import type { IRModule, ParamInfo } from "../ir/graph.js";
import { formatShape } from "../ir/types.js";
import { KilnError } from "../../runtime/errors.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { initParams } from "../../runtime/init.js";
import { Tensor } from "../../runtime/tensor.js";

/** The params a user owns: weights and optimizer state; mixed-precision copies are derived, never stored. */
export function storedParams(ir: IRModule): ParamInfo[] {
  return ir.params.filter((p) => p.role !== "copy");
}

function numel(p: ParamInfo): number {
  return (p.type.shape as number[]).reduce((a, b) => a * b, 1);
}

/**
 * One tensor per model weight (optimizer state is left out unless `withState`). A name the file lacks, a shape
 * or dtype that differs, or a tensor the module has no param for is an error naming the tensor; int8-quantized
 * weights (I8 plus a `NAME.scale` tensor, from `kiln quantize --out`) are accepted for a float param of the same
 * shape and returned in `quantized`.
 */
export function checkWeights(ir: IRModule, bytes: Uint8Array, file: string, withState = false): { tensors: Map<string, Tensor>; quantized: Map<string, { q: Tensor; scale: Tensor }> } {
  let st;
  try {
    st = parseSafetensors(bytes, { name: file });
  } catch (e) {
    throw new KilnError(`kiln: ${file}: not a safetensors file: ${(e as Error).message}`);
  }
  const params = storedParams(ir).filter((p) => withState || p.role !== "state");
  const tensors = new Map<string, Tensor>();
  const quantized = new Map<string, { q: Tensor; scale: Tensor }>();
  const used = new Set<string>();
  for (const p of params) {
    const t = st.tensors[p.name];
    if (!t) {
      if (p.role === "state") continue;
      throw new KilnError(`kiln: ${file} has no tensor '${p.name}' (${p.type.dtype}${formatShape(p.type.shape)}); it has: ${Object.keys(st.tensors).join(", ") || "none"}`);
    }
    used.add(p.name);
    const want = formatShape(p.type.shape), got = formatShape(t.shape);
    if (want !== got) throw new KilnError(`kiln: ${file}: tensor '${p.name}' has shape ${got}, the module's param is ${p.type.dtype}${want}`);
    if (t.dtype === "i8" && p.type.dtype === "f32") {
      const scale = st.tensors[`${p.name}.scale`];
      if (!scale || scale.dtype !== "f32") throw new KilnError(`kiln: ${file}: int8 tensor '${p.name}' has no f32 '${p.name}.scale' beside it`);
      used.add(`${p.name}.scale`);
      quantized.set(p.name, { q: t, scale });
      continue;
    }
    if (t.dtype !== p.type.dtype) throw new KilnError(`kiln: ${file}: tensor '${p.name}' is ${t.dtype}, the module's param is ${p.type.dtype}${want}`);
    tensors.set(p.name, t);
  }
  const extra = Object.keys(st.tensors).filter((n) => !used.has(n) && !storedParams(ir).some((p) => p.name === n));
  if (extra.length) throw new KilnError(`kiln: ${file}: tensor '${extra[0]}' matches no param of ${ir.source} (params: ${params.map((p) => p.name).join(", ")})`);
  return { tensors, quantized };
}

/** Params from their init rules, seeded like `load({ seed })` (the same values the runtime would draw). */
export function initWeights(ir: IRModule, seed: number): Map<string, Tensor> {
  const all = ir.params.map((p) => ({ name: p.name, init: p.init, numel: numel(p) }));
  const out = new Map<string, Tensor>();
  initParams(all, seed, (i, values) => {
    const p = ir.params[i];
    if (p.role === "copy") return;
    const t = new Tensor(p.type.dtype, p.type.shape as number[]);
    const d = t.data as unknown as { [k: number]: number | bigint };
    for (let j = 0; j < values.length; j++) d[j] = values[j];
    out.set(p.name, t);
  });
  return out;
}
