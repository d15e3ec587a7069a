// Fused matmul epilogues (f16 / bf16 / f32 stores) in the relaxed-SIMD build (MR = 6) beside the plain one (MR = 4),
// on edge row bands and 2-thread row chunks, against the float64 reference; relaxed runs in a child node with the flag.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { planModule } from "../../compiler/codegen/plan.js";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { irOf } from "../helpers/backend.js";
import { childWithRuntime } from "../perf-correctness/child.js";

// Dyadic inputs (multiples of 1/8 in [-1, 1]): every product is a multiple of 2^-6 and every partial sum stays
// below 2^10, so f32 accumulation is exact in any order, fused (relaxed madd) or not. The only error left is the
// final store, so the tolerance is the format's unit roundoff alone.
const GEN = `(n, seed) => { let s = seed >>> 0; return Array.from({ length: n }, () => (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24) % 17 - 8) / 8); }`;
const gen = new Function(`return ${GEN}`)() as (n: number, seed: number) => number[];

const N = 128;
// Edge row bands for MR = 4 and 6 (1, 5, 7, 13, 63, 65 leave 1..5 rows in the last band), and 64 (the repro).
const MS = [1, 5, 7, 13, 63, 64, 65];
const FNS = ["h16", "hb16", "s32"] as const;
// Unit roundoff of the stored format (RNE: |round(x) - x| <= u |x| for normal x); f16 subnormals are spaced 2^-24,
// so up to 2^-25 absolute beside it.
const U = { h16: 2 ** -11, hb16: 2 ** -8, s32: 2 ** -24 } as const;
const ABS = { h16: 2 ** -25, hb16: 0, s32: 0 } as const;

const src = (K: number) => `
fn h16(x: f32[M, ${K}], w: f32[${K}, ${N}], b: f32[${N}]) -> f16[M, ${N}] { return cast(relu(x @ w + b), f16) }
fn hb16(x: f32[M, ${K}], w: f32[${K}, ${N}], b: f32[${N}]) -> bf16[M, ${N}] { return cast(x @ w + b, bf16) }
fn s32(x: f32[M, ${K}], w: f32[${K}, ${N}], b: f32[${N}]) -> f32[M, ${N}] { return relu(x @ w + b) }`;

const inputs = (M: number, K: number) => ({ x: gen(M * K, 1 + M), w: gen(K * N, 2 + K), b: gen(N, 3) });

// K = 200 fits one KC block ("band" staging of MR x nc sums); K = 784 takes 4 ("block" staging of mc x nc sums).
for (const [K, path] of [[200, "band"], [784, "block"]] as const) {
  describe(`relaxed-SIMD matmul epilogue, K = ${K} (${path} staging)`, () => {
    it("plain and relaxed builds, 1 and 2 threads, match the reference on every edge band", async () => {
      const ir = irOf(src(K));
      const plan = planModule(ir);
      for (const fn of FNS) {
        const step = plan.functions.find((f) => f.name === fn)!.steps[0]!;
        const spec = plan.kernels.find((k) => k.name === step.kernel)!.spec as MatmulKernel;
        expect(spec.kind, fn).toBe("matmul");
        expect(spec.epilogue?.singleK, fn).toBe(fn !== "s32" && path === "band" ? true : undefined);
      }
      const build = await buildWasm(ir, "epirelaxed");
      const r = await childWithRuntime(build, `
        const gen = ${GEN};
        const out = {};
        for (const [simd, extra] of [["plain", {}], ["relaxed", { relaxedWasm }]]) {
          for (const threads of [1, 2]) {
            const m = await loadKilnModule(manifest, wasm, { threads, ...extra });
            for (const M of ${JSON.stringify(MS)}) {
              const args = { x: Float32Array.from(gen(M * ${K}, 1 + M)), w: Float32Array.from(gen(${K * N}, ${2 + K})), b: Float32Array.from(gen(${N}, 3)) };
              for (const fn of ${JSON.stringify(FNS)}) out[[fn, M, simd, threads].join("|")] = Array.from(m.call(fn, args, { dims: { M } }).toFlatArray());
            }
            m.dispose();
          }
        }
        console.log(JSON.stringify({ relaxed: relaxedSimdSupported(), out }));
      `, ["--experimental-wasm-relaxed-simd"], 120_000);
      expect(r.status, r.stderr).toBe(0);
      const { relaxed, out } = JSON.parse(r.stdout) as { relaxed: boolean; out: Record<string, number[]> };
      expect(relaxed).toBe(true);
      for (const M of MS) {
        const inp = inputs(M, K);
        const refIn = { x: { dtype: "f32" as const, shape: [M, K], data: inp.x }, w: { dtype: "f32" as const, shape: [K, N], data: inp.w }, b: { dtype: "f32" as const, shape: [N], data: inp.b } };
        for (const fn of FNS) {
          const g = ir.functions.find((f) => f.name === fn)!;
          const ref = evaluateGraph(g, refIn, {}, { M })[0]!.data as ArrayLike<number>;
          for (const simd of ["plain", "relaxed"]) {
            for (const threads of [1, 2]) {
              const got = out[[fn, M, simd, threads].join("|")]!;
              expect(got.length).toBe(M * N);
              const bad: string[] = [];
              for (let i = 0; i < M * N; i++) {
                if (!(Math.abs(got[i]! - ref[i]!) <= U[fn] * Math.abs(ref[i]!) + ABS[fn])) bad.push(`[${Math.floor(i / N)}, ${i % N}] ${got[i]} vs ${ref[i]}`);
              }
              expect(bad.slice(0, 4), `${fn} ${simd} ${threads}t M=${M} K=${K}: ${bad.length} wrong`).toEqual([]);
            }
          }
        }
      }
    }, 180_000);
  });
}
