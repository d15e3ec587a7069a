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
import { phaseApplies } from "./conv-dx-phase.js";

/** The golden's program plus vg = value_and_grad of its loss with respect to `wrt`. */
export function trainProgram(c: LayerGolden, symbolic: boolean): string {
  const src = convProgram(c, symbolic);
  const sig = src.match(/fn loss\(([^)]*)\)/)![1]!;
  const args = [...Object.keys(c.inputs), ...c.outs.map((_, k) => `r${k}`)].join(", ");
  const grads = src.match(/fn grads\([^)]*\) -> (.*) \{/)![1]!;
  const gradTypes = grads.startsWith("(") ? grads.slice(1, -1) : grads;
  return `${src}\nfn vg(${sig}) -> (f32, ${gradTypes}) {\n  return value_and_grad(loss, wrt: [${c.wrt.join(", ")}])(${args})\n}`;
}

/**
 * No step stores a window (the patches): each is gathered by a matmul. `dxPhases`: a strided input gradient by
 * phases (ops/conv-backward-phase.ts), whose gathered products are stored as rows.
 */
export function noStoredPatches(steps: readonly StepManifest[], what: string, dxPhases = false): void {
  const shown = steps.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
  expect(steps.some((s) => s.ops.includes("window") && !s.ops.includes("matmul")), `${what}: ${shown}`).toBe(false);
  expect(steps.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, `${what}: ${shown}`).toBe(1);
  // The forward: gathered and stored straight in NCHW (its weight's transpose, which the input gradient reads too, is not in the way).
  // (Stride 1: the input gradient, a transposed conv, is such a step too.) No gathered product is stored as NHWC rows.
  expect(steps.some((s) => /^conv_(nchw|wino)_/.test(s.kernel)), `${what}: ${shown}`).toBe(true);
  if (!dxPhases) expect(steps.filter((s) => s.kernel.startsWith("convmatmul")), `${what}: ${shown}`).toEqual([]);
}

/**
 * The steps that copy a 4-D value whose batch is symbolic by a permute alone: the NHWC copies of dY that the weight
 * gradient and the bias sum read unless passes/nchw-grad.ts reads dY as it is (the forward's permute to NCHW is
 * written by its conv step, so a permute of its own is such a copy).
 */
export function nhwcCopies(fn: { steps: readonly StepManifest[]; values: readonly { shape: readonly unknown[] }[] }): StepManifest[] {
  return fn.steps.filter((s) => s.ops.join() === "permute" && fn.values[s.buffers.at(-1)!]!.shape.length === 4 && typeof fn.values[s.buffers.at(-1)!]!.shape[0] === "string");
}

export async function checkTrain(c: LayerGolden, opts: { relaxed: boolean; threads: number; symbolic: boolean }): Promise<void> {
  const ir = irOf(trainProgram(c, opts.symbolic));
  const b = await buildWasm(ir, "conv", { wat: false });
  const tag = `${c.name}${opts.relaxed ? " relaxed" : ""} ${opts.threads} threads${opts.symbolic ? " symbolic N" : ""}`;
  const vg = b.manifest.functions.find((f) => f.name === "vg")!;
  noStoredPatches(vg.steps, tag, phaseApplies(c));
  // With a symbolic batch the weight gradient reads dY [N, O, OH, OW] as it is (transposed per image) and the bias
  // gradient sums it per channel: no NHWC copy of it. Strided, the input gradient is phase convolutions reading dY
  // as NCHW too (ops/conv-backward-phase.ts) unless the windows do not overlap, when col2im's matmul reads dY's NHWC
  // rows as its left operand, so there the copy stays (passes/nchw-grad.ts).
  const col2im = /stride: (?!1\b|\[1, 1\])/.test(c.expr) && !phaseApplies(c);
  if (opts.symbolic) expect(nhwcCopies(vg).length, `${tag}: ${nhwcCopies(vg).map((s) => s.kernel)}`).toBe(col2im ? 1 : 0);
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

/** Geometries beyond the goldens (checked against the float64 reference): x shape, w shape, conv2d options. */
export const REFERENCE_CASES: { name: string; x: number[]; w: number[]; opts: string }[] = [
  // Known batch, K = 4 * 8 * 11 = 352 pixels: a KC = 256 block starts inside the third image; stride 2 along H only
  // (the 4-pixel path steps rows by 2).
  { name: "blocks_cross_images_stride_h2", x: [4, 3, 15, 13], w: [5, 3, 3, 3], opts: "stride: [2, 1], padding: [1, 0]" },
  // The window taller than x: no pixel's window is inside it (every tap checked).
  { name: "window_over_x", x: [2, 2, 2, 5], w: [3, 2, 3, 3], opts: "padding: 1" },
  // Dilation 2 on both axes at stride 1: the 4-pixel path with taps 2 apart.
  { name: "dilation2_both", x: [2, 3, 9, 12], w: [4, 3, 3, 3], opts: "dilation: 2, padding: 2" },
];

/** Deterministic values in [-1, 1): sin of distinct arguments. */
const fill = (n: number, k: number): number[] => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.731 + k)));

