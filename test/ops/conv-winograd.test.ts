// conv2d 3x3 stride 1 as Winograd F(2x2, 3x3) on wasm (compiler/codegen/wasm/winograd.ts), plain and relaxed SIMD, 1
// and 2 threads: outputs against PyTorch (test/ops/torch-winograd-goldens.json, scripts/torch-winograd-goldens.py)
// and against the float64 reference interpreter, with Winograd's error bound; which convolutions take it.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { irOf, runBoth } from "../helpers/backend.js";

interface Case {
  name: string;
  expr: string;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  out: { shape: number[]; y: number[] };
}
const CASES = (JSON.parse(readFileSync(new URL("./torch-winograd-goldens.json", import.meta.url), "utf8")) as { cases: Case[] }).cases;

const ty = (s: number[]): string => `f32[${s.join(", ")}]`;
const program = (c: Case): string =>
  `fn fwd(${Object.entries(c.inputs).map(([k, v]) => `${k}: ${ty(v.shape)}`).join(", ")}) -> ${ty(c.out.shape)} {\n  return ${c.expr}\n}`;
const inputs = (c: Case) => Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, { dtype: "f32" as const, shape: v.shape, data: v.data }]));

/**
 * Winograd's rounding error. Direct convolution's f32 error is bounded by about (C*9) u sum|w||x|; F(2x2, 3x3) adds the
 * transforms' growth (Lavin & Gray 2016; Barabasz et al. 2020, "Error analysis and improving the accuracy of Winograd
 * convolution"): each product is of transformed values, |Bᵀ d B| <= 4 max|d| (row sums of |Bᵀ| are <= 2) and
 * |G g Gᵀ| <= 2.25 max|g| (row sums of |G| <= 1.5), summed over C channels and 16 terms of Aᵀ M A (row sums of
 * |Aᵀ| <= 3, so 9 per pixel): |err| <= (C + 6) u * 9 * 4 * 2.25 * C * max|d| max|g| to first order, i.e. 81 C (C + 6) u
 * max|x| max|w| (C + 6: the C-long sums plus the transforms' adds). Measured errors are about 1/1000 of that bound;
 * the test holds each output to it, which an indexing error (an O(1) wrong term) breaks at once.
 */
function bound(c: Case): number {
  const C = c.inputs.x!.shape[1]!;
  const maxAbs = (a: number[]) => a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  return 81 * C * (C + 6) * 2 ** -24 * maxAbs(c.inputs.x!.data) * maxAbs(c.inputs.w!.data);
}

function maxErr(got: ArrayLike<number>, want: ArrayLike<number>, what: string): number {
  expect(got.length, `${what}: length`).toBe(want.length);
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(Number(got[i]) - Number(want[i]));
    if (!(d <= e)) e = d; // NaN lands here too
  }
  return e;
}

async function check(c: Case, relaxed: boolean, threads: number): Promise<void> {
  const ir = irOf(program(c));
  const b = await buildWasm(ir, "wino", { wat: false });
  const steps = b.manifest.functions[0]!.steps;
  // The layer is the one Winograd kernel (gather, product, bias epilogue, NCHW store); a relu after the permute back
  // to NCHW is a kernel of its own, as with the implicit GEMM.
  expect(steps[0]!.kernel, c.name).toMatch(/^conv_wino_/);
  expect(steps[0]!.ops.join(","), c.name).toMatch(/^(pad,)?window,matmul,(add,)?reshape,permute$/);
  expect(steps.length, c.name).toBe(c.expr.startsWith("relu") ? 2 : 1);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads, ...(relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  try {
    const tag = `${c.name} ${relaxed ? "relaxed" : "plain"} ${threads} thread(s)`;
    const y = await runBoth(ir, "fwd", inputs(c), { module: m });
    // The reference interpreter (float64) agrees with PyTorch to its own rounding.
    expect(maxErr(y.ref[0]!.data, c.out.y, `${tag} reference`)).toBeLessThan(1e-9);
    const tol = bound(c);
    const torchErr = maxErr(y.wasm[0]!.data, c.out.y, `${tag} vs PyTorch`);
    const refErr = maxErr(y.wasm[0]!.data, y.ref[0]!.data, `${tag} vs reference`);
    expect(torchErr, `${tag}: max |Kiln - PyTorch| (bound ${tol})`).toBeLessThanOrEqual(tol);
    expect(refErr, `${tag}: max |Kiln - reference| (bound ${tol})`).toBeLessThanOrEqual(tol);
    if (process.env.KILN_WINOGRAD_ERRORS) process.stderr.write(`${tag}: max error ${refErr.toExponential(2)}, bound ${tol.toExponential(2)}\n`);
  } finally {
    m.dispose();
  }
}

describe("conv2d as Winograd F(2x2, 3x3), against PyTorch and the float64 reference", () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.expr} on ${ty(c.inputs.x!.shape)}`, async () => {
      await check(c, false, 1);
      await check(c, true, 1);
    });
  }
  it("two threads split the output channels", async () => {
    for (const c of [CASES[0]!, CASES[3]!]) {
      await check(c, false, 2);
      await check(c, true, 2);
    }
  });
});

describe("which convolutions run as Winograd", () => {
  const kernels = async (src: string): Promise<string[]> =>
    (await buildWasm(irOf(src), "w", { wat: false })).manifest.functions[0]!.steps.map((s) => s.kernel);
  it("3x3 stride 1 with 16 channels in and out does", async () => {
    expect(await kernels("fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 1) }"))
      .toEqual([expect.stringMatching(/^conv_wino_/)]);
  });
  it("fewer channels, a stride, a dilation or a 5x5 kernel keep the implicit GEMM", async () => {
    for (const src of [
      "fn f(x: f32[1, 8, 8, 8], w: f32[16, 8, 3, 3]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[8, 16, 3, 3]) -> f32[1, 8, 8, 8] { return conv2d(x, w, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 4, 4] { return conv2d(x, w, stride: 2, padding: 1) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 3, 3]) -> f32[1, 16, 4, 4] { return conv2d(x, w, dilation: 2) }",
      "fn f(x: f32[1, 16, 8, 8], w: f32[16, 16, 5, 5]) -> f32[1, 16, 8, 8] { return conv2d(x, w, padding: 2) }",
    ]) expect((await kernels(src)).filter((k) => k.startsWith("conv_wino"))).toEqual([]);
  });
});
