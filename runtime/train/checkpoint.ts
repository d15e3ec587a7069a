// Training checkpoints: one safetensors file holding everything a training step needs to resume exactly where it
// stopped: the weights, the optimizer's state (momentum, Adam's moments and step count), batch norm's running
// statistics and the loss scaler's scale and clean-step count (PyTorch's model + optimizer + GradScaler
// state_dicts in one). Mixed precision's 16-bit weight copies are derived from their masters and never saved:
// setting a master refreshes its copy. Wasm and WebGPU modules alike (WebGPU reads params back asynchronously).

import { KilnError } from "../errors.js";
import type { KilnModule } from "../wasm/module.js";
import type { KilnGpuModule } from "../webgpu/module.js";
import type { Tensor } from "../tensor.js";
import type { Source } from "../data/source.js";
import { safetensorsFileOf, saveSafetensors, serializeSafetensors, type SafetensorsFile } from "../safetensors.js";

/** The metadata value of `format` that marks a checkpoint (weights-only files say "kiln-weights"). */
export const CHECKPOINT_FORMAT = "kiln-checkpoint";

type AnyModule = KilnModule | KilnGpuModule;

/** The params a checkpoint holds: every param but the derived 16-bit copies, in manifest order. */
export function checkpointParams(mod: AnyModule): string[] {
  return mod.manifest.params.filter((p) => p.role !== "copy").map((p) => p.name);
}

/** The module's training state as safetensors bytes. */
export async function serializeCheckpoint(mod: AnyModule): Promise<Uint8Array> {
  const { tensors, metadata } = await checkpointFile(mod);
  return serializeSafetensors(tensors, metadata);
}

/** Writes the module's training state to `path` (Node only). */
export async function saveCheckpoint(mod: AnyModule, path: string): Promise<void> {
  const { tensors, metadata } = await checkpointFile(mod);
  await saveSafetensors(path, tensors, metadata);
}

async function checkpointFile(mod: AnyModule): Promise<{ tensors: Record<string, Tensor>; metadata: Record<string, string> }> {
  const tensors: Record<string, Tensor> = {};
  for (const name of checkpointParams(mod)) tensors[name] = await mod.getParam(name);
  return { tensors, metadata: { format: CHECKPOINT_FORMAT, source: mod.manifest.source ?? "" } };
}

/**
 * Restores a checkpoint written by saveCheckpoint into a module of the same program: every param it holds must be
 * there (a weights-only file, or one from another model, is an error naming the tensor), and is checked for
 * shape and dtype by setParam before anything is written.
 */
export async function loadCheckpoint(mod: AnyModule, src: Source | SafetensorsFile): Promise<void> {
  const file = await safetensorsFileOf(src);
  const fail = (msg: string, tensor?: string): never => {
    throw new KilnError(`loadCheckpoint: ${msg}`, { code: "load_failed", ...(tensor ? { tensor } : {}) });
  };
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    fail(`the file is not a training checkpoint (format "${file.metadata.format ?? "none"}"); weights alone load with loadWeights, and training then starts with fresh optimizer and loss-scale state`);
  }
  const want = checkpointParams(mod);
  const copies = new Set(mod.manifest.params.filter((p) => p.role === "copy").map((p) => p.name));
  for (const name of Object.keys(file.tensors)) {
    if (copies.has(name)) fail(`tensor "${name}" is a 16-bit copy, which a module derives from its master; a checkpoint never holds one`, name);
    if (!want.includes(name)) {
      const why = name.includes(".scaler.") ? "loss-scaler state: the checkpoint comes from a build with loss scaling (--precision mixed-f16 or loss_scale:); resume with the same options" : "a checkpoint of another program, or of this one compiled with other options?";
      fail(`tensor "${name}" is not a param of ${mod.manifest.source || "this module"} (${why})`, name);
    }
  }
  const missing = want.find((n) => !(n in file.tensors));
  if (missing) fail(`the checkpoint has no tensor "${missing}" (written by another version of the program?)`, missing);
  // Every shape and dtype first, so a bad file changes nothing.
  for (const name of want) {
    const p = mod.manifest.params.find((q) => q.name === name)!;
    const t = file.tensors[name]!;
    const same = t.dtype === p.dtype && t.shape.length === p.shape.length && t.shape.every((d, k) => d === p.shape[k]);
    if (!same) fail(`tensor "${name}" is ${t.dtype}[${t.shape.join(", ")}] but the param is ${p.dtype}[${p.shape.join(", ")}]`, name);
  }
  for (const name of want) mod.setParam(name, file.tensors[name]!);
}