/**
 * A REFERENCE_CASES geometry trained (value_and_grad of sum(conv2d(x, w, b) * r) with respect to x, w and b) on
 * wasm against the float64 reference; `symbolic`: the batch is N.
 */
export async function checkAgainstReference(c: (typeof REFERENCE_CASES)[number], opts: { relaxed: boolean; threads: number; symbolic: boolean }): Promise<void> {
  const O = c.w[0]!;
  // The output's shape from the compiler (the forward's permute back to NCHW), not a re-derived formula.
  const probe = irOf(`fn f(x: f32[${c.x.join(", ")}], w: f32[${c.w.join(", ")}]) -> f32 { return sum(conv2d(x, w, ${c.opts})) }`);
  const out = probe.functions[0]!.nodes.find((n) => n.op === "permute" && n.type.shape.length === 4)!.type.shape as number[];
  const b = (s: number[]) => (opts.symbolic ? `f32[N, ${s.slice(1).join(", ")}]` : `f32[${s.join(", ")}]`);
  const sig = `x: ${b(c.x)}, w: f32[${c.w.join(", ")}], b: f32[${O}], r: ${b(out)}`;
  const src = [
    `fn loss(${sig}) -> f32 { return sum(conv2d(x, w, b, ${c.opts}) * r) }`,
    `fn vg(${sig}) -> (f32, ${b(c.x)}, f32[${c.w.join(", ")}], f32[${O}]) { return value_and_grad(loss, wrt: [x, w, b])(x, w, b, r) }`,
  ].join("\n");
  const ir = irOf(src);
  const built = await buildWasm(ir, "conv", { wat: false });
  const tag = `${c.name}${opts.relaxed ? " relaxed" : ""} ${opts.threads} threads${opts.symbolic ? " symbolic N" : ""}`;
  // A strided geometry's input gradient may take the phases (gathered products stored as rows).
  noStoredPatches(built.manifest.functions.find((f) => f.name === "vg")!.steps, tag, /stride/.test(c.opts));
  const size = (s: number[]) => s.reduce((a, d) => a * d, 1);
  const inputs = {
    x: { dtype: "f32" as const, shape: c.x, data: fill(size(c.x), 1) },
    w: { dtype: "f32" as const, shape: c.w, data: fill(size(c.w), 2) },
    b: { dtype: "f32" as const, shape: [O], data: fill(O, 3) },
    r: { dtype: "f32" as const, shape: out, data: fill(size(out), 4) },
  };
  const m = await loadKilnModule(built.manifest, built.wasm, { threads: opts.threads, ...(opts.relaxed ? { relaxedWasm: built.wasmRelaxed } : {}) });
  try {
    const r = await runBoth(ir, "vg", inputs, { module: m });
    // f32 sums of at most a few hundred terms of size <= ~C*KH*KW: 1e-4 relative plus 1e-4 absolute per 100 terms.
    const atol = 1e-4 * Math.max(1, (c.x[0]! * out[2]! * out[3]!) / 100);
    for (let k = 0; k < 4; k++) close(r.wasm[k]!.data, Array.from(r.ref[k]!.data, Number), `${tag} output ${k}`, 1e-4, atol);
  } finally {
    m.dispose();
  }
}
