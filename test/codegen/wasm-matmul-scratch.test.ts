// Per-matmul packing scratch sized at the call's dims (runtime/wasm/matmul-scratch.ts) and the single-K-block 16-bit
// epilogue (MatmulEpilogue.singleK: an MR-row band of sums staged instead of an mc x nc block), on wasm against
// the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { planModule } from "../../compiler/codegen/plan.js";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { gemmScratchBytes, MICRO, matmulScratchBytes, matmulScratchBytesAt } from "../../compiler/codegen/wasm/matmul-blocking.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { f16BitsToF32, f32ToF16Bits, f32ToBf16Bits, bf16BitsToF32 } from "../../runtime/dtype.js";
import { expectClose, irOf, lcgInput as rand } from "../helpers/backend.js";

// The dW1 = xᵀ·dh matmul of the MLP training step (K = B symbolic) beside a forward matmul (K = 784 fixed).
const SRC = `fn g(x: f32[B, 784], dh: f32[B, 128], w: f32[784, 128]) -> (f32[784, 128], f32[B, 128]) {
  return transpose(x) @ dh, x @ w }`;

describe("one packing scratch per matmul step", () => {
  it("each step has its own scratch value, sized for its own M, K, N at the call's dims", () => {
    const plan = planModule(irOf(SRC));
    const f = plan.functions.find((x) => x.name === "g")!;
    const mms = f.steps.filter((s) => plan.kernels.find((k) => k.name === s.kernel)!.spec.kind === "matmul");
    expect(mms.length).toBe(2);
    const scr = mms.map((s) => f.values[s.buffers[2]!]!);
    expect(new Set(mms.map((s) => s.buffers[2])).size).toBe(2);
    for (const v of scr) expect(v.source.kind === "temp" && v.source.matmul !== undefined).toBe(true);
    const at = (i: number, B: number) => matmulScratchBytesAt((scr[i]!.source as { matmul: Parameters<typeof matmulScratchBytesAt>[0] }).matmul, { B });
    // Hand layout (gemmScratchBytes): 4 * (MR*NR + kc*(nc + mc)). dW1 at B = 64: kc = 64, nc = 128, mc = 96;
    // the relaxed build (MR = 6) is the larger: 4 * (48 + 64 * 224) = 57536 bytes (the plan used 224 KiB: K at KC).
    expect(at(0, 64)).toBe(57536);
    // At B = 8: kc = 8: 4 * (48 + 8 * 224) = 7360. At B = 300: kc = KC = 256: 4 * (48 + 256 * 224) = 229568.
    expect(at(0, 8)).toBe(7360);
    expect(at(0, 300)).toBe(229568);
    // x @ w at B = 8: M = 8 (mc = 8 plain, 12 relaxed), K = 784 (kc = 256), N = 128: max(4*(32 + 256*136), 4*(48 + 256*140)).
    expect(at(1, 8)).toBe(4 * (48 + 256 * 140));
    // The compile-time shape stays an upper bound for any B.
    for (const [i, B] of [[0, 8], [0, 300], [1, 8], [1, 300], [1, 5000]] as const) expect((scr[i]!.shape[0] as number) * 4).toBeGreaterThanOrEqual(at(i, B));
  });

  let one: KilnModule, two: KilnModule;
  beforeAll(async () => {
    const b = await buildWasm(irOf(SRC), "scratch");
    one = await loadKilnModule(b.manifest, b.wasm);
    two = await loadKilnModule(b.manifest, b.wasm, { threads: 2 });
  });
  afterAll(() => two?.dispose());

  it("B = 8 and B = 300 (K across one KC block) match the reference on 1 and 2 threads, alternating calls", () => {
    const ir = irOf(SRC);
    const w = rand([784, 128], 3);
    for (const B of [8, 300, 8, 300]) {
      const x = rand([B, 784], B), dh = rand([B, 128], B + 1);
      const ref = evaluateGraph(ir.functions[0]!, { x, dh, w }, {}, {});
      for (const [name, mod] of [["1 thread", one], ["2 threads", two]] as const) {
        const got = mod.call("g", { x: new Tensor("f32", x.shape, x.data), dh: new Tensor("f32", dh.shape, dh.data), w: new Tensor("f32", w.shape, w.data) }) as Tensor[];
        // f32 sums of K terms in [-1, 1] against float64: gamma_K ~ K * 2^-24 relative to sum |a b| <= K.
        const tol = (K: number) => K * K * 2 ** -24;
        expectClose(got[0]!, ref[0]!, `${name} dW B=${B}`, 0, tol(B));
        expectClose(got[1]!, ref[1]!, `${name} y B=${B}`, 0, tol(784));
      }
    }
  });
});

