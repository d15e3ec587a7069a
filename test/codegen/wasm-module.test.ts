// The wasm module as a whole: lowering table coverage, imports/exports, determinism, optimisation, errors.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import type { KernelSpec, NamedKernel } from "../../compiler/codegen/kernel.js";
import { ALL_OPS, BINARY_OPS, COMPARE_OPS, LAYOUT_OPS, REDUCE_OPS, SOURCE_OPS, UNARY_OPS } from "../../compiler/ops/types.js";
import { WASM_LOWERING } from "../../compiler/codegen/wasm/op-emitters.js";
import { buildWasmModule, kernelParamCount } from "../../compiler/codegen/wasm/module.js";
import { instantiate, rng } from "./wasm-harness.js";
import { ew, inp, op, randomData, refEw, runEw } from "./ew-util.js";
import { sharesPackedB } from "../../compiler/codegen/wasm/parallel.js";
import { prepackName } from "../../runtime/wasm/prepack.js";
import { COL_RANGE_GLOBALS, SHARED_B_GLOBAL } from "../../runtime/wasm/threads-meta.js";

const sample: NamedKernel[] = [
  { name: "gelu_ish", spec: ew(2, [["f32", [false, false]], ["f32", [true, false]]], "f32", op("mul", "f32", inp(0), op("sigmoid", "f32", op("add", "f32", inp(0), inp(1))))) },
  { name: "rowsum", spec: { kind: "reduce", op: "sum", dtype: "f32", rank: 2, reduced: [false, true] } },
  { name: "mm", spec: { kind: "matmul", dtype: "f32", batchRank: 1, aBcast: [false], bBcast: [true] } },
  { name: "transpose", spec: { kind: "copy", dtype: "f32", rank: 2 } },
  { name: "iota", spec: { kind: "iota", dtype: "i32" } },
  { name: "logpow", spec: ew(1, [["f32"], ["f32"]], "f32", op("pow", "f32", op("log", "f32", inp(0)), op("tanh", "f32", inp(1)))) },
];

describe("lowering table", () => {
  it("has an entry of the right kind for every op", () => {
    for (const o of ALL_OPS) expect(WASM_LOWERING[o], o).toBeDefined();
    for (const o of [...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, "where", "cast"] as const) {
      const l = WASM_LOWERING[o];
      expect(l.kind, o).toBe("elementwise");
      if (l.kind === "elementwise") expect(typeof l.simd, o).toBe("function");
    }
    for (const o of REDUCE_OPS) expect(WASM_LOWERING[o]).toEqual({ kind: "reduce", op: o });
    for (const o of LAYOUT_OPS) expect(WASM_LOWERING[o].kind).toBe("layout");
    for (const o of SOURCE_OPS) expect(WASM_LOWERING[o].kind).toBe("source");
    expect(WASM_LOWERING.matmul.kind).toBe("matmul");
    expect(WASM_LOWERING.iota.kind).toBe("iota");
  });

  // The emitter table of the math ops lives beside it (op-emitters-math.ts) and must only type-import too.
  it("op-emitters.ts only type-imports (no binaryen at load time)", () => {
    for (const file of ["op-emitters.ts", "op-emitters-math.ts"]) {
      const src = readFileSync(new URL(`../../compiler/codegen/wasm/${file}`, import.meta.url), "utf8");
      const imports = src.split("\n").filter((l) => /^import\s/.test(l));
      expect(imports.length).toBeGreaterThan(0);
      for (const l of imports) expect(l, file).toMatch(/^import type |^import \{ MATH_WASM_LOWERING \} from "\.\/op-emitters-math\.js";$/);
    }
  });
});

describe("buildWasmModule", () => {
  it("imports env.memory, exports every kernel with the calling-convention arity", async () => {
    const { binary, text } = await buildWasmModule(sample);
    expect(WebAssembly.validate(binary)).toBe(true);
    expect(text).toContain('(import "env" "memory" (memory $0 1))');
    const mod = new WebAssembly.Module(binary);
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
    // 2-D f32 matmuls also export the B packer the thread pool shares B with, and the global it sets (parallel.ts).
    const sharing = sample.flatMap((k) => (k.spec.kind === "matmul" && sharesPackedB(k.spec) ? [prepackName(k.spec.transB === true)] : []));
    // Every gemm reads the column range of a column chunk from two exported globals (matmul.ts columnGlobals).
    const cols = sample.some((k) => k.spec.kind === "matmul" && !k.spec.winograd) ? [...COL_RANGE_GLOBALS] : [];
    const extra = [...(sharing.length > 0 ? [...new Set(sharing), SHARED_B_GLOBAL] : []), ...cols];
    expect(WebAssembly.Module.exports(mod).map((e) => e.name).sort()).toEqual([...sample.map((k) => k.name), "memory", ...extra].sort());
    const inst = new WebAssembly.Instance(mod, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 10 }) } });
    for (const k of sample) expect((inst.exports[k.name] as (...a: number[]) => void).length, k.name).toBe(kernelParamCount(k.spec));
  });

  it("is deterministic", async () => {
    const a = await buildWasmModule(sample);
    const b = await buildWasmModule(sample);
    expect(Buffer.from(a.binary).equals(Buffer.from(b.binary))).toBe(true);
    expect(a.text).toBe(b.text);
  });

  it("builds an empty module", async () => {
    const { binary } = await buildWasmModule([]);
    expect(WebAssembly.validate(binary)).toBe(true);
  });

  it("optimised output computes the same results", async () => {
    const plain = await instantiate(sample);
    const opt = await instantiate(sample, { optimize: true });
    const k = sample[0]!.spec as Extract<KernelSpec, { kind: "elementwise" }>;
    const lp = sample[5]!.spec as Extract<KernelSpec, { kind: "elementwise" }>;
    const r = rng(1);
    for (const n of [1, 7, 33]) {
      const x = randomData("f32", 3 * n, r, -5, 5);
      const y = randomData("f32", n, r, -5, 5);
      const want = refEw(k, [3, n], [x, y]);
      for (const inst of [plain, opt]) {
        const got = runEw(inst, "gelu_ish", k, [3, n], [x, y]);
        want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(w))));
      }
      const a = randomData("f32", n, r, 0.5, 5);
      const b = randomData("f32", n, r, -2, 2);
      const gp = runEw(plain, "logpow", lp, [n], [a, b]);
      const go = runEw(opt, "logpow", lp, [n], [a, b]);
      expect(Array.from(go)).toEqual(Array.from(gp));
    }
    const sizes = await Promise.all([buildWasmModule(sample), buildWasmModule(sample, { optimize: true })]);
    expect(sizes[1].binary.length).toBeLessThan(sizes[0].binary.length);
  });

  it("rejects duplicate or reserved kernel names", async () => {
    await expect(buildWasmModule([sample[4]!, { ...sample[4]! }])).rejects.toThrow(/duplicate kernel name "iota"/);
    await expect(buildWasmModule([{ name: "__kiln_exp_f32", spec: sample[4]!.spec }])).rejects.toThrow(/invalid kernel name/);
  });

  it("names the kernel in errors", async () => {
    const bad: NamedKernel = { name: "f64_neg", spec: ew(1, [["f64"]], "f64", op("neg", "f64", inp(0))) };
    await expect(buildWasmModule([sample[4]!, bad])).rejects.toThrow('wasm backend: dtype f64 not supported yet (kernel "f64_neg")');
  });
});
