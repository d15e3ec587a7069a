// Matmul epilogues (passes/fusion.ts fuseMatmulEpilogues, codegen/plan-matmul.ts, wasm/matmul-epilogue.ts):
// elementwise consumers of a matmul fold into its store. Fused and unfused (--no-fusion) programs both match the
// float64 reference interpreter; kernel counts prove the fusion (an MLP forward is one kernel per layer).
import { describe, expect, it } from "vitest";
import { planModule } from "../../compiler/codegen/plan.js";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import type { RefTensor } from "../../compiler/ops/types.js";
import { expectClose, irOf, runBoth, wasmModule, type Input, lcgInput as rand } from "../helpers/backend.js";
import { epilogueProgram } from "./fusion-helpers.js";

const SRC = epilogueProgram();

function unfusedIR(src: string): IRModule {
  const r = compileToIR(src, "test.kiln", [], ["fusion"]);
  if (!r.ir) throw new Error("does not compile");
  return r.ir;
}

const fused = irOf(SRC);
const unfused = unfusedIR(SRC);
const plan = planModule(fused);
const stepsOf = (fn: string) => {
  const f = plan.functions.find((x) => x.name === fn)!;
  return f.steps.map((s) => ({ ...s, spec: plan.kernels.find((k) => k.name === s.kernel)!.spec }));
};

/** Runs fn fused and unfused on wasm; both must match the reference (f32 sums: rtol from K * 2^-24, generous factor). */
async function check(fn: string, inputs: Record<string, Input>, K: number): Promise<void> {
  const tol = Math.max(1e-5, K * 2 ** -24 * 8);
  for (const [what, ir] of [["fused", fused], ["unfused", unfused]] as const) {
    const mod = await modules(ir);
    const { wasm, ref } = await runBoth(ir, fn, inputs, { module: mod });
    wasm.forEach((t, i) => expectClose(t, ref[i]!, `${fn} ${what} [${Object.values(inputs)[0]!.shape}]`, tol, tol));
  }
}
const cache = new Map<IRModule, ReturnType<typeof wasmModule>>();
const modules = (ir: IRModule) => cache.get(ir) ?? (cache.set(ir, wasmModule(ir)), cache.get(ir)!);

describe("matmul epilogue fusion: plan", () => {
  it("folds bias, activation, residual and scaling into one matmul kernel", () => {
    for (const fn of ["lin", "lin_relu", "resid", "scale", "rowscale", "swish", "tn", "nt", "bmm", "bmm_shared", "bmm_mixed"]) {
      const st = stepsOf(fn);
      expect(st.map((s) => s.spec.kind), fn).toEqual(["matmul"]);
      expect((st[0]!.spec as MatmulKernel).epilogue, fn).toBeDefined();
      // Calling convention: scratch stays at index 2, the function's output is the last buffer.
      expect(st[0]!.buffers.at(-1), fn).toBe(plan.functions.find((x) => x.name === fn)!.outputValues[0]);
    }
    const lin = stepsOf("lin_relu")[0]!.spec as MatmulKernel;
    expect(lin.epilogue!.inputs).toEqual([{ dtype: "f32", bcast: [true, false] }]);
    expect(lin.epilogue!.out).toBe("f32");
    expect((stepsOf("rowscale")[0]!.spec as MatmulKernel).epilogue!.inputs[0]!.bcast).toEqual([false, true]);
    // A shared B merges the batch into rows; an input broadcast along only part of the rows keeps the batch.
    expect((stepsOf("bmm_shared")[0]!.spec as MatmulKernel).batchRank).toBe(0);
    expect((stepsOf("bmm_mixed")[0]!.spec as MatmulKernel)).toMatchObject({ batchRank: 1, epilogue: { inputs: [{ bcast: [false, true, false] }] } });
    expect((stepsOf("tn")[0]!.spec as MatmulKernel).transA).toBe(true);
  });

  it("keeps a pinned matmul (a function output) out of its consumer's kernel", () => {
    const st = stepsOf("pinned");
    expect(st.map((s) => s.spec.kind)).toEqual(["matmul", "elementwise"]);
    expect((st[0]!.spec as MatmulKernel).epilogue).toBeUndefined();
  });

  it("an MLP forward is one kernel per layer", () => {
    const st = stepsOf("mlp");
    expect(st.map((s) => s.spec.kind)).toEqual(["matmul", "matmul"]);
    expect(st.map((s) => s.ops)).toEqual([["matmul", "add", "relu"], ["matmul", "add"]]);
  });
});

describe("matmul epilogue fusion: wasm against the reference", () => {
  it("linear + bias / relu / residual / scale / swish at odd sizes", async () => {
    for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 3, 255], [255, 257, 17], [257, 255, 3], [64, 784, 128]] as const) {
      const x = rand([M, K], M + K), w = rand([K, N], N), b = rand([N], 7), r = rand([M, N], 9), s = rand([M, 1], 11);
      await check("lin", { x, w, b }, K);
      await check("lin_relu", { x, w, b }, K);
      await check("resid", { x, w, r }, K);
      await check("scale", { x, w }, K);
      await check("rowscale", { x, w, s }, K);
      await check("swish", { x, w }, K);
    }
  });

  it("transposed operands", async () => {
    for (const [M, K, N] of [[3, 17, 5], [17, 255, 33], [257, 3, 17]] as const) {
      const b = rand([N], 3);
      await check("tn", { a: rand([K, M], 1), w: rand([K, N], 2), b }, K);
      await check("nt", { x: rand([M, K], 4), w: rand([N, K], 5), b }, K);
    }
  });

  it("batched matmuls with broadcast epilogue inputs", async () => {
    for (const [B, M, K, N] of [[1, 3, 5, 7], [3, 17, 33, 9], [2, 255, 17, 257]] as const) {
      await check("bmm", { a: rand([B, M, K], 1), w: rand([B, K, N], 2), c: rand([B, 1, N], 3) }, K);
      await check("bmm_shared", { a: rand([B, M, K], 4), w: rand([K, N], 5), b: rand([N], 6) }, K);
      await check("bmm_mixed", { a: rand([B, M, K], 7), w: rand([K, N], 8), c: rand([B, 1, N], 9) }, K);
    }
  });

  it("the pinned matmul and the MLP", async () => {
    await check("pinned", { x: rand([17, 33], 1), w: rand([33, 9], 2), b: rand([9], 3) }, 33);
    await check("mlp", { x: rand([64, 784], 1), w1: rand([784, 128], 2), b1: rand([128], 3), w2: rand([128, 10], 4), b2: rand([10], 5) }, 784);
  });
});

