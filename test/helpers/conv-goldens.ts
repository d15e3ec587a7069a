// Test helper: conv2d (groups 1, kernels over 1x1) against PyTorch's numbers (test/ops/torch-conv-goldens.json,
// scripts/torch-conv-goldens.py) on the wasm build, plain or relaxed SIMD, at 1 or 2 threads; the forward must run
// as an implicit GEMM (the patches gathered while packing, compiler/codegen/plan-conv-gather.ts), and the weight
// gradient gathers them too (plan-conv-wgrad.ts), or the check would pass on the im2col path they replace.
import { expect } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { irOf, runBoth } from "./backend.js";
import { goldenCases, layerInputs, layerProgram, type LayerGolden } from "./layer-goldens.js";

export const CONV_GOLDENS = goldenCases("torch-conv-goldens.json");

/**
 * Absolute tolerance of a gradient: dw and db are f32 sums over every image and pixel (1188 terms of unit-normal
 * products in many_pixels, |sum| up to ~40), whose rounding grows with the count; 1e-5 per 100 terms.
 */
export function gradAtol(c: LayerGolden): number {
  const [n, , oh, ow] = c.outs[0]!.shape as [number, number, number, number];
  return 1e-5 * Math.max(1, (n * oh * ow) / 100);
}

/** Absolute tolerance of an output: each is an f32 sum of C*KH*KW products, 1e-5 per 100 terms (deep_k_two_blocks has 297). */
export function outAtol(c: LayerGolden): number {
  const [, C, KH, KW] = c.inputs.w!.shape as [number, number, number, number];
  return 1e-5 * Math.max(1, (C * KH * KW) / 100);
}

export function close(got: ArrayLike<number>, want: number[], what: string, rtol: number, atol: number): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  want.forEach((v, i) => {
    const g = Number(got[i]);
    if (!(Math.abs(g - v) <= atol + rtol * Math.abs(v))) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

/** The case's program; `symbolic`: x's batch is the dim N. */
export function convProgram(c: LayerGolden, symbolic = false): string {
  let src = layerProgram(c);
  if (!symbolic) return src;
  // x, the output, r0 and dx carry the batch; w's full shape differs from theirs in every case.
  for (const s of [c.inputs.x!.shape, c.outs[0]!.shape]) src = src.split(`f32[${s.join(", ")}]`).join(`f32[N, ${s.slice(1).join(", ")}]`);
  return src;
}

/**
 * Checks one case: outputs (fwd) and gradients (grads) on wasm, `relaxed` or plain, at `threads`. `unfused`: without
 * the fusion pass, so a bias add is no epilogue and the product is stored as NHWC rows (the gather into A panels)
 * rather than NCHW (the gather into B panels, kernel.ts convOut).
 */
export async function checkConvGolden(c: LayerGolden, opts: { relaxed: boolean; threads?: number; symbolic?: boolean; unfused?: boolean }): Promise<void> {
  const src = convProgram(c, opts.symbolic);
  const r = opts.unfused ? compileToIR(src, "t.kiln", [], ["fusion"]) : { ir: irOf(src) };
  if (!r.ir) throw new Error(formatDiagnostics("diagnostics" in r ? r.diagnostics : [], { "t.kiln": src }));
  const ir: IRModule = r.ir;
  const b = await buildWasm(ir, "conv", { wat: false });
  const fwd = b.manifest.functions.find((f) => f.name === "fwd")!;
  // The forward's patches are gathered by its matmul: no step of its own copies a window or pads.
  const ops = fwd.steps.map((s) => s.ops.join(","));
  expect(ops[0], `${c.name}: forward steps ${ops.join(" ")}`).toMatch(/^(pad,)?window,matmul/);
  expect(fwd.steps[0]!.kernel).toMatch(/^conv/);
  // ... and stores NCHW itself (kernel.ts convOut): the permute back from the rows' NHWC is gone too; unfused, a bias
  // add follows the product, which then stays NHWC rows.
  const nhwc = opts.unfused && "b" in c.inputs;
  if (nhwc) expect(ops, `${c.name}: unfused forward steps`).toEqual([expect.stringMatching(/^(pad,)?window,matmul$/), "add", "permute"]);
  else expect(ops, `${c.name}: forward steps`).toEqual([expect.stringMatching(/^(pad,)?window,matmul,(add,)?reshape,permute$/)]);
  // The weight gradient gathers the patches too (compiler/codegen/plan-conv-wgrad.ts): no step stores them.
  const back = b.manifest.functions.find((f) => f.name === "grads")!.steps;
  const shown = back.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
  expect(back.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, `${c.name}: grads steps ${shown}`).toBe(1);
  expect(back.some((s) => s.ops.includes("window") && !s.ops.includes("matmul")), `${c.name}: grads steps ${shown}`).toBe(false);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: opts.threads ?? 1, ...(opts.relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const tag = `${c.name} wasm${opts.relaxed ? " relaxed" : ""}${opts.unfused ? " unfused" : ""}${opts.threads ? ` ${opts.threads} threads` : ""}${opts.symbolic ? " symbolic N" : ""}`;
    const y = await runBoth(ir, "fwd", layerInputs(c), { module: m });
    close(y.ref[0]!.data, c.outs[0]!.y, `${c.name} reference output`, 1e-9, 1e-9);
    close(y.wasm[0]!.data, c.outs[0]!.y, `${tag} output`, 1e-5, outAtol(c));
    const g = await runBoth(ir, "grads", layerInputs(c, "f32", true), { module: m });
    c.wrt.forEach((name, k) => close(g.wasm[k]!.data, c.grads[name]!, `${tag} d/d${name}`, 1e-4, gradAtol(c)));
  } finally {
    m.dispose();
  }
}
