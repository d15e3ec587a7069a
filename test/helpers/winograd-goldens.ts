// Test helper: the Winograd F(2x2, 3x3) convolution cases (test/ops/torch-winograd-goldens.json, written by
// scripts/torch-winograd-goldens.py: PyTorch's F.conv2d in float64), their programs, Winograd's error bound, and the
// wasm check (plain or relaxed, 1 or 2 threads) against PyTorch and the float64 reference interpreter.
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { irOf, runBoth } from "./backend.js";

export interface WinogradCase {
  name: string;
  expr: string;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  out: { shape: number[]; y: number[] };
}
export const WINOGRAD_CASES = (JSON.parse(readFileSync(new URL("../ops/torch-winograd-goldens.json", import.meta.url), "utf8")) as { cases: WinogradCase[] }).cases;

const ty = (s: number[]): string => `f32[${s.join(", ")}]`;
/** fwd(inputs) = expr; `symbolic`: x's and the output's batch is the dim N. */
export function winogradProgram(c: WinogradCase, symbolic = false): string {
  const t = (s: number[], batch: boolean) => (batch && symbolic ? `f32[N, ${s.slice(1).join(", ")}]` : ty(s));
  return `fn fwd(${Object.entries(c.inputs).map(([k, v]) => `${k}: ${t(v.shape, k === "x")}`).join(", ")}) -> ${t(c.out.shape, true)} {\n  return ${c.expr}\n}`;
}
export const winogradInputs = (c: WinogradCase) =>
  Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, { dtype: "f32" as const, shape: v.shape, data: v.data }]));

/**
 * Winograd's rounding error, to first order in u = 2^-24. Direct convolution's f32 error is about (9C) u sum|w||x|;
 * F(2x2, 3x3) multiplies transformed values and transforms back (Lavin & Gray 2016; Barabasz et al. 2020, "Error
 * analysis and improving the accuracy of Winograd convolution for deep neural networks"): |Bᵀ d B| <= 4 max|d| (row
 * sums of |Bᵀ| are <= 2), |G g Gᵀ| <= 2.25 max|g| (row sums of |G| <= 1.5), each of the 16 products summed over C
 * channels, and Aᵀ M A adds up to 9 of them per pixel (row sums of |Aᵀ| <= 3): |err| <= (C + 6) u * 9 * 4 * 2.25 * C
 * max|x| max|w| = 81 C (C + 6) u max|x| max|w| (C + 6: the C-long sums plus the transforms' additions). The errors
 * measured on these cases are about 1/2000 of it (7e-6 to 1.2e-5 against 2e-2 to 4e-2), and below the implicit GEMM's
 * own on the same inputs (1.2e-5 to 2.6e-5: its sums are 9C long); an indexing error (an O(1) term) breaks it.
 */
export function winogradBound(c: WinogradCase): number {
  const C = c.inputs.x!.shape[1]!;
  const maxAbs = (a: number[]) => a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  return 81 * C * (C + 6) * 2 ** -24 * maxAbs(c.inputs.x!.data) * maxAbs(c.inputs.w!.data);
}

export function maxErr(got: ArrayLike<number>, want: ArrayLike<number>, what: string): number {
  expect(got.length, `${what}: length`).toBe(want.length);
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(Number(got[i]) - Number(want[i]));
    if (!(d <= e)) e = d; // NaN lands here too
  }
  return e;
}

/** The case on wasm (`symbolic`: batch N, known only per call): one Winograd kernel runs it, and its output is within the bound of PyTorch's and the reference's. */
export async function checkWinograd(c: WinogradCase, relaxed: boolean, threads: number, symbolic = false): Promise<void> {
  const ir = irOf(winogradProgram(c, symbolic));
  const b = await buildWasm(ir, "wino", { wat: false });
  const steps = b.manifest.functions[0]!.steps;
  // The layer is the one Winograd kernel (gather, product, bias epilogue, NCHW store); a relu after the permute back
  // to NCHW is a kernel of its own, as with the implicit GEMM.
  expect(steps[0]!.kernel, c.name).toMatch(/^conv_wino_/);
  expect(steps[0]!.ops.join(","), c.name).toMatch(/^(pad,)?window,matmul,(add,)?reshape,permute$/);
  expect(steps.length, c.name).toBe(c.expr.startsWith("relu") ? 2 : 1);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads, ...(relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const tag = `${c.name} ${relaxed ? "relaxed" : "plain"} ${threads} thread(s)${symbolic ? " symbolic N" : ""}`;
    const y = await runBoth(ir, "fwd", winogradInputs(c), { module: m });
    // The reference interpreter (float64) agrees with PyTorch to its own rounding.
    expect(maxErr(y.ref[0]!.data, c.out.y, `${tag} reference`)).toBeLessThan(1e-9);
    const tol = winogradBound(c);
    const torchErr = maxErr(y.wasm[0]!.data, c.out.y, `${tag} vs PyTorch`);
    const refErr = maxErr(y.wasm[0]!.data, y.ref[0]!.data, `${tag} vs reference`);
    expect(torchErr, `${tag}: max |Kiln - PyTorch| (bound ${tol})`).toBeLessThanOrEqual(tol);
    expect(refErr, `${tag}: max |Kiln - reference| (bound ${tol})`).toBeLessThanOrEqual(tol);
    if (process.env.KILN_WINOGRAD_ERRORS) process.stderr.write(`${tag}: max error ${refErr.toExponential(2)}, bound ${tol.toExponential(2)}\n`);
  } finally {
    m.dispose();
  }
}
