// f16/bf16 programs compiled end to end (frontend, passes, planner, wasm kernels, runtime) against the float64
// reference interpreter, which rounds every f16/bf16 value to its format: elementwise ops, broadcasting, layout
// ops and mixed-precision casts, with tolerances derived from the format.
import { describe, it } from "vitest";
import type { DType } from "../../compiler/ir/types.js";
import { bf16BitsToF32, decodeElement, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import type { Tensor } from "../../runtime/tensor.js";
import { irOf, runBoth, wasmModule, type Input } from "../helpers/backend.js";
import { rng } from "./wasm-harness.js";

/** Significand bits p: ulp(y) = 2^(floor(log2|y|) - p + 1); f16 subnormals are spaced 2^-24. */
const P: Record<string, number> = { f16: 11, bf16: 8, f32: 24 };
const ulp = (d: DType, y: number): number => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(y))), d === "f16" ? -14 : -126) - P[d]! + 1);

/**
 * The reference is round(exact); the kernel is round(f32 result), whose f32 error is at most a few f32 ulps (exp,
 * log, tanh, sigmoid: rel 2e-6 + abs 2e-7, the bounds of their f32 tests). Two roundings of values that close
 * differ by at most one ulp of the output format, plus that f32 error when the output is f32 itself. (`unary`
 * chains f16 ops: both sides round at the same nodes, so only a rounding that goes the other way at an
 * intermediate could add more; the fixed seeds here have none.)
 */
function compare(got: Tensor, want: { dtype: DType; data: ArrayLike<number> }, what: string): void {
  for (let i = 0; i < want.data.length; i++) {
    const g = decodeElement(got.dtype, got.data[i]!);
    const w = want.data[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      if (!(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)))) throw new Error(`${what}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    const tol = (want.dtype === "f32" ? 0 : ulp(want.dtype, w)) + 2e-6 * Math.abs(w) + 2e-7;
    if (!(Math.abs(g - w) <= tol)) throw new Error(`${what}[${i}]: got ${g}, want ${w} (tolerance ${tol})`);
  }
}

const program = (h: string) => `
fn unary(x: ${h}[N]) -> ${h}[N] {
  return exp(x) + log(abs(x) + 1) * tanh(x) - sigmoid(x) + sqrt(abs(x)) + relu(-x)
}
fn binary(x: ${h}[N, M], y: ${h}[M]) -> ${h}[N, M] {
  return (x * y - y) / (abs(y) + 1)
}
fn mixed(x: ${h}[N, M], w: f32[M]) -> ${h}[N, M] {
  return cast(exp(cast(x, f32) * w), ${h})
}
fn widen(x: ${h}[N, M]) -> f32[M, N] {
  return permute(cast(x, f32), [1, 0]) * 3
}
fn layout(x: ${h}[N, M]) -> ${h}[M, N] {
  return permute(x, [1, 0])
}
`;

function data(dtype: DType, shape: number[], seed: number, lo: number, hi: number): Input {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: Array.from({ length: n }, () => lo + (hi - lo) * r()) };
}

describe("f16/bf16 programs on wasm against the reference", () => {
  for (const h of ["f16", "bf16"] as const) {
    it(h, async () => {
      const ir = irOf(program(h));
      const module = await wasmModule(ir);
      for (const [N, M] of [[1, 1], [3, 17], [5, 255], [2, 257]] as const) {
        const cases: [string, Record<string, Input>][] = [
          ["unary", { x: data(h, [N * M], N + M, -3, 3) }],
          ["binary", { x: data(h, [N, M], 1, -10, 10), y: data(h, [M], 2, -4, 4) }],
          ["mixed", { x: data(h, [N, M], 3, -2, 2), w: data("f32", [M], 4, -2, 2) }],
          ["widen", { x: data(h, [N, M], 5, -100, 100) }],
          ["layout", { x: data(h, [N, M], 6, -100, 100) }],
        ];
        for (const [fn, inputs] of cases) {
          const { wasm, ref } = await runBoth(ir, fn, inputs, { module });
          compare(wasm[0] as Tensor, ref[0]!, `${h} ${fn} [${N}, ${M}]`);
        }
      }
    });
  }
});

const mmProgram = (h: string) => `
fn mm(x: ${h}[M, K], w: ${h}[K, N]) -> f32[M, N] {
  return matmul(x, w)
}
fn mm_t(x: ${h}[M, K], w: ${h}[N, K]) -> f32[M, N] {
  return matmul(x, permute(w, [1, 0]))
}
fn linear(x: f32[M, K], w: ${h}[K, N]) -> f32[M, N] {
  return matmul(cast(x, ${h}), w)
}
`;

describe("matmul on f16/bf16 operands, f32 sums", () => {
  for (const h of ["f16", "bf16"] as const) {
    it(h, async () => {
      const ir = irOf(mmProgram(h));
      const module = await wasmModule(ir);
      const q = (v: number) => (h === "f16" ? f16BitsToF32(f32ToF16Bits(v)) : bf16BitsToF32(f32ToBf16Bits(v)));
      for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 300, 9], [6, 257, 13]] as const) {
        const x = data(h, [M, K], M + K, -1, 1);
        const w = data(h, [K, N], K + N, -1, 1);
        const wt = data(h, [N, K], K * N, -1, 1);
        for (const [fn, inputs, wAt] of [
          ["mm", { x, w }, (k: number, n: number) => w.data[k * N + n]!],
          ["mm_t", { x, w: wt }, (k: number, n: number) => wt.data[n * K + k]!],
          ["linear", { x: { ...x, dtype: "f32" as DType }, w }, (k: number, n: number) => w.data[k * N + n]!],
        ] as const) {
          const { wasm, ref } = await runBoth(ir, fn, inputs, { module });
          const got = wasm[0] as Tensor;
          // The reference sums the rounded operands exactly (float64); the kernel adds K products in f32, so
          // |error| <= K * 2^-24 * sum |a*b| (the standard gamma_K bound for recursive summation).
          for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) {
            let mag = 0;
            for (let k = 0; k < K; k++) mag += Math.abs(q(x.data[i * K + k]!) * q(wAt(k, n)));
            const g = got.data[i * N + n]!;
            const r = ref[0]!.data[i * N + n]!;
            if (!(Math.abs(g - r) <= K * 2 ** -24 * mag + 1e-30)) throw new Error(`${h} ${fn} [${M},${K},${N}] (${i},${n}): got ${g}, want ${r}`);
          }
        }
      }
    });
  }
});
