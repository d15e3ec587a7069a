// Fuzzed graphs for the fusion pass (reduce prologues, recomputed producers, matmul epilogues next to them):
// random seeded .kiln programs of elementwise chains, reductions over either axis and matmuls on odd shapes,
// each run fused and unfused on wasm and compared with the float64 reference interpreter.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose, type Input } from "../helpers/backend.js";
import { compileBoth, randomInput, randomProgram } from "./fusion-helpers.js";

export function fuzzInputs(rng: Rng, R: number, C: number): Record<string, Input> {
  return { x: randomInput(rng, [R, C]), y: randomInput(rng, [R, C]), v: randomInput(rng, [C]), u: randomInput(rng, [R, 1]), w: randomInput(rng, [C, C], 0.5) };
}

describe("fusion fuzz", () => {
  it("random elementwise/reduction/matmul graphs, some with two outputs: fused = unfused = reference (80 programs)", async () => {
    const rng = new Rng(4242);
    const shapes: [number, number][] = [[1, 1], [3, 17], [17, 3], [5, 255], [2, 257]];
    let fusedSteps = 0, plainSteps = 0, prologues = 0, multi = 0;
    for (let p = 0; p < 80; p++) {
      const [R, C] = shapes[p % shapes.length]!;
      let src = randomProgram(rng, R, C, 1 + (p % 3));
      // Every fourth program also returns a consumer of its result (an extra output of the result's kernel).
      if (p % 4 === 3) src = src.replace(`-> f32[${R}, ${C}] {\n  return `, `-> (f32[${R}, ${C}], f32[${R}, ${C}]) {\n  let r = `).replace(/\n}$/, "\n  return r, tanh(r) * 2 - y\n}");
      const inputs = fuzzInputs(rng, R, C);
      const { fused, plain } = compileBoth(src);
      const want = evaluateGraph(plain.functions[0]!, inputs);
      for (const [label, ir] of [["fused", fused], ["unfused", plain]] as const) {
        const b = await buildWasm(ir, "fuzz");
        const mod = await loadKilnModule(b.manifest, b.wasm);
        const got = mod.call("f", Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)])));
        // Long chains of exp/tanh over sums of up to 257 terms: a few f32 roundings per op, relative to 1.
        const outs = Array.isArray(got) ? got : [got as Tensor];
        want.forEach((w, i) => expectClose(outs[i]!, w, `${label} #${p} output ${i}: ${src}`, 1e-4, 1e-5));
        const steps = b.manifest.functions[0]!.steps;
        if (label === "fused") {
          fusedSteps += steps.length;
          prologues += steps.filter((s) => ["sum", "mean", "max", "min"].includes(s.ops.at(-1)!) && s.ops.length > 1).length;
          multi += steps.filter((s) => (s.outputs ?? 1) > 1).length;
        } else plainSteps += steps.length;
        mod.dispose();
      }
    }
    expect(fusedSteps).toBeLessThan(plainSteps * 0.7);
    expect(prologues).toBeGreaterThan(20);
    expect(multi).toBeGreaterThan(10);
  }, 300_000);
});