describe("single-K-block epilogues storing f16/bf16", () => {
  const src = (K: number, t: string) => `fn f(x: f32[M, ${K}], w: f32[${K}, N], b: f32[N]) -> ${t}[M, N] { return cast(relu(x @ w + b), ${t}) }
    fn ft(x: f32[M, ${K}], w: f32[N, ${K}]) -> ${t}[M, N] { return cast(x @ transpose(w), ${t}) }`;
  const U = { f16: 2 ** -11, bf16: 2 ** -8 } as const;
  const round = { f16: (v: number) => f16BitsToF32(f32ToF16Bits(v)), bf16: (v: number) => bf16BitsToF32(f32ToBf16Bits(v)) };

  for (const t of ["f16", "bf16"] as const) {
    for (const K of [1, 17, 256, 257]) {
      it(`${t}, K = ${K}: ${K <= 256 ? "band" : "block (K > KC)"} path matches the reference`, async () => {
        const ir = irOf(src(K, t));
        const plan = planModule(ir);
        for (const fn of ["f", "ft"]) {
          const step = plan.functions.find((x) => x.name === fn)!.steps[0]!;
          const spec = plan.kernels.find((k) => k.name === step.kernel)!.spec as MatmulKernel;
          expect(spec.epilogue?.out, fn).toBe(t);
          expect(spec.epilogue?.singleK, fn).toBe(K <= 256 ? true : undefined);
        }
        const b = await buildWasm(ir, "singlek");
        for (const threads of [1, 2]) {
          const mod = await loadKilnModule(b.manifest, b.wasm, { threads });
          try {
            // M, N cross the MC = 96 / NR = 8 / MR = 4 and 6 edges.
            for (const [M, N] of [[1, 1], [7, 13], [101, 35]] as const) {
              const x = rand([M, K], 5 + M), w = rand([K, N], 7 + N), wt = rand([N, K], 9 + N), bias = rand([N], 11);
              for (const [fn, inputs] of [["f", { x, w, b: bias }], ["ft", { x, w: wt }]] as const) {
                const g = ir.functions.find((x) => x.name === fn)!;
                const ref = evaluateGraph(g, inputs, {}, {})[0]!;
                const got = (mod.call(fn, Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]))) as Tensor).toFlatArray();
                // Both round the same sum to the format; the f32 and float64 sums differ by <= K * 2^-24 * sum|x w|
                // (sum|x w| <= K), which can move the rounded value by one ulp (2u relative) at most beyond it.
                const s = ref.data as ArrayLike<number>;
                for (let i = 0; i < M * N; i++) {
                  const acc = K * K * 2 ** -24 * 2;
                  const bound = 2 * U[t] * Math.abs(s[i]!) + acc * (1 + 2 * U[t]);
                  expect(Math.abs(got[i]! - s[i]!), `${fn} ${threads}t [${M}, ${K}, ${N}] @${i}`).toBeLessThanOrEqual(bound);
                  expect(round[t](got[i]!), `${fn} value is a ${t}`).toBe(got[i]!);
                }
              }
            }
          } finally {
            mod.dispose();
          }
        }
      });
    }
  }

  it("the band path reserves MR x nc sums instead of mc x nc (gemmScratchBytes)", () => {
    // Plain build, M = 101, K = 17, N = 35: nc = 40, mc = 96: block 4 * (32 + 17*136 + 96*40), band 4 * (32 + 17*136 + 4*40).
    expect(gemmScratchBytes(MICRO.plain, 101, 17, 35, "block")).toBe(4 * (32 + 17 * 136 + 96 * 40));
    expect(gemmScratchBytes(MICRO.plain, 101, 17, 35, "band")).toBe(4 * (32 + 17 * 136 + 4 * 40));
    expect(matmulScratchBytes(101, 17, 35, "band")).toBeLessThan(matmulScratchBytes(101, 17, 35, "block"));
  });
});
