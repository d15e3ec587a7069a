// Every kernel op of the registry on WebGPU against the float64 reference, with the same case table as the
// wasm suite (test/ops/op-cases.ts). Loading a module compiles (and validates) every shader it uses, so a
// shader that fails validation fails here with the kernel, its ops and the WGSL line. Skips, saying why,
// where no WebGPU adapter exists.
import { afterAll, describe, expect, it } from "vitest";
import type { PrimOp } from "../../compiler/ops/types.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose } from "../helpers/backend.js";
import { CASES, KERNEL_OPS, caseInputs, caseName, oneOpModule } from "../ops/op-cases.js";
import { runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("ops on WebGPU");
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("every op on WebGPU matches the float64 reference", () => {
  it("the case table covers every kernel op of the registry", () => {
    expect(Object.keys(CASES).sort()).toEqual([...KERNEL_OPS].sort());
  });

  for (const [op, cases] of Object.entries(CASES)) {
    it(op, async () => {
      const rng = new Rng(op.length * 7919);
      if (op === "all_reduce") {
        // A host step of the wasm replicas (sync_batch_norm in a data-parallel grad): the module loads, the call is refused.
        for (const c of cases) {
          await expect(runGpuVsRef(env, oneOpModule(op as PrimOp, c), "f", caseInputs(rng, c))).rejects.toThrow(/wasm backend only/);
        }
        return;
      }
      for (const c of cases) {
        const { gpu, ref } = await runGpuVsRef(env, oneOpModule(op as PrimOp, c), "f", caseInputs(rng, c));
        expectClose(gpu[0]!, ref[0]!, `${caseName(op, c)} on WebGPU`, c.rtol, c.atol);
      }
    }, 60_000);
  }

  it("matmul with another tiling (16x64x8 per workgroup, 2x8 per invocation) gives the same results", async () => {
    const rng = new Rng(4242);
    for (const c of CASES.matmul) {
      const { gpu, ref } = await runGpuVsRef(env, oneOpModule("matmul", c), "f", caseInputs(rng, c), { wgsl: { matmulTile: { m: 16, n: 64, k: 8, regM: 2, regN: 8 } } });
      expectClose(gpu[0]!, ref[0]!, `${caseName("matmul", c)} on WebGPU, 16x64x8 tiles`, c.rtol, c.atol);
    }
  }, 60_000);
});
