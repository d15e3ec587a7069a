// sync_batch_norm (PyTorch's nn.SyncBatchNorm) in data-parallel training: N replicas x batch b with sync_batch_norm
// train like one replica x batch N*b with batch_norm (the plain fused T.step, where the statistics are the whole
// batch's), running statistics included; runs are bit-identical; a replica that fails inside forward stops the step
// on all replicas, naming it, with no hang and no update; with one replica it is batch_norm.
import { beforeAll, describe, expect, it } from "vitest";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { allParams, batches, build, reference, sameBits, trainedParams, trainer, worstRatio } from "./helpers.js";
import { compileToIR, type Precision } from "../../compiler/compile.js";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import type { FromReplica, ReplicaTransport, ToReplica } from "../../runtime/parallel/protocol.js";

const OPTS = { "sgd-momentum": "sgd(lr: 0.02, momentum: 0.9)", adam: "adam(lr: 0.003)" } as const;

/**
 * conv 3x3 (4) -> batch_norm or sync_batch_norm -> tanh -> conv 3x3 (4) -> batch norm -> tanh -> avg pool -> linear.
 * Smooth on purpose: batch norm centres its outputs on 0, where relu has its kink, and a max pool over relu's zeros
 * has ties; an f32 rounding difference that moves one element across either sends a whole gradient entry elsewhere
 * (measured with relu and max_pool2d: within 4e-7 for 18 steps of SGD-momentum, then 3x apart on a momentum
 * buffer), which tests the model's discontinuities, not sync_batch_norm. The convs have no bias (as usual before a batch norm): a bias there has a gradient that is exactly 0 but for rounding,
 * which Adam divides by its own rounding-sized second moment, so such a bias walks randomly on any change of
 * summation order and compares nothing. Under mixed-f16 the loss scale starts at 1024 rather than 65536: a
 * replica's f16 gradients are its share of the batch's, so one that lands next to f16's maximum may overflow on
 * one replica x N*b and not on N replicas x b (or the reverse), a skipped step on one side only.
 */
const net = (opt: string, bn: "batch_norm" | "sync_batch_norm", precision: Precision = "f32") => `
model C {
  param k: f32[4, 1, 3, 3] = he()
  param g: f32[4] = ones()
  param be: f32[4] = zeros()
  param rm: f32[4] = zeros()
  param rv: f32[4] = ones()
  param k2: f32[4, 4, 3, 3] = he()
  param g2: f32[4] = ones()
  param be2: f32[4] = zeros()
  param rm2: f32[4] = zeros()
  param rv2: f32[4] = ones()
  param fc: f32[64, 3] = xavier()
  param fcb: f32[3] = zeros()
  fn forward(x: f32[B, 1, 8, 8]) -> f32[B, 3] {
    let h = tanh(${bn}(conv2d(x, k, padding: 1), g, be, rm, rv))
    h = tanh(${bn}(conv2d(h, k2, padding: 1), g2, be2, rm2, rv2, momentum: 0.2))
    return flatten(avg_pool2d(h, 2)) @ fc + fcb
  }
  fn loss(x: f32[B, 1, 8, 8], y: i32[B]) -> f32 { return cross_entropy(forward(x), y) }
}
train T { model: C, loss: loss, optimizer: ${opt}${precision === "mixed-f16" ? ", loss_scale: dynamic(init: 1024)" : ""} }`;

// f32: the batch's sums are split over replicas and added in another order: a few ulps per step, carried by 20 steps
// (the tolerance of equivalence.test.ts). mixed-f16: the convs read f16-rounded operands and write f16 results, so a
// few-ulp f32 difference in a param or a statistic flips an f16 rounding (2^-11 relative) here and there, and 20 steps
// carry those: differences of f16's precision, 1e-3 (about 2^-10).
const TOL: Record<"f32" | "mixed-f16", [number, number]> = { f32: [1e-5, 1e-5], "mixed-f16": [1e-3, 1e-3] };

beforeAll(ensureRuntimeBuilt, 300_000);

