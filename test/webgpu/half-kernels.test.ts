// f16/bf16 storage in every WGSL kernel family (elementwise, copy, reduce input and result, matmul operands) on
// WebGPU against the float64 reference, in native (array<f16>, shader-f16) and forced packed (two per u32 word)
// modes, on odd sizes (the packed layout's last word is half used). Tolerances come from the formats: a result
// rounded to f16/bf16 may differ from the reference's rounding of the exact value by one ulp (2u relative, u the
// unit roundoff) since the kernel rounds an f32 result (double rounding); sums and dot products add f32
// accumulation error n * 2^-24 * sum|terms| (the standard bound for recursive summation, Higham 2002, 4.2).
import { afterAll, describe, expect, it } from "vitest";
import { irOf } from "../helpers/backend.js";
import { Rng } from "../../runtime/rng.js";
import { webgpuEnv } from "./helpers.js";
import { TINY, UNIT, expectWithin, fromValues, modesOf, randomInput, runMode, toBits, valuesOf, type Half } from "./half-helpers.js";

const env = await webgpuEnv("f16/bf16 kernels on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);
const SIZES = [1, 3, 17, 255, 257];

const source = (H: Half) => `
fn down(x: f32[N]) -> ${H}[N] { return cast(x, ${H}) }
fn up(x: ${H}[N]) -> f32[N] { return cast(x, f32) }
fn add(x: ${H}[N], y: ${H}[N]) -> ${H}[N] { return x + y }
fn bmul(x: ${H}[R, N], y: ${H}[N]) -> ${H}[R, N] { return x * y }
fn tr(x: ${H}[N, R]) -> ${H}[R, N] { return transpose(x) }
fn cat(x: ${H}[N, 3], y: ${H}[N, 2]) -> ${H}[N, 5] { return concat(x, y, axis: 1) }
fn tail(x: ${H}[N, 5]) -> ${H}[N, 3] { return slice(x, axis: 1, start: 1, end: 4) }
fn total(x: ${H}[R, N]) -> ${H}[R] { return sum(x, axis: 1) }
fn top(x: ${H}[R, N]) -> ${H}[N] { return max(x, axis: 0) }
fn wide_sum(x: ${H}[R, N]) -> f32[R] { return sum(cast(x, f32), axis: 1) }
fn mm(a: ${H}[M, K], b: ${H}[K, N]) -> f32[M, N] { return a @ b }
fn mm_cast(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return cast(a, ${H}) @ cast(b, ${H}) }
fn mm_low(a: ${H}[M, K], b: ${H}[K, N]) -> ${H}[M, N] { return cast(a @ b, ${H}) }
`;

const ulp = (H: Half) => (_i: number, w: number) => 2 * UNIT[H] * Math.abs(w) + TINY[H];
const exact = () => 0;

describe.skipIf(!env.h)("f16/bf16 storage in WGSL kernels matches the reference", { timeout: 120_000 }, () => {
  for (const H of ["f16", "bf16"] as const) {
    const ir = irOf(source(H));
    for (const mode of MODES) {
      if (H === "bf16" && mode === "native") continue; // bf16 is always packed: one run covers it
      const tag = `${H} ${mode}`;
      it(`${tag}: casts round to nearest even and widen exactly (sizes ${SIZES.join(", ")})`, async () => {
        const rng = new Rng(1);
        for (const n of SIZES) {
          const x = randomInput(rng, "f32", [n], 70000);
          const { gpu } = await runMode(env, ir, "down", { x }, mode, `${H}`);
          // The host conversion (runtime/dtype.ts) is the bit-exact truth for rounding f32 values.
          expect([...(gpu[0]!.data as Uint16Array)], `down n=${n}`).toEqual([...x.tensor.data as Float32Array].map((v) => toBits(H, v)));
          const h = randomInput(rng, H, [n]);
          const up = await runMode(env, ir, "up", { x: h }, mode, `${H}`);
          expectWithin(valuesOf(up.gpu[0]!), up.ref[0]!.data, exact, `up n=${n}`);
        }
      });
      it(`${tag}: elementwise arithmetic and broadcasting`, async () => {
        const rng = new Rng(2);
        for (const n of SIZES) {
          const r = await runMode(env, ir, "add", { x: randomInput(rng, H, [n]), y: randomInput(rng, H, [n]) }, mode, `${H}`);
          expectWithin(valuesOf(r.gpu[0]!), r.ref[0]!.data, ulp(H), `add n=${n}`);
          const b = await runMode(env, ir, "bmul", { x: randomInput(rng, H, [3, n]), y: randomInput(rng, H, [n]) }, mode, `${H}`);
          expectWithin(valuesOf(b.gpu[0]!), b.ref[0]!.data, ulp(H), `bmul n=${n}`);
        }
      });
      it(`${tag}: copies (transpose, concat at odd offsets, slice) keep the bits`, async () => {
        const rng = new Rng(3);
        for (const n of SIZES) {
          const t = await runMode(env, ir, "tr", { x: randomInput(rng, H, [n, 3]) }, mode, `${H}`);
          expectWithin(valuesOf(t.gpu[0]!), t.ref[0]!.data, exact, `tr n=${n}`);
          // Rows of 5 halves: the two parts start at odd element offsets in every other row.
          const c = await runMode(env, ir, "cat", { x: randomInput(rng, H, [n, 3]), y: randomInput(rng, H, [n, 2]) }, mode, `${H}`);
          expectWithin(valuesOf(c.gpu[0]!), c.ref[0]!.data, exact, `cat n=${n}`);
          const s = await runMode(env, ir, "tail", { x: randomInput(rng, H, [n, 5]) }, mode, `${H}`);
          expectWithin(valuesOf(s.gpu[0]!), s.ref[0]!.data, exact, `tail n=${n}`);
        }
      });
      it(`${tag}: reductions read 16-bit inputs (f32 sums) and store 16-bit results`, async () => {
        const rng = new Rng(4);
        for (const n of SIZES) {
          // Positive terms: sum|x| = |sum|, so the accumulation bound is relative to the result.
          const x = fromValues(H, [3, n], Array.from({ length: 3 * n }, () => rng.uniform() * 2));
          const t = await runMode(env, ir, "total", { x }, mode, `${H}`);
          expectWithin(valuesOf(t.gpu[0]!), t.ref[0]!.data, (i, w) => ulp(H)(i, w) + n * UNIT.f32 * Math.abs(w), `total n=${n}`);
          const w = await runMode(env, ir, "wide_sum", { x }, mode, `${H}`);
          expectWithin(valuesOf(w.gpu[0]!), w.ref[0]!.data, (_i, v) => n * UNIT.f32 * Math.abs(v), `wide_sum n=${n}`);
          const m = await runMode(env, ir, "top", { x: randomInput(rng, H, [3, n]) }, mode, `${H}`);
          expectWithin(valuesOf(m.gpu[0]!), m.ref[0]!.data, exact, `top n=${n}`);
        }
      });
      it(`${tag}: matmul with 16-bit operands (stored, or cast in the program) sums in f32`, async () => {
        const rng = new Rng(5);
        for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 255, 3], [5, 257, 17]] as const) {
          const a = randomInput(rng, H, [M, K]), b = randomInput(rng, H, [K, N]);
          // |error| <= K * 2^-24 * sum_k |a_ik b_kj| (operands are exact in f32); the bound uses max|a||b| = 16.
          const tol = () => K * UNIT.f32 * K * 16 + 1e-30;
          const r = await runMode(env, ir, "mm", { a, b }, mode, `${H}`);
          expectWithin(valuesOf(r.gpu[0]!), r.ref[0]!.data, tol, `mm ${M}x${K}x${N}`);
          const c = await runMode(env, ir, "mm_cast", { a: randomInput(rng, "f32", [M, K]), b: randomInput(rng, "f32", [K, N]) }, mode, `${H}`);
          expectWithin(valuesOf(c.gpu[0]!), c.ref[0]!.data, tol, `mm_cast ${M}x${K}x${N}`);
          // A 16-bit result (a cast folded into the store where the planner does): odd N puts a row's halves in
          // words shared with the next row.
          const l = await runMode(env, ir, "mm_low", { a, b }, mode, `${H}`);
          expectWithin(valuesOf(l.gpu[0]!), l.ref[0]!.data, (i, w) => tol() + ulp(H)(i, w), `mm_low ${M}x${K}x${N}`);
        }
      });
    }
  }
});
