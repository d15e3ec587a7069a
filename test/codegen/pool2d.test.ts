// The direct pooling kernel (codegen/plan-pool.ts, wasm/pool2d.ts) against the float64 reference interpreter:
// max bit for bit (ties, signed zeros, NaN, infinities), avg within f32 rounding, over every case of
// test/helpers/pool-cases.ts on images narrower and wider than a vector block; and the MNIST CNN's forward planned
// as two pool kernels with its batch_norm + relu and relu fused in.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { irOf, runBoth, wasmModule } from "../helpers/backend.js";
import { poolInputs, poolMismatch, poolModule } from "../helpers/pool-cases.js";

describe("pool2d kernel on wasm against the reference", () => {
  for (const [H, W] of [[28, 28], [14, 14], [7, 9], [5, 13], [6, 17], [4, 4]] as const) {
    it(`every pool and producer over ${H}x${W}`, async () => {
      const { src, cases } = poolModule(3, H, W);
      const ir = irOf(src);
      const b = await buildWasm(ir, "pool", { wat: false });
      const mod = await wasmModule(ir);
      try {
        for (const c of cases) {
          const steps = b.manifest.functions.find((f) => f.name === c.fn)!.steps;
          expect(steps.some((s) => /pool/.test(s.kernel)), `${c.fn}: a pool kernel`).toBe(true);
          expect(steps.some((s) => s.kernel.startsWith("copy")), `${c.fn}: no copy (${steps.map((s) => s.kernel)})`).toBe(false);
          if (c.fused) expect(steps.length, `${c.fn}: producer fused (${steps.map((s) => s.kernel)})`).toBe(1);
          for (const special of c.exact ? [true, false] : [false]) {
            const { wasm, ref } = await runBoth(ir, c.fn, poolInputs(2, 3, H, W, 7 * H + W, special), { module: mod });
            expect(wasm[0]!.shape).toEqual(ref[0]!.shape);
            const bad = poolMismatch(wasm[0]!.data as ArrayLike<number>, ref[0]!.data, c.exact);
            expect(bad, `${c.fn} = ${c.call} over ${H}x${W}${special ? " with NaN/inf" : ""}`).toBeUndefined();
          }
        }
      } finally {
        mod.dispose();
      }
    });
  }

  it("the MNIST CNN's forward: two pool kernels, batch_norm + relu and relu fused, no window copy", async () => {
    const ir = irOf(readFileSync(new URL("../../dsl-examples/mnist_cnn.kiln", import.meta.url), "utf8"), "mnist_cnn.kiln");
    const b = await buildWasm(ir, "cnn", { wat: false });
    const fwd = b.manifest.functions.find((f) => f.name === "MnistCNN.forward")!;
    const pools = fwd.steps.filter((s) => /pool/.test(s.kernel));
    expect(pools.map((s) => s.ops.join(","))).toEqual(["sub,mul,mul,add,relu,window,reshape,max,permute", "relu,window,reshape,max,permute"]);
    expect(fwd.steps.some((s) => s.ops.length === 1 && (s.ops[0] === "window" || s.ops[0] === "relu"))).toBe(false);
  });
});
