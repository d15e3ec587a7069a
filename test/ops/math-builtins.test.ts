// The math builtins of issue 16 (erf ... topk) end to end: each as a Kiln program, its output and its input
// gradient on wasm (fused and unfused) and in the float64 reference, against PyTorch's numbers from
// test/ops/torch-math-goldens.json (written by scripts/torch-math-goldens.py); plus their diagnostics.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { erf64 } from "../../compiler/ops/special-functions.js";
import { runBoth } from "../helpers/backend.js";

interface Golden { name: string; expr: string; shape: number[]; x: number[]; outShape: number[]; w: number[]; y: number[]; grad: number[] }
const G = JSON.parse(readFileSync(new URL("./torch-math-goldens.json", import.meta.url), "utf8")) as {
  cases: Golden[]; topk_indices: number[]; max_indices: number[]; min_indices: number[]; arange: Record<string, number[]>; erf64: [number, number][];
};

const ty = (s: number[]): string => (s.length ? `f32[${s.join(", ")}]` : "f32");

function compile(src: string, skip: string[]): IRModule {
  const r = compileToIR(src, "t.kiln", [], skip);
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "t.kiln": src }));
  return r.ir;
}

/** y = expr (the values of a (values, indices) pair), and the gradient of sum(y * w) with respect to x. */
function program(c: Golden): string {
  const pair = c.expr.startsWith("topk(") || c.expr.includes("indices: true");
  const body = pair ? `let v, i = ${c.expr}\n  return v` : `return ${c.expr}`;
  return [
    `fn y(x: ${ty(c.shape)}) -> ${ty(c.outShape)} {\n  ${body}\n}`,
    `fn l(x: ${ty(c.shape)}, w: ${ty(c.outShape)}) -> f32 { return sum(y(x) * w) }`,
    `fn g(x: ${ty(c.shape)}, w: ${ty(c.outShape)}) -> ${ty(c.shape)} { return grad(l)(x, w) }`,
  ].join("\n");
}

