// Shared by test/precision/conv-gather-half*.test.ts: a conv layer's value_and_grad under mixed precision, built
// with the half gathers (codegen/plan-conv-gather-half.ts) and with KILN_CONV_GATHER_HALF=0 (patches stored), run
// on wasm and compared with each other (bit for bit) and with the float64 reference of the f32 program at the
// mixed-precision tolerance of test/precision/helpers.ts (FACTOR units of the format's roundoff, norm-wise), and
// not vacuously: some output must show the rounding (at least a tenth of a unit, as compareGradients asks).
import { expect } from "vitest";
import { buildWasm, type Precision } from "../../compiler/compile.js";
import type { StepManifest } from "../../runtime/manifest.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { FACTOR, UNIT, compile, relErr } from "../precision/helpers.js";
import { runBoth } from "./backend.js";

export interface HalfConvCase {
  readonly name: string;
  readonly x: number[];
  readonly w: number[];
  readonly opts: string;
  /**
   * "input": x is the function's input, stored f16/bf16 (its patches 16-bit copies); "pooled": x is max_pool2d's
   * output, which mixed precision keeps f32 (its gradient compares it), so the patch rows are cast before the matmul.
   */
  readonly x16: "input" | "pooled";
}

export const HALF_CASES: HalfConvCase[] = [
  { name: "3x3 padding 1", x: [3, 3, 9, 10], w: [5, 3, 3, 3], opts: "padding: 1", x16: "input" },
  { name: "3x3 stride 2 padding 1", x: [2, 4, 11, 9], w: [6, 4, 3, 3], opts: "stride: 2, padding: 1", x16: "input" },
  { name: "5x3 stride [2, 1] padding [2, 0]", x: [3, 2, 13, 7], w: [4, 2, 5, 3], opts: "stride: [2, 1], padding: [2, 0]", x16: "input" },
  { name: "3x3 dilation 2 padding 2", x: [2, 3, 9, 12], w: [4, 3, 3, 3], opts: "dilation: 2, padding: 2", x16: "input" },
  // KC = 256 taps per packed block: C * 9 = 288 crosses it.
  { name: "after max_pool2d, 32 channels, padding 1", x: [2, 32, 12, 14], w: [8, 32, 3, 3], opts: "padding: 1", x16: "pooled" },
  { name: "after max_pool2d, stride 2, no padding", x: [3, 3, 14, 16], w: [5, 3, 3, 3], opts: "stride: 2", x16: "pooled" },
];

/** Deterministic values in [-1, 1): sin of distinct arguments. */
const fill = (n: number, k: number): number[] => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.731 + k)));
const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

/** The case's loss and value_and_grad (wrt x, w, b) source; `symbolic`: the batch is N. */
export function halfConvProgram(c: HalfConvCase, symbolic: boolean): { src: string; out: number[] } {
  const pooled = c.x16 === "pooled";
  // The conv's input image: x itself, or x pooled 2x2 (x twice as large).
  const xs = pooled ? [c.x[0]!, c.x[1]!, 2 * c.x[2]!, 2 * c.x[3]!] : c.x;
  const probe = compile(`fn f(x: f32[${c.x.join(", ")}], w: f32[${c.w.join(", ")}]) -> f32 { return sum(conv2d(x, w, ${c.opts})) }`, "probe.kiln", "f32");
  const out = probe.functions[0]!.nodes.find((n) => n.op === "permute" && n.type.shape.length === 4)!.type.shape as number[];
  const b = (s: readonly number[]) => (symbolic ? `f32[N, ${s.slice(1).join(", ")}]` : `f32[${s.join(", ")}]`);
  const O = c.w[0]!;
  const sig = `x: ${b(xs)}, w: f32[${c.w.join(", ")}], b: f32[${O}], r: ${b(out)}`;
  const inner = pooled ? "max_pool2d(x, 2)" : "x";
  const src = [
    // sum(y² r) with r > 0: no cancellation in the loss, whose relative error then means something.
    `fn loss(${sig}) -> f32 {\n  let y = conv2d(${inner}, w, b, ${c.opts})\n  return sum(y * y * r)\n}`,
    `fn vg(${sig}) -> (f32, ${b(xs)}, f32[${c.w.join(", ")}], f32[${O}]) { return value_and_grad(loss, wrt: [x, w, b])(x, w, b, r) }`,
  ].join("\n");
  return { src, out: [xs[0]!, ...out.slice(1)] };
}

