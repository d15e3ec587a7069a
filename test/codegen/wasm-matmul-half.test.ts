// Matmul with f16/bf16 operand storage (aDtype/bDtype) and operand rounding (aRound/bRound) on the wasm backend,
// against a float64 reference: transposed and batched operands, tile-edge sizes, K across the KC = 256 block.
import { describe, it, beforeAll } from "vitest";
import type { MatmulKernel, NamedKernel } from "../../compiler/codegen/kernel.js";
import { matmulScratchBytes } from "../../compiler/codegen/wasm/matmul-blocking.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { Instance, rng, type AnyArray } from "./wasm-harness.js";
import { numel } from "./ew-util.js";

type F = "f32" | "f16" | "bf16";

const mm = (o: Partial<MatmulKernel> & { batchRank?: number }): MatmulKernel => ({
  kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [], ...o,
});

const cases: Record<string, MatmulKernel> = {
  h16: mm({ aDtype: "f16", bDtype: "f16" }),
  h16_tt: mm({ aDtype: "f16", bDtype: "f16", transA: true, transB: true }),
  h16_tn: mm({ aDtype: "f16", bDtype: "f16", transA: true }),
  b16: mm({ aDtype: "bf16", bDtype: "bf16" }),
  b16_nt: mm({ aDtype: "bf16", bDtype: "bf16", transB: true }),
  mixed: mm({ aDtype: "f16", bDtype: "f32" }),
  round16: mm({ aRound: "f16", bRound: "f16" }),
  roundb16_tt: mm({ aRound: "bf16", bRound: "bf16", transA: true, transB: true }),
  h16_rb16: mm({ aDtype: "f16", aRound: "bf16", bDtype: "bf16", bRound: "bf16" }),
  h16_batched: mm({ aDtype: "f16", bDtype: "f16", batchRank: 2, aBcast: [false, true], bBcast: [true, false] }),
};

const insts: Partial<Record<"plain" | "relaxed", Instance>> = {};
beforeAll(async () => {
  const named = Object.entries(cases).map(([name, spec]): NamedKernel => ({ name, spec }));
  // Both builds: the relaxed one has a 6-row microkernel, so the packing edges differ. An engine without
  // relaxed SIMD cannot compile that one; its cases are then skipped (the plain build must always run).
  for (const simd of ["plain", "relaxed"] as const) {
    const { binary } = await buildWasmModule(named, { simd });
    const mem = new WebAssembly.Memory({ initial: 16 });
    const mod = await WebAssembly.compile(binary).catch((e: unknown) => { if (simd === "plain") throw e; return undefined; });
    if (mod) insts[simd] = new Instance(mem, (await WebAssembly.instantiate(mod, { env: { memory: mem } })).exports as never);
  }
});

const encode = (f: F) => (f === "f16" ? f32ToF16Bits : f === "bf16" ? f32ToBf16Bits : Math.fround);
const decode = (f: F) => (f === "f16" ? f16BitsToF32 : f === "bf16" ? bf16BitsToF32 : (x: number) => x);
/** Unit roundoff: 2^-11 for binary16 (11-bit significand), 2^-8 for bfloat16 (8 bits), 2^-24 for binary32. */
const U: Record<F, number> = { f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 };

/**
 * Runs one case and checks every output element against two float64 references:
 *  exact:   the operands as the kernel must see them (decoded storage, then rounded as aRound/bRound say); the only
 *           error left is the f32 accumulation, |err| <= K * 2^-24 * sum |a*b| (the gamma_K bound);
 *  unrounded: the f32 values the operands came from; each product then also carries the operands' rounding,
 *           relative (1 + u_a)(1 + u_b) - 1 <= u_a + u_b + u_a*u_b, so |err| <= (that + K * 2^-24) * sum |a*b|.
 */