function close(got: ArrayLike<number>, want: number[], what: string, rtol: number, atol: number): void {
  want.forEach((v, i) => {
    const g = Number(got[i]);
    const ok = Number.isNaN(v) ? Number.isNaN(g) : Math.abs(g - v) <= atol + rtol * Math.abs(v);
    if (!ok) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

describe("math builtins against PyTorch (outputs and gradients)", () => {
  for (const c of G.cases) {
    it(`${c.name}: ${c.expr}`, async () => {
      const src = program(c);
      const xs = { x: { dtype: "f32" as const, shape: c.shape, data: c.x } };
      const w = { dtype: "f32" as const, shape: c.outShape, data: c.w };
      for (const skip of [[], ["fusion"]]) {
        const ir = compile(src, skip);
        const tag = skip.length ? "unfused" : "fused";
        const fwd = await runBoth(ir, "y", xs);
        close(fwd.ref[0].data, c.y, `${c.name} reference`, 1e-12, 1e-12);
        close(fwd.wasm[0].data, c.y, `${c.name} wasm ${tag}`, 3e-6, 1e-6);
        const bwd = await runBoth(ir, "g", { ...xs, w });
        close(bwd.ref[0].data, c.grad, `${c.name} reference gradient`, 1e-9, 1e-12);
        close(bwd.wasm[0].data, c.grad, `${c.name} wasm ${tag} gradient`, 1e-5, 1e-6);
      }
    });
  }

  it("topk indices (first of equal values), as torch.topk", async () => {
    const c = G.cases.find((k) => k.name === "topk_values")!;
    const src = `fn f(x: f32[3, 4]) -> (f32[3, 3], i32[3, 3]) { return topk(x, 3, axis: 1) }`;
    const { wasm, ref } = await runBoth(compile(src, []), "f", { x: { dtype: "f32", shape: [3, 4], data: c.x } });
    expect(Array.from(ref[1].data)).toEqual(G.topk_indices);
    expect(Array.from(wasm[1].data as Int32Array)).toEqual(G.topk_indices);
  });

  it("max/min with indices: true give the first extreme's index, as torch.max(x, dim) / torch.min(x, dim)", async () => {
    const c = G.cases.find((k) => k.name === "max_indices")!;
    const src = [
      "fn hi(x: f32[3, 4]) -> (f32[3], i32[3]) { return max(x, axis: 1, indices: true) }",
      "fn lo(x: f32[3, 4]) -> (f32[3, 1], i32[3, 1]) { return min(x, axis: -1, keepdims: true, indices: true) }",
    ].join("\n");
    const ir = compile(src, []);
    for (const [fn, want] of [["hi", G.max_indices], ["lo", G.min_indices]] as const) {
      const { wasm, ref } = await runBoth(ir, fn, { x: { dtype: "f32", shape: [3, 4], data: c.x } });
      expect(Array.from(ref[1].data), fn).toEqual(want);
      expect(Array.from(wasm[1].data as Int32Array), fn).toEqual(want);
    }
  });

  it("arange: i32 for integer arguments, f32 otherwise", async () => {
    const want = G.arange;
    const src = [
      `fn a() -> i32[5] { return arange(5) }`,
      `fn b() -> f32[6] { return arange(0.5, 2.0, 0.25) }`,
      `fn c() -> i32[4] { return arange(10, 0, -3) }`,
    ].join("\n");
    const ir = compile(src, []);
    for (const [fn, key] of [["a", "arange(5)"], ["b", "arange(0.5, 2.0, 0.25)"], ["c", "arange(10, 0, -3)"]] as const) {
      const { wasm, ref } = await runBoth(ir, fn, {});
      expect(Array.from(ref[0].data), key).toEqual(want[key]);
      expect(Array.from(wasm[0].data as ArrayLike<number>), key).toEqual(want[key]);
    }
  });
});

describe("edge values the goldens leave out", () => {
  it("the reference's float64 erf is within 2e-15 (relative) of C's erf", () => {
    for (const [x, want] of G.erf64) expect(Math.abs(erf64(x) - want), `erf(${x})`).toBeLessThanOrEqual(2e-15 * Math.abs(want) + 1e-300);
  });

  it("cumsum passes Inf and NaN only forward; topk never repeats an index among -inf values", async () => {
    // torch.cumsum(torch.tensor([1., inf, 2., nan, 3.]), 0) -> [1., inf, inf, nan, nan]
    // torch.topk(torch.tensor([1., -inf, -inf]), 3) -> values [1., -inf, -inf], indices [0, 1, 2]
    const src = [
      "fn c(x: f32[5]) -> f32[5] { return cumsum(x, axis: 0) }",
      "fn t(x: f32[3]) -> (f32[3], i32[3]) { return topk(x, 3) }",
    ].join("\n");
    const ir = compile(src, []);
    const c = await runBoth(ir, "c", { x: { dtype: "f32", shape: [5], data: [1, Infinity, 2, NaN, 3] } });
    for (const r of [c.ref[0].data, c.wasm[0].data]) expect(Array.from(r as ArrayLike<number>)).toEqual([1, Infinity, Infinity, NaN, NaN]);
    const t = await runBoth(ir, "t", { x: { dtype: "f32", shape: [3], data: [1, -Infinity, -Infinity] } });
    for (const r of [t.ref, t.wasm]) {
      expect(Array.from(r[0]!.data as ArrayLike<number>)).toEqual([1, -Infinity, -Infinity]);
      expect(Array.from(r[1]!.data as ArrayLike<number>)).toEqual([0, 1, 2]);
    }
  });

  it("logsumexp of a row of -inf is -inf, of a row with +inf is +inf (torch)", async () => {
    // torch.logsumexp(torch.tensor([[-inf, -inf], [inf, 1.]]), 1) -> [-inf, inf]
    const src = "fn f(x: f32[2, 2]) -> f32[2] { return logsumexp(x, axis: 1) }";
    const { wasm, ref } = await runBoth(compile(src, []), "f", { x: { dtype: "f32", shape: [2, 2], data: [-Infinity, -Infinity, Infinity, 1] } });
    for (const r of [ref[0].data, wasm[0].data]) expect(Array.from(r as ArrayLike<number>)).toEqual([-Infinity, Infinity]);
  });

  it("softplus far above the threshold has gradient 1, not NaN", async () => {
    // torch: x = tensor([100., -100.], requires_grad=True); softplus(x).sum().backward(); x.grad -> [1., 3.7e-44]
    const src = "fn l(x: f32[2]) -> f32 { return sum(softplus(x)) }\nfn g(x: f32[2]) -> f32[2] { return grad(l)(x) }";
    const { wasm, ref } = await runBoth(compile(src, []), "g", { x: { dtype: "f32", shape: [2], data: [100, -100] } });
    for (const r of [ref[0].data, wasm[0].data]) {
      expect(Number(r[0])).toBe(1);
      expect(Math.abs(Number(r[1]))).toBeLessThan(1e-40);
    }
  });
});

describe("diagnostics", () => {
  const diag = (src: string) => compileToIR(src, "t.kiln").diagnostics.map((d) => `${d.code} ${d.message}`);
  it("names the builtin and the offending argument", () => {
    expect(diag("fn f(x: i32[3]) -> i32[3] { return gelu(x) }")[0]).toMatch(/^K302 gelu needs a float tensor/);
    expect(diag("fn f(x: i32[3]) -> i32[3] { return x % 2 }")[0]).toMatch(/^K302 remainder is defined for float tensors/);
    expect(diag("fn f(x: f32[3]) -> f32[3] { return var(x, correction: -1) }")[0]).toMatch(/^K411 var correction must be >= 0/);
    expect(diag("fn f(x: f32[3]) -> f32[3] { return topk(x, 4) }")[0]).toMatch(/^K411 topk k must be in 1..3/);
    expect(diag("fn f(x: f32[N]) -> f32[N] { return cumsum(x, axis: 0) }")[0]).toMatch(/^K304 cumsum needs a known size along axis 0/);
    expect(diag("fn f(x: f32[3]) -> f32[3] { return tril(x) }")[0]).toMatch(/^K403 tril works on the last two axes/);
    expect(diag("fn f() -> i32[3] { return arange(0, 3, 0) }")[0]).toMatch(/^K411 arange step must not be 0/);
    expect(diag("fn f(x: f32[3]) -> f32[3] { return clamp(x) }")[0]).toMatch(/^K204 clamp needs a lower bound/);
    expect(diag("fn f(x: f32[3]) -> f32[3] { return clamp(x, 0, min: 1) }")[0]).toMatch(/^K205 clamp: 'min' is another name for 'lo'/);
    expect(diag("fn f(x: f32[2, 3]) -> f32 { return max(x, indices: true) }")[0]).toMatch(/^K403 indices: true needs one axis/);
  });
});
