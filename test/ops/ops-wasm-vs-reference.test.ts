// Every op in the registry, run on the wasm backend and compared with the float64 reference interpreter, on
// awkward shapes: size 1, odd sizes that are not multiples of the SIMD width, broadcasting on each axis, and
// ranks 0-4 (the case table is test/ops/op-cases.ts). A test walks the registry, so a new op without cases fails.
import { describe, expect, it } from "vitest";
import type { PrimOp } from "../../compiler/ops/types.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose, runBoth } from "../helpers/backend.js";
import { CASES, KERNEL_OPS, caseInputs, caseName, oneOpModule } from "./op-cases.js";

describe("every op on wasm matches the float64 reference", () => {
  it("the case table covers every kernel op of the registry", () => {
    expect(Object.keys(CASES).sort()).toEqual([...KERNEL_OPS].sort());
    for (const p of KERNEL_OPS) expect(CASES[p].length, p).toBeGreaterThan(0);
  });

  for (const [op, cases] of Object.entries(CASES)) {
    it(op, async () => {
      const rng = new Rng(op.length * 7919);
      for (const c of cases) {
        const { wasm, ref } = await runBoth(oneOpModule(op as PrimOp, c), "f", caseInputs(rng, c));
        expectClose(wasm[0], ref[0], caseName(op, c), c.rtol, c.atol);
      }
    });
  }
});
