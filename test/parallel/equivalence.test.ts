// Data-parallel training against one replica: N replicas x batch b after 20 steps match one replica x batch N*b
// (the plain fused T.step) within f32 tolerance, or f16's under mixed-f16, for an MLP and a CNN with SGD-momentum
// and Adam; every replica holds bit-identical params and optimizer state, and two runs are bit-identical.
import { beforeAll, describe, expect, it } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { allParams, batches, build, cnn, mlp, reference, sameBits, trainedParams, trainer, worstRatio } from "./helpers.js";
import type { Precision } from "../../compiler/compile.js";

const OPTS = { "sgd-momentum": "sgd(lr: 0.02, momentum: 0.9)", adam: "adam(lr: 0.003)" } as const;
const MODELS = {
  mlp: { src: mlp, shape: [12], classes: 5 },
  cnn: { src: (o: string) => cnn(o, false), shape: [1, 8, 8], classes: 3 },
} as const;
// f32: the sums over the batch are split differently, a few ulps per step. mixed-f16: a gradient stored in f16 is
// rounded per replica before the sum, so differences are of f16's precision (2^-10).
const TOL: Record<"f32" | "mixed-f16", [number, number]> = { f32: [1e-5, 1e-5], "mixed-f16": [1e-3, 1e-3] };
// The CNN max-pools f16-rounded conv outputs, whose ties depend on those f16-sized param differences; max_pool2d
// sends a window's whole gradient to its first maximum (PyTorch's rule), so a tie that flips moves a whole
// gradient entry between taps, and 20 steps of momentum carry it (measured: 2.6e-3 at worst, on a momentum buffer).
const CNN_F16_TOL: [number, number] = [5e-3, 5e-3];

// The workers run the compiled runtime: build it first when a runtime source is newer (tsc takes a while).
beforeAll(ensureRuntimeBuilt, 300_000);

describe("N replicas x batch b train like one replica x batch N*b", () => {
  for (const [model, m] of Object.entries(MODELS)) {
    for (const [optName, opt] of Object.entries(OPTS)) {
      for (const precision of ["f32", "mixed-f16"] as const) {
        it(`${model}, ${optName}, ${precision}: 2 and 3 replicas after 20 steps`, async () => {
          const b = await build(m.src(opt), precision as Precision);
          const data = batches([...m.shape], m.classes, 12, 20);
          const want = allParams(await reference(b, data));
          for (const n of [2, 3]) {
            // 3 replicas reduce-scatter (every replica sums its chunks); 2 let replica 0 sum these short vectors.
            const t = await trainer(b, n, n === 3 ? { scatterFrom: 0 } : {});
            try {
              // Under mixed-f16 some steps overflow at the initial scale: the replicas must skip exactly the steps the
              // single replica skips (the scaler's state is among the params compared).
              for (const d of data) await t.step({ x: d.x, y: d.y });
              const [atol, rtol] = model === "cnn" && precision === "mixed-f16" ? CNN_F16_TOL : TOL[precision];
              const { ratio, where } = worstRatio(allParams(t.module), want, atol, rtol);
              expect(ratio, `${n} replicas: ${where}`).toBeLessThanOrEqual(1);
              // The same reduced bits and the same kernels everywhere: the replicas never drift apart.
              for (let r = 1; r < n; r++) expect(sameBits(await t.replicaParams(r), allParams(t.module)), `replica ${r}`).toBeUndefined();
            } finally {
              t.dispose();
            }
          }
        }, 60000);
      }
    }
  }

  it("one replica (grad, then apply) is bit-identical to the fused step", async () => {
    for (const [src, shape, classes, precision] of [[cnn(OPTS.adam, true), [1, 8, 8], 3, "mixed-f16"], [mlp(OPTS["sgd-momentum"]), [12], 5, "f32"]] as const) {
      const b = await build(src, precision);
      const data = batches([...shape], classes, 8, 10);
      const t = await trainer(b, 1);
      try {
        for (const d of data) await t.step({ x: d.x, y: d.y });
        expect(sameBits(allParams(t.module), allParams(await reference(b, data))), precision).toBeUndefined();
      } finally {
        t.dispose();
      }
    }
  }, 60000);

  it("a global batch that does not divide evenly (10 over 3 replicas: 4, 3, 3) is weighted by share", async () => {
    const b = await build(mlp(OPTS["sgd-momentum"]));
    const data = batches([12], 5, 10, 20, 11);
    const want = allParams(await reference(b, data));
    const { ratio, where } = worstRatio(await trainedParams(b, 3, data), want, ...TOL.f32);
    expect(ratio, where).toBeLessThanOrEqual(1);
  }, 60000);

  it("the reported loss is the global batch's mean loss", async () => {
    const b = await build(mlp(OPTS.adam));
    const [d] = batches([12], 5, 12, 1);
    const mod = await reference(b, []);
    const want = Number((mod.call("M.loss", { x: d!.x, y: d!.y }) as { data: Float32Array }).data[0]);
    const t = await trainer(b, 3);
    try {
      const { loss } = await t.step({ x: d!.x, y: d!.y });
      expect(Math.abs(loss - want)).toBeLessThan(1e-6);
    } finally {
      t.dispose();
    }
  }, 60000);

  it("two runs with the same seed are bit-identical, whatever the thread scheduling or who sums", async () => {
    const b = await build(cnn(OPTS.adam, true), "mixed-f16");
    const data = batches([1, 8, 8], 3, 12, 8);
    // scatterFrom 0: every replica reduces its chunks (reduce-scatter); the default: replica 0 sums this short vector.
    const run = async (scatterFrom?: number) => {
      const t = await trainer(b, 3, scatterFrom === undefined ? {} : { scatterFrom });
      try {
        for (const d of data) await t.step({ x: d.x, y: d.y });
        return allParams(t.module);
      } finally {
        t.dispose();
      }
    };
    const first = await run(0);
    expect(sameBits(await run(0), first)).toBeUndefined();
    expect(sameBits(await run(), first)).toBeUndefined();
  }, 60000);
});