describe("matmul epilogues storing f16/bf16", () => {
  it("plan: the cast is the epilogue's last op, no cast kernel", () => {
    for (const fn of ["lin16", "linbf", "mm16", "bmm16"]) {
      const st = stepsOf(fn);
      expect(st.map((s) => s.spec.kind), fn).toEqual(["matmul"]);
      expect((st[0]!.spec as MatmulKernel).epilogue!.out, fn).toBe(fn === "linbf" ? "bf16" : "f16");
    }
    expect(stepsOf("mm16")[0]!.spec).toMatchObject({ aDtype: "f16", bDtype: "f16", epilogue: { inputs: [{ dtype: "f16" }] } });
  });

  it("wasm against the reference over several K and row blocks (partial sums kept in scratch)", async () => {
    // One rounding of an f32 sum to the format (unit roundoff u: 2^-11 f16, 2^-8 bf16) against the reference's
    // rounding of the float64 sum: the two sums may round to neighbours, up to one ulp = 2u relative, plus the
    // f32 sum's own error (K * 2^-24, factor 8).
    const tolOf = (u: number, K: number) => 2 * u + K * 2 ** -24 * 8;
    // Decoded to numbers on both sides, so expectClose applies the float tolerance (it is exact for other dtypes).
    const close = (t: Tensor, r: RefTensor, what: string, tol: number) =>
      expectClose(new Tensor("f32", t.shape, t.toFlatArray()), { ...r, dtype: "f32" }, what, tol, tol);
    const half = (inp: Input, dtype: "f16"): Input => ({ ...inp, dtype });
    for (const [M, K, N] of [[1, 1, 1], [3, 17, 5], [17, 257, 33], [257, 600, 17]] as const) {
      const x = rand([M, K], 1), w = rand([K, N], 2), b = rand([N], 3);
      for (const [fn, u, inputs] of [
        ["lin16", 2 ** -11, { x, w, b }],
        ["linbf", 2 ** -8, { x, w, b }],
        ["mm16", 2 ** -11, { x: half(x, "f16"), w: half(w, "f16"), r: half(rand([M, N], 4), "f16") }],
      ] as const) {
        const { wasm, ref } = await runBoth(fused, fn, inputs, { module: await modules(fused) });
        close(wasm[0]!, ref[0]!, `${fn} [${M}, ${K}, ${N}]`, tolOf(u, K));
      }
      const { wasm, ref } = await runBoth(fused, "bmm16", { a: rand([2, M, K], 5), w: rand([2, K, N], 6) }, { module: await modules(fused) });
      close(wasm[0]!, ref[0]!, `bmm16 [${M}, ${K}, ${N}]`, tolOf(2 ** -11, K));
    }
  });
});

describe("matmul epilogue fusion: threads", () => {
  it("2 threads split the fused kernel by rows and give the 1-thread bits", async () => {
    const build = await buildWasm(fused, "epi");
    const one = await loadKilnModule(build.manifest, build.wasm);
    const two = await loadKilnModule(build.manifest, build.wasm, { threads: 2 });
    try {
      const cases: [string, Record<string, Input>][] = [
        ["lin_relu", { x: rand([257, 255], 1), w: rand([255, 33], 2), b: rand([33], 3) }],
        ["rowscale", { x: rand([1025, 64], 4), w: rand([64, 17], 5), s: rand([1025, 1], 6) }],
        ["bmm", { a: rand([3, 255, 257], 7), w: rand([3, 257, 17], 8), c: rand([3, 1, 17], 9) }],
        ["lin16", { x: rand([257, 600], 1), w: rand([600, 33], 2), b: rand([33], 3) }],
        ["mlp", { x: rand([64, 784], 1), w1: rand([784, 128], 2), b1: rand([128], 3), w2: rand([128, 10], 4), b2: rand([10], 5) }],
      ];
      for (const [fn, inputs] of cases) {
        const given = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor("f32", v.shape, v.data)]));
        const a = one.call(fn, given) as Tensor;
        const b = two.call(fn, given) as Tensor;
        const bits = (t: Tensor) => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        expect(bits(b), fn).toEqual(bits(a));
        const { ref } = await runBoth(fused, fn, inputs, { module: two });
        // f16 output: the rounding may pick the neighbour of the reference's (one ulp = 2 * 2^-11) beyond 1e-4.
        const tol = fn === "lin16" ? 1e-4 + 2 * 2 ** -11 : 1e-4;
        expectClose(new Tensor("f32", b.shape, b.toFlatArray()), { ...ref[0]!, dtype: "f32" }, `${fn} 2 threads`, tol, tol);
      }
    } finally {
      two.dispose();
    }
  });
});