function run(name: string, simd: "plain" | "relaxed", bext: number[], M: number, K: number, N: number, seed: number): void {
  const inst = insts[simd];
  if (!inst) return; // the engine has no relaxed SIMD (Node 20 without --experimental-wasm-relaxed-simd)
  const k = cases[name]!;
  const fa: F = k.aDtype ?? "f32";
  const fbb: F = k.bDtype ?? "f32";
  const aShape = [...bext.map((e, q) => (k.aBcast[q] ? 1 : e)), ...(k.transA ? [K, M] : [M, K])];
  const bShape = [...bext.map((e, q) => (k.bBcast[q] ? 1 : e)), ...(k.transB ? [N, K] : [K, N])];
  const r = rng(seed);
  const src = (n: number) => Array.from({ length: n }, () => Math.fround((r() * 2 - 1) * (r() < 0.1 ? 300 : 1)));
  const aVals = src(numel(aShape));
  const bVals = src(numel(bShape));
  const store = (f: F, v: number[]): AnyArray => (f === "f32" ? Float32Array.from(v) : Uint16Array.from(v.map(encode(f))));
  const seen = (f: F, rnd: F | undefined, v: number[]) => v.map((x) => {
    const y = decode(f)(encode(f)(x));
    return rnd ? decode(rnd)(encode(rnd)(y)) : y;
  });
  const aSeen = seen(fa, k.aRound, aVals);
  const bSeen = seen(fbb, k.bRound, bVals);
  const ua = U[fa] + (k.aRound ? U[k.aRound] : 0);
  const ub = U[fbb] + (k.bRound ? U[k.bRound] : 0);

  inst.reset();
  const pa = inst.put(store(fa, aVals));
  const pb = inst.put(store(fbb, bVals));
  const nOut = numel(bext) * M * N;
  const po = inst.out("f32", nOut);
  const ps = inst.alloc(matmulScratchBytes(M, K, N));
  inst.run(name, pa, pb, ps, po, ...bext, M, K, N, 0, M);
  if (!Array.from(inst.bytes(po + 4 * nOut, 16)).every((x) => x === 0xab)) throw new Error(`${name}: wrote past the output`);
  const got = inst.read("f32", po, nOut);

  for (let t = 0; t < numel(bext); t++) {
    let rem = t;
    let ao = 0;
    let bo = 0;
    const idx = new Array<number>(bext.length);
    for (let q = bext.length - 1; q >= 0; q--) { idx[q] = rem % bext[q]!; rem = Math.floor(rem / bext[q]!); }
    for (let q = 0; q < bext.length; q++) {
      ao = ao * (k.aBcast[q] ? 1 : bext[q]!) + (k.aBcast[q] ? 0 : idx[q]!);
      bo = bo * (k.bBcast[q] ? 1 : bext[q]!) + (k.bBcast[q] ? 0 : idx[q]!);
    }
    const ai = (i: number, kk: number) => ao * M * K + (k.transA ? kk * M + i : i * K + kk);
    const bi = (kk: number, j: number) => bo * K * N + (k.transB ? j * K + kk : kk * N + j);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let exact = 0;
      let orig = 0;
      let mag = 0;
      for (let kk = 0; kk < K; kk++) {
        exact += aSeen[ai(i, kk)]! * bSeen[bi(kk, j)]!;
        orig += aVals[ai(i, kk)]! * bVals[bi(kk, j)]!;
        mag += Math.abs(aVals[ai(i, kk)]! * bVals[bi(kk, j)]!);
      }
      const g = got[t * M * N + i * N + j]!;
      const acc = K * U.f32 * 1.01 * mag + 1e-30; // 1.01: mag is of the unrounded operands
      const where = `${name}/${simd} bext=[${bext}] M=${M} K=${K} N=${N} [${t},${i},${j}]`;
      if (!(Math.abs(g - exact) <= acc)) throw new Error(`${where}: got ${g}, exact-operand reference ${exact}, bound ${acc}`);
      const tol = (ua + ub + ua * ub) * mag + acc;
      if (!(Math.abs(g - orig) <= tol)) throw new Error(`${where}: got ${g}, f32 reference ${orig}, bound ${tol}`);
    }
  }
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 9], [5, 300, 13], [13, 257, 17], [4, 8, 8], [7, 1, 3], [33, 3, 1]];

describe("matmul with f16/bf16 operands", () => {
  for (const name of Object.keys(cases).filter((n) => !n.includes("batched"))) {
    it(name, () => {
      for (const simd of ["plain", "relaxed"] as const) SHAPES.forEach(([M, K, N], s) => run(name, simd, [], M, K, N, s + 7));
    });
  }
  it("batched with broadcast batch axes", () => {
    for (const simd of ["plain", "relaxed"] as const) {
      run("h16_batched", simd, [2, 3], 5, 7, 9, 1);
      run("h16_batched", simd, [3, 1], 9, 260, 6, 2);
    }
  });
});