describe("sync_batch_norm", () => {
  it("only the data-parallel grad function has all_reduce; the step is batch_norm's IR exactly", () => {
    const ir = (bn: "batch_norm" | "sync_batch_norm") => {
      const r = compileToIR(net(OPTS.adam, bn), "dp.kiln", [], [], { dataParallel: true });
      if (!r.ir) throw new Error("compile failed");
      return r.ir;
    };
    const sync = ir("sync_batch_norm"), plain = ir("batch_norm");
    const ops = (m: typeof sync, fn: string) => m.functions.find((f) => f.name === fn)!.nodes.map((n) => n.op);
    expect(ops(sync, "T.grad").filter((o) => o === "all_reduce").length).toBeGreaterThanOrEqual(4); // 2 forward + 2 backward per layer at least
    expect(ops(plain, "T.grad")).not.toContain("all_reduce");
    for (const fn of ["T.step", "C.forward", "C.loss"]) expect(ops(sync, fn), fn).toEqual(ops(plain, fn));
  });

  it("its diagnostics are batch_norm's, naming sync_batch_norm", () => {
    const src = net(OPTS.adam, "sync_batch_norm").replace("g, be, rm, rv))", "g, be, rm, rv, eps: 0))");
    const r = compileToIR(src, "dp.kiln", [], [], { dataParallel: true });
    expect(r.ir).toBeUndefined();
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toContain("K411 sync_batch_norm eps must be > 0, got 0");
  });

  for (const [optName, opt] of Object.entries(OPTS)) {
    for (const precision of ["f32", "mixed-f16"] as const) {
      it(`${optName}, ${precision}: 2 and 3 replicas x b with sync_batch_norm = 1 x N*b with batch_norm after 20 steps`, async () => {
        const data = batches([1, 8, 8], 3, 12, 20);
        const want = allParams(await reference(await build(net(opt, "batch_norm", precision), precision), data));
        const b = await build(net(opt, "sync_batch_norm", precision), precision);
        for (const n of [2, 3]) {
          const t = await trainer(b, n);
          try {
            for (const d of data) await t.step({ x: d.x, y: d.y });
            // allParams includes the running statistics (rm, rv, rm2, rv2) and the optimizer state.
            const { ratio, where } = worstRatio(allParams(t.module), want, ...TOL[precision]);
            expect(ratio, `${n} replicas: ${where}`).toBeLessThanOrEqual(1);
            for (let r = 1; r < n; r++) expect(sameBits(await t.replicaParams(r), allParams(t.module)), `replica ${r}`).toBeUndefined();
          } finally {
            t.dispose();
          }
        }
      }, 120000);
    }
  }

  it("per-replica batch_norm differs from the global batch's statistics (the test above can fail)", async () => {
    const data = batches([1, 8, 8], 3, 12, 20);
    const want = allParams(await reference(await build(net(OPTS.adam, "batch_norm")), data));
    const got = await trainedParams(await build(net(OPTS.adam, "batch_norm")), 2, data);
    expect(worstRatio(got, want, ...TOL.f32).ratio).toBeGreaterThan(1);
  }, 60000);

  it("two runs with the same seed are bit-identical", async () => {
    const b = await build(net(OPTS.adam, "sync_batch_norm", "mixed-f16"), "mixed-f16");
    const data = batches([1, 8, 8], 3, 10, 8);
    expect(sameBits(await trainedParams(b, 3, data), await trainedParams(b, 3, data))).toBeUndefined();
  }, 60000);

  it("one replica: grad + apply with sync_batch_norm equals batch_norm's fused step", async () => {
    const data = batches([1, 8, 8], 3, 8, 10);
    const want = allParams(await reference(await build(net(OPTS["sgd-momentum"], "batch_norm")), data));
    const b = await build(net(OPTS["sgd-momentum"], "sync_batch_norm"));
    // The plain step of a sync_batch_norm module is batch_norm's: bit-identical.
    expect(sameBits(allParams(await reference(b, data)), want)).toBeUndefined();
    // grad computes mean = sum / n in two steps (the all_reduce between them), batch_norm in one kernel: rounding only.
    const { ratio, where } = worstRatio(await trainedParams(b, 1, data), want, ...TOL.f32);
    expect(ratio, where).toBeLessThanOrEqual(1);
  }, 60000);

  it("a replica that throws inside forward fails the step naming it, without a hang or any update", async () => {
    const b = await build(net(OPTS.adam, "sync_batch_norm"));
    const [d] = batches([1, 8, 8], 3, 9, 1);
    const t = await trainer(b, 3);
    try {
      await t.step({ x: d!.x, y: d!.y });
      const before = [0, 1, 2].map((r) => t.replicaParams(r));
      const params = await Promise.all(before);
      // A label out of range on replica 2's shard (samples 6..8): its call fails before the first all_reduce, where
      // replicas 0 and 1 wait for it; they must see its abort flag and stop, not wait.
      const y = new Int32Array(d!.y.data as Int32Array);
      y[7] = 99;
      const x = new Float32Array(d!.x.data as Float32Array);
      const err = await t.step({ x: new Tensor("f32", [9, 1, 8, 8], x), y: new Tensor("i32", [9], y) }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).replica).toBe(2);
      expect((err as KilnError).message).toMatch(/replica 2 of 3 failed/);
      for (let r = 0; r < 3; r++) expect(sameBits(await t.replicaParams(r), params[r]!), `replica ${r} changed`).toBeUndefined();
      // The trainer goes on: the next step runs on all replicas.
      await t.step({ x: d!.x, y: d!.y });
      for (let r = 1; r < 3; r++) expect(sameBits(await t.replicaParams(r), allParams(t.module)), `replica ${r}`).toBeUndefined();
    } finally {
      t.dispose();
    }
  }, 60000);

  it("a replica that dies without a word does not hang replica 0: its all_reduce times out, the dead one is named", async () => {
    const b = await build(net(OPTS.adam, "sync_batch_norm"));
    const [d] = batches([1, 8, 8], 3, 8, 1);
    // Replica 1 starts, takes the params, then dies on grad before any all_reduce, as a killed worker would: the
    // transport reports the exit only when the coordinator's thread is free again, i.e. after replica 0 gave up.
    const spawn = async (): Promise<ReplicaTransport> => {
      let onMessage: (m: FromReplica) => void = () => undefined, onFailure: (why: string) => void = () => undefined;
      return {
        post(m: ToReplica) {
          if (m.kind === "init") setTimeout(() => onMessage({ kind: "ready", id: 0 }));
          else if (m.kind === "grad") setTimeout(() => onFailure("its worker exited (code 1)"));
          else setTimeout(() => onMessage({ kind: "done", id: m.id }));
        },
        listen(message, failure) {
          onMessage = message;
          onFailure = failure;
        },
        close() {},
      };
    };
    const t = await trainer(b, 2, { spawn, collectiveTimeoutMs: 300 });
    try {
      const before = allParams(t.module);
      const err = await t.step({ x: d!.x, y: d!.y }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).replica).toBe(1);
      expect((err as KilnError).message).toMatch(/replica 1 of 2 failed.*no replica updated its params: the replica died: its worker exited/);
      expect(sameBits(allParams(t.module), before), "replica 0 changed").toBeUndefined();
      // A dead replica leaves the trainer unusable, and says so.
      await expect(t.step({ x: d!.x, y: d!.y })).rejects.toThrow(/unusable: replica 1 died/);
    } finally {
      t.dispose();
    }
  }, 60000);
});
