// CLI helper for `kiln train`: compiles a file's train block, then calls its step function on a batch and
// prints the loss per step. Data: `synthetic` (one fixed seeded batch, so the loss must fall as the model
// fits it). Optimizer state lives in the runtime between steps; --save writes params in safetensors format.

import { basename } from "node:path";
import type { IRModule } from "./ir/graph.js";
import { buildWasm } from "./compile.js";
import { loadKilnModule } from "../runtime/module.js";
import { Tensor } from "../runtime/tensor.js";
import { KilnError } from "../runtime/errors.js";
import { Rng } from "../runtime/rng.js";
import { saveSafetensors } from "../runtime/safetensors.js";

export interface TrainOptions {
  train?: string;
  steps: number;
  batch: number;
  seed: number;
  classes: number;
  checkNumerics: boolean;
  save?: string;
}

/** Returns the loss of every step. */
export async function runTraining(ir: IRModule, opts: TrainOptions, out: (s: string) => void): Promise<number[]> {
  const steps = ir.functions.filter((g) => g.updates?.length);
  if (steps.length === 0) throw new KilnError(`kiln: ${ir.source} has no train block; add one, e.g. train Step { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
  const g = opts.train ? steps.find((s) => s.name === `${opts.train}.step`) : steps[0];
  if (!g) throw new KilnError(`kiln: ${ir.source} has no train block '${opts.train}' (it has: ${steps.map((s) => s.name.replace(/\.step$/, "")).join(", ")})`);
  const build = await buildWasm(ir, basename(ir.source));
  const mod = await loadKilnModule(build.manifest, build.wasm, { seed: opts.seed });
  const rng = new Rng(opts.seed + 1);
  const inputs: Record<string, Tensor> = {};
  for (const io of g.inputs) {
    const t = g.nodes[io.node].type;
    const shape = t.shape.map((d) => (typeof d === "number" ? d : opts.batch));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Array.from({ length: n }, () => (t.dtype === "i32" ? Math.floor(rng.uniform(0, opts.classes)) : rng.normal(0, 1)));
    inputs[io.name] = new Tensor(t.dtype, shape, data);
  }
  out(`kiln: training ${g.name.replace(/\.step$/, "")} on a synthetic batch of ${opts.batch} (seed ${opts.seed}) for ${opts.steps} steps`);
  const losses: number[] = [];
  for (let s = 1; s <= opts.steps; s++) {
    let r;
    try {
      r = mod.call(g.name, inputs, { checkNumerics: opts.checkNumerics });
    } catch (e) {
      if (e instanceof KilnError && e.code === "non_finite") throw new KilnError(`kiln: training step ${s}: ${e.message}`, { code: "non_finite", fn: e.fn, tensor: e.tensor });
      throw e;
    }
    const loss = Number((Array.isArray(r) ? r[0] : r).data[0]);
    losses.push(loss);
    out(`step ${String(s).padStart(String(opts.steps).length)}/${opts.steps}  loss ${loss.toFixed(6)}`);
  }
  if (opts.save) {
    const tensors: Record<string, Tensor> = {};
    for (const p of mod.params()) tensors[p.name] = mod.getParam(p.name);
    await saveSafetensors(opts.save, tensors, { source: ir.source, train: g.name });
    out(`kiln: saved ${Object.keys(tensors).length} tensors to ${opts.save}`);
  }
  return losses;
}