/** No step stores patches (a window that is no matmul's or pooling's), the forward and weight gradient gathered. */
export function gathered(steps: readonly StepManifest[], what: string): void {
  const shown = steps.map((s) => `${s.kernel}[${s.ops.join(",")}]`).join(" ");
  expect(steps.some((s) => s.ops.includes("window") && !s.ops.includes("matmul") && !s.ops.includes("max")), `${what}: ${shown}`).toBe(false);
  expect(steps.filter((s) => s.kernel.startsWith("conv_wgrad_")).length, `${what}: ${shown}`).toBe(1);
  expect(steps.filter((s) => s.kernel.startsWith("conv_nchw_")).length, `${what}: ${shown}`).toBe(1);
}

/** Deterministic inputs of the case (`out`: the conv output's shape); r > 0. */
export function halfConvInputs(c: HalfConvCase, out: number[]) {
  const xs = c.x16 === "pooled" ? [c.x[0]!, c.x[1]!, 2 * c.x[2]!, 2 * c.x[3]!] : c.x;
  return {
    x: { dtype: "f32" as const, shape: xs, data: fill(size(xs), 1) },
    w: { dtype: "f32" as const, shape: c.w, data: fill(size(c.w), 2) },
    b: { dtype: "f32" as const, shape: [c.w[0]!], data: fill(c.w[0]!, 3) },
    r: { dtype: "f32" as const, shape: out, data: fill(size(out), 4).map((v) => Math.fround(1 + 0.5 * v)) },
  };
}

async function build(src: string, precision: Precision, half: boolean) {
  const saved = process.env.KILN_CONV_GATHER_HALF;
  if (half) delete process.env.KILN_CONV_GATHER_HALF;
  else process.env.KILN_CONV_GATHER_HALF = "0";
  try {
    const ir = compile(src, "conv.kiln", precision);
    return { ir, built: await buildWasm(ir, "conv", { wat: false }) };
  } finally {
    if (saved === undefined) delete process.env.KILN_CONV_GATHER_HALF;
    else process.env.KILN_CONV_GATHER_HALF = saved;
  }
}

export async function checkHalfConv(c: HalfConvCase, precision: "mixed-f16" | "mixed-bf16", opts: { relaxed: boolean; symbolic: boolean; threads: number }): Promise<void> {
  const tag = `${c.name} ${precision}${opts.relaxed ? " relaxed" : ""}${opts.symbolic ? " symbolic N" : ""} ${opts.threads} threads`;
  const { src, out } = halfConvProgram(c, opts.symbolic);
  const inputs = halfConvInputs(c, out);
  const on = await build(src, precision, true), off = await build(src, precision, false);
  const steps = (b: typeof on) => b.built.manifest.functions.find((f) => f.name === "vg")!.steps;
  gathered(steps(on), tag);
  expect(steps(off).some((s) => s.ops.join() === "window"), `${tag}: with KILN_CONV_GATHER_HALF=0 the patches are stored`).toBe(true);
  const f32 = compile(src, "conv.kiln", "f32");
  const results: number[][][] = [];
  let maxErr = 0;
  for (const b of [on, off]) {
    const m = await loadKilnModule(b.built.manifest, b.built.wasm, { threads: opts.threads, ...(opts.relaxed ? { relaxedWasm: b.built.wasmRelaxed } : {}) });
    try {
      const r = await runBoth(f32, "vg", inputs, { module: m });
      results.push(r.wasm.map((t) => Array.from(t.data as Float32Array)));
      // Against the float64 reference of the f32 program: the error mixed precision is allowed (helpers.ts).
      const tol = FACTOR * UNIT[precision];
      for (let k = 0; k < 4; k++) {
        const want = Array.from(r.ref[k]!.data, Number);
        const err = relErr(results.at(-1)![k]!, want);
        maxErr = Math.max(maxErr, err);
        expect(err, `${tag}${b === off ? " (patches stored)" : ""} output ${k}: |mixed - ref| / |ref|`).toBeLessThanOrEqual(tol);
      }
    } finally {
      m.dispose();
    }
  }
  expect(maxErr, `${tag}: no rounding seen`).toBeGreaterThanOrEqual(0.1 * UNIT[precision]);
  // The gathered packers widen or round each element exactly as the stored patches did, and the gemm sums in the
  // same order: the same bits.
  for (let k = 0; k < 4; k++) expect(results[0]![k], `${tag} output ${k}: gathered vs stored patches`).toEqual(results[1]![k]);
}
