// Test helper: a strided conv2d's input gradient by phases (compiler/ops/conv-backward-phase.ts) on the PyTorch
// goldens of test/ops/torch-conv-dx-goldens.json (scripts/torch-conv-dx-goldens.py): which cases take it, that no
// step of the compiled gradient is col2im's (a pad of a tap's cotangent to x's padded size), and the gradients of the
// float64 reference (1e-9) and of wasm against PyTorch.
import { expect } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import type { AttrsOf } from "../../compiler/ops/types.js";
import { phaseMinPixels } from "../../compiler/ops/conv-backward-phase.js";
import type { FunctionManifest } from "../../runtime/manifest.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { graphOf, irOf, runBoth } from "./backend.js";
import { close, convProgram, gradAtol } from "./conv-goldens.js";
import { goldenCases, layerInputs, type LayerGolden } from "./layer-goldens.js";

export const DX_GOLDENS = goldenCases("torch-conv-dx-goldens.json");

/** The case's conv2d option as written in its expression (one number or [h, w]). */
export function option(expr: string, name: string, dflt: number): [number, number] {
  const m = new RegExp(`${name}: (\\[(\\d+), (\\d+)\\]|\\d+)`).exec(expr);
  if (!m) return [dflt, dflt];
  return m[2] !== undefined ? [Number(m[2]), Number(m[3])] : [Number(m[1]), Number(m[1])];
}

/**
 * Overlapping windows at stride > 1 (span above the stride on an axis) whose phase images have at least
 * phaseMinPixels() pixels (KILN_CONV_DX_PHASE) take the phases; others keep col2im.
 */
export function phaseApplies(c: LayerGolden): boolean {
  const s = option(c.expr, "stride", 1), d = option(c.expr, "dilation", 1);
  const [, , KH, KW] = c.inputs.w!.shape as number[];
  const [, , H, W] = c.inputs.x!.shape as number[];
  const pixels = Math.ceil(H! / s[0]) * Math.ceil(W! / s[1]);
  return s.some((v) => v > 1) && ((KH! - 1) * d[0] + 1 > s[0] || (KW! - 1) * d[1] + 1 > s[1]) && pixels >= phaseMinPixels();
}

/** Runs `f` with KILN_CONV_DX_PHASE set to `v` (undefined: unset), restoring it after. */
export async function withPhase<T>(v: string | undefined, f: () => Promise<T> | T): Promise<T> {
  const saved = process.env.KILN_CONV_DX_PHASE;
  if (v === undefined) delete process.env.KILN_CONV_DX_PHASE;
  else process.env.KILN_CONV_DX_PHASE = v;
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env.KILN_CONV_DX_PHASE;
    else process.env.KILN_CONV_DX_PHASE = saved;
  }
}

/** col2im's steps: pads (fill and copy) writing a value of x's padded spatial size, one per tap. */
export function col2imSteps(fn: FunctionManifest, c: LayerGolden): string[] {
  const [, C, H, W] = c.inputs.x!.shape as number[];
  const [ph, pw] = option(c.expr, "padding", 0);
  return fn.steps.filter((s) => {
    if (s.ops.join() !== "pad") return false;
    const sh = fn.values[s.buffers.at(-1)!]!.shape;
    return sh[1] === C && sh[2] === H! + 2 * ph && sh[3] === W! + 2 * pw;
  }).map((s) => s.kernel);
}

/** No pad with interior zeros (col2im's) in the gradient's IR. */
export function interiorPads(ir: IRModule, fn: string): number {
  return graphOf(ir, fn).nodes.filter((n) => n.op === "pad" && (n.attrs as AttrsOf["pad"]).pads.some((p) => p[2] > 0)).length;
}

export async function checkPhaseGolden(c: LayerGolden, opts: { relaxed: boolean; symbolic: boolean; threads?: number }): Promise<void> {
  const ir = irOf(convProgram(c, opts.symbolic));
  const b = await buildWasm(ir, "conv", { wat: false });
  const grads = b.manifest.functions.find((f) => f.name === "grads")!;
  const shown = grads.steps.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
  const tag = `${c.name}${opts.relaxed ? " relaxed" : ""}${opts.symbolic ? " symbolic N" : ""}${opts.threads ? ` ${opts.threads} threads` : ""}`;
  if (phaseApplies(c)) {
    expect(interiorPads(ir, "grads"), `${tag}: col2im's interior pads`).toBe(0);
    expect(col2imSteps(grads, c), `${tag}: ${shown}`).toEqual([]);
    // The phases are gathered stride-1 products stored as rows (2 or more taps) or matmuls on dY as it is (one tap).
    expect(grads.steps.some((s) => /^(convmatmul|matmul)/.test(s.kernel)), `${tag}: ${shown}`).toBe(true);
  } else {
    // col2im (a pad per tap), or for windows tiling x (stride = kernel) one permute: no gathered phase.
    expect(grads.steps.filter((s) => s.kernel.startsWith("convmatmul")), `${tag}: ${shown}`).toEqual([]);
  }
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: opts.threads ?? 1, ...(opts.relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const g = await runBoth(ir, "grads", layerInputs(c, "f32", true), { module: m });
    c.wrt.forEach((name, k) => {
      close(g.ref[k]!.data, c.grads[name]!, `${tag} reference d/d${name}`, 1e-9, 1e-9);
      close(g.wasm[k]!.data, c.grads[name]!, `${tag} wasm d/d${name}`, 1e-4, gradAtol(c));
      close(g.wasm[k]!.data, Array.from(g.ref[k]!.data, Number), `${tag} wasm d/d${name} vs reference`, 1e-4, gradAtol(c));
    });
  } finally {
    m.dispose();
  }
}
