// How the planner lowers matmul: transposes folded into transA/transB (and their copies dropped) only when every
// use is a matmul operand, batches over a shared B merged into one gemm, and one scratch buffer per function;
// each variant still matches the float64 reference.
import { describe, expect, it } from "vitest";
import { planModule } from "../../compiler/codegen/plan.js";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { matmulScratchBytes } from "../../compiler/codegen/wasm/matmul-blocking.js";
import { expectClose, irOf, runBoth, type Input, lcgInput as rand } from "../helpers/backend.js";

function planOf(src: string, fn: string) {
  const plan = planModule(irOf(src));
  const f = plan.functions.find((x) => x.name === fn)!;
  const spec = (name: string) => plan.kernels.find((k) => k.name === name)!.spec;
  return { f, spec, steps: f.steps.map((s) => ({ ...s, spec: spec(s.kernel) })) };
}

const matmuls = (p: ReturnType<typeof planOf>) => p.steps.filter((s) => s.spec.kind === "matmul").map((s) => s.spec as MatmulKernel);

describe("planMatmul", () => {
  it("folds transpose(a) and transpose(b) into the matmul and drops the copies", () => {
    const p = planOf(`fn f(a: f32[5, 3], b: f32[7, 5]) -> f32[3, 7] { return transpose(a) @ transpose(b) }`, "f");
    expect(p.steps.map((s) => s.spec.kind)).toEqual(["matmul"]);
    expect(matmuls(p)[0]).toMatchObject({ transA: true, transB: true });
    // The folded permutes are aliases (no memory), the matmul reads the inputs directly.
    const step = p.steps[0]!;
    expect(step.buffers.slice(0, 2)).toEqual([0, 1]);
    expect(p.f.values.filter((v) => v.source.kind === "alias")).toHaveLength(2);
  });

  it("keeps the copy when the transpose has another use, and folds one used by several matmuls", () => {
    const kept = planOf(`fn f(a: f32[5, 3], b: f32[5, 4]) -> f32[3, 4] { let t = transpose(a)\n return t @ b + sum(t) }`, "f");
    expect(kept.steps.some((s) => s.spec.kind === "copy")).toBe(true);
    expect(matmuls(kept)[0]!.transA).toBe(false);
    const out = planOf(`fn f(a: f32[5, 3]) -> f32[3, 5] { return transpose(a) }`, "f");
    expect(out.steps.map((s) => s.spec.kind)).toEqual(["copy"]);
    const twice = planOf(`fn f(a: f32[5, 3], b: f32[5, 4], c: f32[5, 2]) -> f32[3, 6] { let t = transpose(a)\n return concat(t @ b, t @ c, axis: 1) }`, "f");
    expect(twice.steps.filter((s) => s.spec.kind === "copy").length).toBe(2); // the two concat halves only
    expect(matmuls(twice).every((k) => k.transA)).toBe(true);
  });

  it("does not fold permutes that move batch axes", () => {
    const p = planOf(`fn f(a: f32[2, 3, 4], b: f32[3, 4, 5]) -> f32[3, 2, 5] { return permute(a, [1, 0, 2]) @ b }`, "f");
    expect(p.steps.map((s) => s.spec.kind)).toEqual(["copy", "matmul"]);
  });

  it("merges the batch of A into M when B has none, and gives each matmul step its own scratch buffer", () => {
    const p = planOf(`fn f(x: f32[B, 6, 784], w: f32[784, 10], v: f32[10, 300]) -> f32[B, 6, 300] { return x @ w @ v }`, "f");
    const ks = matmuls(p);
    expect(ks.map((k) => k.batchRank)).toEqual([0, 0]);
    expect(p.steps[0]!.ints[0]).toEqual([[6, "B"]]); // M = 6 * B rows
    // The scratch values follow the node values, one per step, each a bound of its own matmul's needs.
    const bounds = [matmulScratchBytes(undefined, 784, 10), matmulScratchBytes(undefined, 10, 300)];
    p.steps.forEach((s, i) => {
      expect(s.buffers[2]).toBe(p.f.values.length - 2 + i);
      const scratch = p.f.values[s.buffers[2]!]!;
      expect(scratch.source).toMatchObject({ kind: "temp", matmul: { M: [[6, "B"]] } });
      expect(4 * (scratch.shape[0] as number)).toBeGreaterThanOrEqual(bounds[i]!);
    });
  });

  it("folded, merged and broadcast matmuls match the reference", async () => {
    const cases: [string, Record<string, Input>][] = [
      [`fn f(a: f32[17, 3], b: f32[17, 255]) -> f32[3, 255] { return transpose(a) @ b }`, { a: rand([17, 3], 1), b: rand([17, 255], 2) }],
      [`fn f(a: f32[2, 4, 9], b: f32[2, 257, 9]) -> f32[2, 4, 257] { return a @ transpose(b) }`, { a: rand([2, 4, 9], 3), b: rand([2, 257, 9], 4) }],
      [`fn f(a: f32[3, 1, 6, 5], b: f32[4, 7, 6]) -> f32[3, 4, 5, 7] { return transpose(a) @ transpose(b) }`, { a: rand([3, 1, 6, 5], 5), b: rand([4, 7, 6], 6) }],
      [`fn f(x: f32[2, 3, 257], w: f32[257, 17]) -> f32[2, 3, 17] { return x @ w }`, { x: rand([2, 3, 257], 7), w: rand([257, 17], 8) }],
      [`fn f(x: f32[255], w: f32[17, 255]) -> f32[17] { return x @ transpose(w) }`, { x: rand([255], 9), w: rand([17, 255], 10) }],
      [`fn f(a: f32[6, 6]) -> f32[6, 6] { let t = transpose(a)\n return t @ t }`, { a: rand([6, 6], 11) }],
    ];
    for (const [src, inputs] of cases) {
      const { wasm, ref } = await runBoth(irOf(src), "f", inputs);
      expectClose(wasm[0]!, ref[0]!, src, 1e-5, 1e-5);
    }
  });
});
