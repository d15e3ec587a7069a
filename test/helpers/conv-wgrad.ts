// Test helper: conv2d in training (compiler/codegen/plan-conv-wgrad.ts) on a PyTorch golden of
// test/ops/torch-conv-goldens.json: vg = value_and_grad of its loss sum(y * r), so the forward stays live beside the
// weight gradient; both must gather the patches (no step stores them), and the loss (summed here from PyTorch's y
// and r) and the gradients must match PyTorch's and the float64 reference's.
import { expect } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { StepManifest } from "../../runtime/manifest.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { irOf, runBoth } from "./backend.js";
import { close, convProgram, gradAtol } from "./conv-goldens.js";
import { layerInputs, type LayerGolden } from "./layer-goldens.js";

/** The golden's program plus vg = value_and_grad of its loss with respect to `wrt`. */
export function trainProgram(c: LayerGolden, symbolic: boolean): string {
  const src = convProgram(c, symbolic);
  const sig = src.match(/fn loss\(([^)]*)\)/)![1]!;
  const args = [...Object.keys(c.inputs), ...c.outs.map((_, k) => `r${k}`)].join(", ");
  const grads = src.match(/fn grads\([^)]*\) -> (.*) \{/)![1]!;
  const gradTypes = grads.startsWith("(") ? grads.slice(1, -1) : grads;
  return `${src}\nfn vg(${sig}) -> (f32, ${gradTypes}) {\n  return value_and_grad(loss, wrt: [${c.wrt.join(", ")}])(${args})\n}`;
}

/** No step stores a window (the patches): each is gathered by a matmul. */
export function noStoredPatches(steps: readonly StepManifest[], what: string): void {
  const shown = steps.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
  expect(steps.some((s) => s.ops.includes("window") && !s.ops.includes("matmul")), `${what}: ${shown}`).toBe(false);
  expect(steps.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, `${what}: ${shown}`).toBe(1);
  // The forward: gathered and stored straight in NCHW (its weight's transpose, which the input gradient reads too, is not in the way).
  // (Stride 1: the input gradient, a transposed conv, is such a step too.) No gathered product is stored as NHWC rows.
  expect(steps.some((s) => /^conv_(nchw|wino)_/.test(s.kernel)), `${what}: ${shown}`).toBe(true);
  expect(steps.filter((s) => s.kernel.startsWith("convmatmul")), `${what}: ${shown}`).toEqual([]);
}

export async function checkTrain(c: LayerGolden, opts: { relaxed: boolean; threads: number; symbolic: boolean }): Promise<void> {
  const ir = irOf(trainProgram(c, opts.symbolic));
  const b = await buildWasm(ir, "conv", { wat: false });
  const tag = `${c.name}${opts.relaxed ? " relaxed" : ""} ${opts.threads} threads${opts.symbolic ? " symbolic N" : ""}`;
  noStoredPatches(b.manifest.functions.find((f) => f.name === "vg")!.steps, tag);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: opts.threads, ...(opts.relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const r = await runBoth(ir, "vg", layerInputs(c, "f32", true), { module: m });
    const o = c.outs[0]!;
    const loss = o.y.reduce((s, y, i) => s + y * o.r[i]!, 0);
    close(r.wasm[0]!.data, [loss], `${tag} loss`, 1e-4, gradAtol(c));
    c.wrt.forEach((name, k) => {
      close(r.wasm[k + 1]!.data, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c));
      close(r.wasm[k + 1]!.data, Array.from(r.ref[k + 1]!.data, Number), `${tag} d/d${name} vs reference`, 1e-4, gradAtol(c));
    });
  } finally {
    m.dispose();
  }
}
