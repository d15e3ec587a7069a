// Shared by the mixed-precision gradient tests: the examples with train blocks turned into one plain SGD step
// (lr 1, so a weight's change is minus its gradient), deterministic inputs, and the norm-wise error measure.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compileToIR, type Precision } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { Graph, IRModule } from "../../compiler/ir/graph.js";
import { Rng } from "../../runtime/rng.js";

/** Unit roundoff of each storage format: 2^-11 (f16, 11 significand bits), 2^-8 (bf16, 8 bits). */
export const UNIT = { "mixed-f16": 2 ** -11, "mixed-bf16": 2 ** -8 } as const;
/**
 * Norm-wise relative error allowed, in units of the roundoff. Each mixed matmul rounds its two operands and its
 * result (3 roundings); the longest gradient path in these examples (the CNN: 3 forward + 5 backward matmuls)
 * crosses at most 8 of them, so first-order error analysis bounds the error by 24u; 32 leaves room for the
 * second-order terms.
 */
export const FACTOR = 32;

/**
 * The error unit for example `f`: 1.5x the roundoff where it max-pools. max_pool2d sends a window's gradient to
 * its first maximum (PyTorch's rule); f16 rounding of the conv outputs makes ties the f32 run does not have, and
 * the whole gradient of such a window then moves to another element, a discrete error outside the first-order
 * bound above (splitting ties, as Kiln did before, moved half of it).
 */
export function unitFor(f: string, precision: keyof typeof UNIT): number {
  return UNIT[precision] * (/max_pool2d\(/.test(readFileSync(join("dsl-examples", f), "utf8")) ? 1.5 : 1) * (DEEP[f] ?? 1);
}

/**
 * Deeper examples, whose longest gradient path crosses more mixed matmuls than the bound above assumes:
 * resnet_small's stem gradient crosses 7 forward convs/matmuls and as many backward (about twice the CNN's), and
 * five batch_norms, whose backward subtracts nearly equal terms at batch 4. Measured (seeded inputs): f32 vs
 * mixed up to 138u (f16, blocks.1.b1) and 61u (bf16); the layers nearest the loss stay below 1u, the error
 * growing with depth as rounding error does (a wrong cast or gradient would be of order 1 / u).
 */
const DEEP: Record<string, number> = { "resnet_small.kiln": 5 };

export const TRAIN_EXAMPLES = readdirSync("dsl-examples").filter((f) => f.endsWith(".kiln") && /^train /m.test(readFileSync(join("dsl-examples", f), "utf8")));

/** One plain SGD step; the loss scale (on by default for mixed-f16) is set the same for every precision. */
export function sgdSource(file: string): string {
  // A schedule (gpt_char's warmup starts at lr 0) or clipping would change the step: each weight's change is its
  // gradient only under plain sgd(lr: 1).
  return readFileSync(join("dsl-examples", file), "utf8")
    .replace(/^\s*(schedule: *\w+\([^)]*\)|clip_grad_(norm|value): *[\d.e-]+)\s*$/gm, "")
    .replace(/optimizer: *\w+\([^)]*\)/g, "optimizer: sgd(lr: 1), loss_scale: dynamic(init: 1024)");
}

export function compile(src: string, file: string, precision: Precision, skip: string[] = []): IRModule {
  const r = compileToIR(src, file, [], skip, { precision });
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { [file]: src }));
  return r.ir;
}

export const dimsFor = (file: string) => ({ B: file.includes("cnn") ? 2 : 4 });

/** Uniform [0, 1) floats and integer labels in [0, 10), from a fixed seed. */
export function inputsFor(g: Graph, dims: Record<string, number>): Record<string, { data: number[]; shape: number[]; dtype: "f32" | "i32" }> {
  const rng = new Rng(7);
  const out: Record<string, { data: number[]; shape: number[]; dtype: "f32" | "i32" }> = {};
  for (const io of g.inputs) {
    const t = g.nodes[io.node].type;
    const shape = t.shape.map((d) => (typeof d === "number" ? d : dims[d]));
    const n = shape.reduce((a, b) => a * b, 1);
    const int = t.dtype === "i32";
    out[io.name] = { data: Array.from({ length: n }, () => (int ? Math.floor(rng.uniform(0, 10)) : rng.uniform(0, 1))), shape, dtype: int ? "i32" : "f32" };
  }
  return out;
}

export const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** |a - b| / |b| (2-norms). */
export function relErr(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < b.length; i++) d += (a[i] - b[i]) ** 2;
  const n = norm(b);
  return n === 0 ? Math.sqrt(d) : Math.sqrt(d) / n;
}

/**
 * Checks every weight's mixed gradient against f32; returns "name err/u" per weight. A weight whose f32 gradient
 * is analytically zero (a conv bias right before batch_norm: below 1e-6 of the largest) must stay negligible.
 */
export function compareGradients(f32: Map<string, number[]>, mixed: Map<string, number[]>, unit: number, fail: (msg: string) => void): string[] {
  const tol = FACTOR * unit;
  const largest = Math.max(...[...f32.values()].map(norm));
  if (!(largest > 0)) fail("every f32 gradient is zero");
  const errs: string[] = [];
  for (const [name, grad] of f32) {
    const m = mixed.get(name)!;
    if (norm(grad) < 1e-6 * largest) {
      if (norm(m) > tol * largest) fail(`${name}: should be ~0, |g| = ${norm(m)}`);
      continue;
    }
    const err = relErr(m, grad);
    errs.push(`${name} ${(err / unit).toFixed(2)}u`);
    if (!(err <= tol)) fail(`${name}: |g_mixed - g_f32| / |g_f32| = ${err.toExponential(2)} > ${tol.toExponential(2)}`);
  }
  // Not vacuous: the low-precision path really rounds (some error of at least a tenth of a unit).
  if (!errs.some((e) => parseFloat(e.split(" ")[1]) >= 0.1)) fail(`no rounding seen: ${errs.join(", ")}`);
  return errs;
}
