// Math helpers (wasm/math.ts) are inlined into every kernel that uses them, also when several kernels share one
// (wasm/module.ts raises Binaryen's always-inline size for the optimizer): a call per vector had cost about a third
// of the exp pass of a softmax in a module whose exp also served another kernel. Checked on the optimized text.
import { describe, expect, it } from "vitest";
import binaryen from "binaryen";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import type { NamedKernel } from "../../compiler/codegen/kernel.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { INTERNAL_FN_PREFIXES } from "../../compiler/codegen/wasm/matmul-micro.js";
import { ew, inp, op } from "./ew-util.js";

const UNARY: PrimOp[] = ["exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "log1p", "expm1"];

describe("math helpers inlined into their kernels", () => {
  it("each helper used by two kernels (vector loop and scalar form each): no call is left but the matmul's; the setting is restored", async () => {
    const before = binaryen.getAlwaysInlineMaxSize();
    const kernels: NamedKernel[] = [];
    for (const name of UNARY) {
      kernels.push({ name: `${name}_a`, spec: ew(1, [["f32"]], "f32", op(name, "f32", inp(0))) });
      kernels.push({ name: `${name}_b`, spec: ew(2, [["f32"], ["f32", [false, true]]], "f32", op("mul", "f32", op(name, "f32", inp(0)), inp(1))) });
    }
    kernels.push({ name: "pow_a", spec: ew(1, [["f32"], ["f32"]], "f32", op("pow", "f32", inp(0), inp(1))) });
    kernels.push({ name: "pow_b", spec: ew(1, [["f32"], ["f32"]], "f32", op("pow", "f32", inp(1), inp(0))) });
    // Two matmuls share the gemm's internal functions, which stay calls (inlined, the relaxed matmuls ran 2x slower).
    const mm = { kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [] } as const;
    kernels.push({ name: "mm_a", spec: mm }, { name: "mm_b", spec: { ...mm, transB: true } });
    for (const simd of ["plain", "relaxed"] as const) {
      const { text } = await buildWasmModule(kernels, { optimize: true, simd });
      expect(text, simd).toContain("(func $exp_a");
      const callees = [...text.matchAll(/\(call \$([A-Za-z0-9_]+)/g)].map((c) => c[1]!);
      expect(callees.filter((c) => !INTERNAL_FN_PREFIXES.some((p) => c.startsWith(p))), simd).toEqual([]);
      expect(callees.some((c) => c.startsWith("__kiln_gemm_")), simd).toBe(true);
    }
    // Unoptimized, the helpers are functions called per element (so the check above can fail).
    const raw = (await buildWasmModule(kernels, { optimize: false })).text;
    expect((raw.match(/\(call /g) ?? []).length).toBeGreaterThan(10);
    expect(binaryen.getAlwaysInlineMaxSize()).toBe(before);
  }, 120_000);
});
