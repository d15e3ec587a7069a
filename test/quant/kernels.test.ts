// The wasm int8 matmul kernels against the integer/f32 reference of test/quant/reference.ts, exactly (no
// tolerance), on odd sizes, every input and output mode, row sub-ranges, and NaN/zero edge rows.
import { describe, expect, it } from "vitest";
import type { QMatmulKernel } from "../../compiler/codegen/kernel.js";
import { expectArray, rng } from "../codegen/wasm-harness.js";
import { kernelName, qInstance, randomWeight, refQMatmul, runQMatmul } from "./reference.js";

const SPECS: QMatmulKernel[] = [
  { input: "q8", output: "i32", bias: false, relu: false },
  { input: "dynamic", output: "i32", bias: false, relu: false },
  { input: "dynamic", output: "f32", bias: false, relu: false },
  { input: "dynamic", output: "f32", bias: true, relu: true },
  { input: "static", output: "q8", bias: true, relu: true },
  { input: "q8", output: "f32", bias: true, relu: false },
].map((s) => ({ kind: "qmatmul" as const, ...s }));

const ODD = [1, 3, 17, 255, 257];

function inputFor(spec: QMatmulKernel, r: () => number, M: number, K: number): Float32Array | Uint8Array {
  if (spec.input === "q8") return Uint8Array.from({ length: M * K }, () => Math.floor(r() * 256));
  // Mixed signs and magnitudes, with some exact zeros and rows of one sign.
  return Float32Array.from({ length: M * K }, (_, i) => (i % 11 === 0 ? 0 : (r() * 2 - (Math.floor(i / K) % 3 === 0 ? 0 : 1)) * 3));
}

describe("wasm qmatmul kernels are exact against the integer reference", async () => {
  const inst = await qInstance([...SPECS, { ...SPECS[3]!, input: "static" }]);
  for (const spec of SPECS) {
    it(kernelName(spec), () => {
      const r = rng(7);
      let cases = 0;
      for (const M of ODD) for (const K of ODD) for (const N of ODD) {
        if (M * K * N > 3e6) continue;
        const w = randomWeight(r, K, N, (M + K + N) % 2 === 0);
        const a = inputFor(spec, r, M, K);
        const opts = { bias: Float32Array.from({ length: N }, () => r() - 0.5), qin: { scale: Math.fround(0.0123), zeroPoint: 37 }, qout: { scale: Math.fround(0.05), zeroPoint: 3 } };
        expectArray(runQMatmul(inst, spec, a, M, K, w, opts), refQMatmul(spec, a, M, K, w, opts), {}, `${kernelName(spec)} M=${M} K=${K} N=${N}`);
        cases++;
      }
      expect(cases).toBeGreaterThan(100);
    });
  }

  it("computes only rows [m0, m1) and leaves the others untouched", () => {
    const spec = SPECS[3]!;
    const r = rng(3);
    const [M, K, N] = [70, 33, 19];
    const w = randomWeight(r, K, N);
    const a = inputFor(spec, r, M, K);
    const bias = new Float32Array(N).fill(0.25);
    const got = runQMatmul(inst, spec, a, M, K, w, { bias, rows: [5, 69] }) as Float32Array;
    const want = refQMatmul(spec, a, M, K, w, { bias }) as Float32Array;
    expectArray(got.subarray(5 * N, 69 * N), want.subarray(5 * N, 69 * N), {}, "rows 5..69");
    const guard = new Float32Array(new Uint8Array(4).fill(0xab).buffer)[0]!;
    expect(got.subarray(0, 5 * N).every((v) => Object.is(v, guard))).toBe(true);
    expect(got.subarray(69 * N).every((v) => Object.is(v, guard))).toBe(true);
  });

  it("turns a row with NaN (dynamic: or infinity) into NaN outputs, and an all-zero row into the bias", () => {
    const r = rng(5);
    const [M, K, N] = [3, 21, 9];
    const w = randomWeight(r, K, N);
    const a = Float32Array.from({ length: M * K }, () => r() - 0.5);
    a[0 * K + 20] = NaN; // in the scalar tail
    const inf = Float32Array.from(a);
    inf[0 * K + 20] = 1;
    inf[0 * K + 3] = -Infinity; // in the vector loop
    a.fill(0, 1 * K, 2 * K);
    const bias = Float32Array.from({ length: N }, (_, n) => n - 4);
    // dynamic: an infinity has no finite range, so its row is NaN too; static: it saturates like any large value
    const dyn = runQMatmul(inst, SPECS[3]!, inf, M, K, w, { bias }) as Float32Array;
    expectArray(dyn, refQMatmul(SPECS[3]!, inf, M, K, w, { bias }), {}, "dynamic -inf");
    expect(Array.from(dyn.subarray(0, N)).every(Number.isNaN)).toBe(true);
    const st = { ...SPECS[3]!, input: "static" as const }, qin = { scale: Math.fround(0.01), zeroPoint: 128 };
    const sat = runQMatmul(inst, st, inf, M, K, w, { bias, qin }) as Float32Array;
    expectArray(sat, refQMatmul(st, inf, M, K, w, { bias, qin }), {}, "static -inf");
    expect(Array.from(sat).every(Number.isFinite)).toBe(true);
    for (const spec of [SPECS[3]!, { ...SPECS[3]!, input: "static" as const }]) {
      const got = runQMatmul(inst, spec, a, M, K, w, { bias, qin: { scale: Math.fround(0.01), zeroPoint: 128 } }) as Float32Array;
      expectArray(got, refQMatmul(spec, a, M, K, w, { bias, qin: { scale: Math.fround(0.01), zeroPoint: 128 } }), {}, spec.input);
      expect(Array.from(got.subarray(0, N)).every(Number.isNaN)).toBe(true);
      expect(Array.from(got.subarray(N, 2 * N))).toEqual(Array.from(bias, (b) => Math.max(b, 0)));
    }
  });
});
