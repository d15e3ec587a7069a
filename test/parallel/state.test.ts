// Data-parallel state: batch_norm keeps per-replica batch statistics (each replica's running statistics follow its
// own shards, as DDP's), a checkpoint written once from replica 0 resumes with another replica count and continues
// the same run, and the optimizer state is the same bits on every replica.
import { beforeAll, describe, expect, it } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { allParams, batches, build, cnn, mlp, reference, sameBits, trainer, worstRatio } from "./helpers.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { loadCheckpoint, serializeCheckpoint } from "../../runtime/train/checkpoint.js";

beforeAll(ensureRuntimeBuilt, 300_000);

describe("batch_norm under data parallelism", () => {
  it("uses each replica's own batch statistics: 2 replicas equal two modules stepping on their shards by hand", async () => {
    const b = await build(cnn("sgd(lr: 0.05, momentum: 0.9)", true));
    const data = batches([1, 8, 8], 3, 12, 6);
    // By hand: each module's grad on its half with share 1/2, the vectors summed in replica order, the same apply.
    const mods = await Promise.all([0, 1].map(() => loadKilnModule(b.manifest, b.wasm, { seed: 3 })));
    for (const d of data) {
      const grads = mods.map((m, r) => {
        const x = new Tensor("f32", [6, 1, 8, 8], (d.x.data as Float32Array).slice(r * 384, (r + 1) * 384));
        const y = new Tensor("i32", [6], (d.y.data as Int32Array).slice(r * 6, (r + 1) * 6));
        return ((m.call("T.grad", { x, y, share: 0.5 }) as Tensor[])[1]!.data as Float32Array);
      });
      const sum = new Float32Array(grads[0]!.length);
      for (let i = 0; i < sum.length; i++) sum[i] = grads[0]![i]! + grads[1]![i]!;
      for (const m of mods) m.call("T.apply", { grads: sum });
    }
    const t = await trainer(b, 2);
    try {
      for (const d of data) await t.step({ x: d.x, y: d.y });
      expect(sameBits(allParams(t.module), allParams(mods[0]!))).toBeUndefined();
      expect(sameBits(await t.replicaParams(1), allParams(mods[1]!))).toBeUndefined();
      // The running statistics differ between replicas (each saw its own half); replica 0's are the model's.
      const rm = (p: Record<string, Tensor>) => Array.from(p["C.rm"]!.data as Float32Array);
      expect(rm(await t.replicaParams(1))).not.toEqual(rm(allParams(t.module)));
    } finally {
      t.dispose();
    }
  }, 120000);
});

describe("checkpoints", () => {
  it("written from 2 replicas, resumed on 3, continue the run one replica would have made", async () => {
    const b = await build(mlp("adam(lr: 0.003)"), "mixed-f16");
    const data = batches([12], 5, 12, 12, 5);
    const want = allParams(await reference(b, data));
    const two = await trainer(b, 2);
    let bytes: Uint8Array;
    try {
      for (const d of data.slice(0, 6)) await two.step({ x: d.x, y: d.y });
      bytes = await serializeCheckpoint(two.module);
    } finally {
      two.dispose();
    }
    const three = await trainer(b, 3, { seed: 99 }); // another seed: everything must come from the checkpoint
    try {
      await loadCheckpoint(three.module, bytes);
      await three.broadcast();
      for (const d of data.slice(6)) await three.step({ x: d.x, y: d.y });
      const { ratio, where } = worstRatio(allParams(three.module), want, 1e-3, 1e-3);
      expect(ratio, where).toBeLessThanOrEqual(1);
      for (const r of [1, 2]) expect(sameBits(await three.replicaParams(r), allParams(three.module)), `replica ${r}`).toBeUndefined();
    } finally {
      three.dispose();
    }
  }, 120000);
});
