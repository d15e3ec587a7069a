// Batched f32 matmul on the wasm backend: odd sizes, tile edges, K = 0 and broadcast batch axes.
import { describe, it, expect, beforeAll } from "vitest";
import type { MatmulKernel, NamedKernel } from "../../compiler/codegen/kernel.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { matmulScratchBytes } from "../../compiler/codegen/wasm/matmul-blocking.js";
import { instantiate, rng, type Instance } from "./wasm-harness.js";
import { numel, randomData } from "./ew-util.js";

const mm = (aBcast: boolean[], bBcast: boolean[]): MatmulKernel => ({ kind: "matmul", dtype: "f32", batchRank: aBcast.length, aBcast, bBcast });

const cases: Record<string, MatmulKernel> = {
  plain: mm([], []),
  b1: mm([false], [false]),
  b1_abc: mm([true], [false]),
  b1_bbc: mm([false], [true]),
  b2_mixed: mm([true, false], [false, true]),
  b3: mm([false, true, false], [false, false, true]),
};

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(cases).map(([name, spec]): NamedKernel => ({ name, spec })));
});

function runMatmul(name: string, bext: number[], M: number, K: number, N: number, seed: number): void {
  const k = cases[name]!;
  const aShape = [...bext.map((e, q) => (k.aBcast[q] ? 1 : e)), M, K];
  const bShape = [...bext.map((e, q) => (k.bBcast[q] ? 1 : e)), K, N];
  const r = rng(seed);
  const a = randomData("f32", numel(aShape), r, -1, 1);
  const b = randomData("f32", numel(bShape), r, -1, 1);
  inst.reset();
  const pa = inst.put(a);
  const pb = inst.put(b);
  const nOut = numel(bext) * M * N;
  const po = inst.out("f32", nOut);
  const ps = inst.alloc(matmulScratchBytes(M, K, N));
  inst.run(name, pa, pb, ps, po, ...bext, M, K, N, 0, M);
  expect(Array.from(inst.bytes(po + 4 * nOut, 16)).every((x) => x === 0xab)).toBe(true);
  const got = inst.read("f32", po, nOut);
  const nb = numel(bext);
  for (let t = 0; t < nb; t++) {
    // batch multi-index -> operand batch offsets
    let rem = t;
    const idx = new Array<number>(bext.length);
    for (let q = bext.length - 1; q >= 0; q--) { idx[q] = rem % bext[q]!; rem = Math.floor(rem / bext[q]!); }
    let ao = 0;
    let bo = 0;
    for (let q = 0; q < bext.length; q++) {
      ao = ao * (k.aBcast[q] ? 1 : bext[q]!) + (k.aBcast[q] ? 0 : idx[q]!);
      bo = bo * (k.bBcast[q] ? 1 : bext[q]!) + (k.bBcast[q] ? 0 : idx[q]!);
    }
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      let mag = 0;
      for (let kk = 0; kk < K; kk++) {
        const p = a[ao * M * K + i * K + kk]! * b[bo * K * N + kk * N + j]!;
        s += p;
        mag += Math.abs(p);
      }
      const g = got[t * M * N + i * N + j]!;
      if (!(Math.abs(g - s) <= 1e-6 * mag + 1e-7 * K + 1e-30) || (K === 0 && !Object.is(g, 0))) {
        throw new Error(`${name} bext=[${bext}] M=${M} K=${K} N=${N} batch ${t} [${i},${j}]: got ${g} want ${s}`);
      }
    }
  }
}

describe("matmul", () => {
  it("unbatched at small, odd and tile-edge sizes", () => {
    // K = 300 and 520: several KC (256) blocks, the last one partial (the microkernel's k chunks).
    const sizes = [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 64, 64], [4, 4, 8], [5, 3, 12], [8, 1, 13], [2, 7, 3], [1, 9, 16], [13, 2, 1], [5, 300, 9], [9, 520, 17]];
    sizes.forEach(([M, K, N], s) => runMatmul("plain", [], M!, K!, N!, s + 1));
    for (const M of [1, 3, 4, 5, 8]) for (const N of [1, 3, 4, 5, 7, 8, 9, 12, 16, 17]) runMatmul("plain", [], M, 3, N, M * 100 + N);
  });

  it("K = 0 writes zeros; M = 0 or N = 0 writes nothing", () => {
    runMatmul("plain", [], 3, 0, 5, 1);
    runMatmul("plain", [], 5, 0, 9, 1);
    runMatmul("plain", [], 0, 4, 5, 1);
    runMatmul("plain", [], 4, 4, 0, 1);
    runMatmul("b1", [3], 4, 0, 9, 1);
  });

  it("batched, with broadcast batch axes on either operand", () => {
    runMatmul("b1", [3], 5, 7, 9, 11);
    runMatmul("b1", [0], 5, 7, 9, 11);
    runMatmul("b1_abc", [4], 6, 5, 10, 12);
    runMatmul("b1_bbc", [4], 6, 5, 10, 13);
    runMatmul("b2_mixed", [2, 3], 3, 4, 5, 14);
    runMatmul("b2_mixed", [3, 1], 9, 2, 17, 15);
    runMatmul("b3", [2, 2, 3], 4, 3, 8, 16);
    runMatmul("b3", [1, 3, 2], 7, 6, 5, 17);
  });

  it("the plain microkernel's k loop is nested in an outer loop (TurboFan unrolls only nested loops of its size), the relaxed one's is not", async () => {
    // Structure, not speed: matmul-micro.ts says why (51 -> 61 GFLOP/s plain on Zen 5; relaxed 6x8 spilled when unrolled).
    const loops = async (simd: "plain" | "relaxed"): Promise<number> => {
      const { text } = await buildWasmModule([{ name: "m", spec: mm([], []) }], { optimize: true, text: true, simd });
      const fn = text.split("\n (func ").find((f) => f.startsWith(`$__kiln_mk${simd === "plain" ? "4x8_plain" : "6x8_relaxed"} `));
      expect(fn, `the ${simd} microkernel`).toBeDefined();
      return (fn!.match(/\(loop /g) ?? []).length;
    };
    expect(await loops("plain")).toBe(2);
    expect(await loops("relaxed")).toBe(1);
  });

  it("rejects non-f32 dtypes", async () => {
    await expect(buildWasmModule([{ name: "m", spec: { ...mm([], []), dtype: "i32" } }])).rejects.toThrow(/matmul over i32/);
    // f16/bf16 are operand storage formats (aDtype/bDtype, wasm-matmul-half.test.ts); the sum is always f32.
    await expect(buildWasmModule([{ name: "m", spec: { ...mm([], []), dtype: "bf16" } }])).rejects.toThrow(/matmul over bf16/);
    await expect(buildWasmModule([{ name: "m", spec: { ...mm([], []), dtype: "f64" } }])).rejects.toThrow("wasm backend: dtype f64 not supported yet");
  });
});
