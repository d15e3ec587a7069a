// sync_batch_norm against PyTorch: one SGD step (lr 1) of conv2d -> sync_batch_norm -> mean(y * r) on 1, 2 and 3
// replicas gives the gradients of k (through batch norm's backward, whose reductions are all-reduced), gamma and
// beta, the loss and the running statistics of BatchNorm2d on the whole batch of 6 (torch 1.13 in float64; that is
// what nn.SyncBatchNorm computes for any split of the batch over processes, which cannot run here without a process
// group). Goldens: scripts/torch-sync-bn-goldens.py.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { build, trainer } from "./helpers.js";
import { Tensor } from "../../runtime/tensor.js";

const G = JSON.parse(readFileSync(new URL("./torch-sync-bn-goldens.json", import.meta.url), "utf8")) as {
  inputs: { x: number[]; r: number[] };
  params: Record<"k" | "g" | "be" | "rm" | "rv", number[]>;
  loss: number;
  grads: Record<"k" | "g" | "be", number[]>;
  running: Record<"rm" | "rv", number[]>;
};

const SRC = `
model S {
  param k: f32[3, 2, 3, 3] = zeros()
  param g: f32[3] = ones()
  param be: f32[3] = zeros()
  param rm: f32[3] = zeros()
  param rv: f32[3] = ones()
  fn loss(x: f32[B, 2, 6, 6], r: f32[B, 3, 4, 4]) -> f32 { return mean(sync_batch_norm(conv2d(x, k), g, be, rm, rv) * r) }
}
train T { model: S, loss: loss, optimizer: sgd(lr: 1) }`;

beforeAll(ensureRuntimeBuilt, 300_000);

function close(got: ArrayLike<number>, want: number[], atol: number, rtol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i]!));
}

describe("sync_batch_norm vs PyTorch BatchNorm2d on the global batch", () => {
  for (const n of [1, 2, 3]) {
    it(`${n} replica${n > 1 ? "s" : ""}`, async () => {
      const t = await trainer(await build(SRC), n);
      try {
        for (const [name, v] of Object.entries(G.params)) t.module.setParam(`S.${name}`, new Tensor("f32", name === "k" ? [3, 2, 3, 3] : [3], Float32Array.from(v)));
        await t.broadcast();
        const { loss } = await t.step({ x: new Tensor("f32", [6, 2, 6, 6], Float32Array.from(G.inputs.x)), r: new Tensor("f32", [6, 3, 4, 4], Float32Array.from(G.inputs.r)) });
        expect(Math.abs(loss - G.loss)).toBeLessThan(1e-6);
        // SGD with lr 1: the gradient is the old value minus the new (f32 subtraction: an ulp of the param, ~6e-8).
        for (const name of ["k", "g", "be"] as const) {
          const after = t.module.getParam(`S.${name}`).data as Float32Array;
          close(G.params[name].map((p, i) => Math.fround(p) - after[i]!), G.grads[name], 3e-7, 1e-4, name);
        }
        for (const name of ["rm", "rv"] as const) close(t.module.getParam(`S.${name}`).data as Float32Array, G.running[name], 1e-6, 1e-5, name);
      } finally {
        t.dispose();
      }
    }, 60000);
  }
});
