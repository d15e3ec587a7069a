// Issue 7's memory evidence as a test: `kiln compile --report` (reportManifest) shows the mixed-precision MLP
// training step's peak scratch at least 40% below f32 at batch 64, and never above f32 for any function.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { reportManifest } from "../../compiler/report.js";

async function peaks(precision: "f32" | "mixed-f16" | "mixed-bf16"): Promise<Map<string, number>> {
  const src = readFileSync("dsl-examples/mlp_train.kiln", "utf8");
  const r = compileToIR(src, "mlp_train.kiln", [], [], { precision });
  const b = await buildWasm(r.ir!, "mlp_train");
  return new Map(reportManifest(b.manifest, { B: 64 }).map((f) => [f.name, f.peakBytes]));
}

describe("peak memory of mixed precision (kiln compile --report)", () => {
  it("the MLP training steps peak >= 40% below f32 at B=64, and no function peaks above f32", async () => {
    const f32 = await peaks("f32");
    for (const p of ["mixed-f16", "mixed-bf16"] as const) {
      const mixed = await peaks(p);
      for (const step of ["Sgd.step", "Adam.step"]) expect(mixed.get(step)!, `${p} ${step}`).toBeLessThanOrEqual(0.6 * f32.get(step)!);
      for (const [name, bytes] of mixed) expect(bytes, `${p} ${name}`).toBeLessThanOrEqual(f32.get(name)!);
    }
  });
});
