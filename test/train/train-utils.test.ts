// Train-block utilities beyond the torch trajectories (train-utils-torch.test.ts): bad clip and schedule values are
// numbered diagnostics, all reported in one run; the schedule's step counter survives a checkpoint (runtime API and
// `kiln train --checkpoint/--resume`), so a resumed run continues the schedule instead of restarting its warmup;
// and data-parallel replicas step with the same lr (they match the single replica and stay bit-identical).
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileToIR } from "../../compiler/compile.js";
import { Tensor } from "../../runtime/tensor.js";
import { main } from "../../compiler/cli/main.js";
import { loadCheckpoint, serializeCheckpoint } from "../../runtime/train/checkpoint.js";
import { readScaler, trainStepWithScaler } from "../../runtime/train/loss-scale.js";
import { BATCH, GOLDENS, linModule, linSrc, params } from "./lin-helpers.js";
import { allParams, batches, build, mlp, reference, sameBits, trainer, worstRatio } from "../parallel/helpers.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

describe("clip and schedule diagnostics", () => {
  // Each expected diagnostic: its code and the text its span starts at (line 7 is the train block).
  const cases: [string, string, [string, string][]][] = [
    ["negative clip_grad_norm", "optimizer: sgd(lr: 0.1), clip_grad_norm: -1", [["K609", "-1"]]],
    ["zero clip_grad_value", "optimizer: sgd(lr: 0.1), clip_grad_value: 0", [["K609", "0 }"]]],
    ["clip by a name", "optimizer: sgd(lr: 0.1), clip_grad_norm: lr", [["K304", "lr }"]]],
    ["both clips", "optimizer: sgd(lr: 0.1), clip_grad_norm: 1, clip_grad_value: 1", [["K611", "1 }"]]],
    ["unknown schedule", "optimizer: sgd(lr: 0.1), schedule: exponential(gamma: 0.9)", [["K611", "exponential"]]],
    ["schedule not a call", "optimizer: sgd(lr: 0.1), schedule: 3", [["K611", "3 }"]]],
    ["warmup > total", "optimizer: sgd(lr: 0.1), schedule: warmup_cosine(warmup: 100, total: 50)", [["K609", "warmup_cosine"]]],
    ["warmup == total", "optimizer: sgd(lr: 0.1), schedule: warmup_linear(warmup: 50, total: 50)", [["K609", "warmup_linear"]]],
    ["fractional step_size", "optimizer: sgd(lr: 0.1), schedule: step(step_size: 2.5)", [["K609", "step("]]],
    ["missing t_max", "optimizer: sgd(lr: 0.1), schedule: cosine(eta_min: 0.1)", [["K609", "cosine"]]],
    ["negative eta_min", "optimizer: sgd(lr: 0.1), schedule: cosine(t_max: 10, eta_min: -1)", [["K609", "cosine"]]],
    ["unknown schedule option", "optimizer: sgd(lr: 0.1), schedule: cosine(t_max: 10, tmax: 3)", [["K205", "tmax"]]],
    ["start_factor above 1", "optimizer: sgd(lr: 0.1), schedule: warmup_cosine(warmup: 1, total: 5, start_factor: 2)", [["K609", "warmup_cosine"]]],
    ["negative static loss scale", "optimizer: sgd(lr: 0.1), loss_scale: -8", [["K609", "-8"]]],
    ["zero static loss scale", "optimizer: sgd(lr: 0.1), loss_scale: 0", [["K609", "0 }"]]],
    // Every problem of the block in one run.
    ["all at once", "optimizer: sgd(lr: -1), clip_grad_norm: -1, schedule: cosine(t_max: 0)", [["K609", "sgd"], ["K609", "-1,"], ["K609", "cosine"]]],
  ];
  for (const [name, entries, want] of cases) {
    it(name, () => {
      const src = linSrc(entries);
      const r = compileToIR(src, "t.kiln");
      expect(r.ir).toBeUndefined();
      const line = src.split("\n")[6];
      expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col])).toEqual(want.map(([code, at]) => [code, 7, line.lastIndexOf(at) + 1]));
    });
  }
});

describe("a static loss scale under mixed-f16", () => {
  // x = 300 makes the f16 weight gradient 2 * x * (x w + b - t) * 1024 overflow (about 1e8 > 65504; the same
  // construction as test/train/checkpoint.test.ts), while BATCH's stays finite.
  const HUGE = { x: new Tensor("f32", [3, 2], [300, 1, 1, 1, 1, 1]), t: BATCH.t };
  it("skips an overflowing step, keeps its scale, and stops when every step overflows", async () => {
    const mod = await linModule("optimizer: adam(lr: 0.05), loss_scale: 1024", "mixed-f16");
    mod.call("T.step", BATCH);
    const before = params(mod);
    mod.call("T.step", HUGE);
    expect(params(mod)).toEqual(before);
    expect(readScaler(mod, "T")).toEqual({ scale: 1024, goodSteps: 0, min: 1024, skipped: 1 });
    expect(mod.getParam("T.step_count").data[0]).toBe(1); // adam's t counts the steps taken
    trainStepWithScaler(mod, "T", BATCH, 3);
    expect(params(mod)).not.toEqual(before);
    expect(readScaler(mod, "T")).toEqual({ scale: 1024, goodSteps: 1, min: 1024, skipped: 0 });
    trainStepWithScaler(mod, "T", HUGE, 4); // one overflow: skipped, not an error
    expect(() => trainStepWithScaler(mod, "T", HUGE, 5)).toThrow(/training step 5: the static loss scale 1024 overflowed 2 steps in a row/);
  });
});

describe("clipping under mixed-f16 loss scaling", () => {
  it("clip_grad_norm on the unscaled f16 gradients follows torch's f32 trajectory to f16 precision", async () => {
    const mod = await linModule("optimizer: sgd(lr: 0.01), clip_grad_norm: 1.0, loss_scale: dynamic(init: 1024)", "mixed-f16");
    for (let s = 0; s < 4; s++) {
      mod.call("T.step", BATCH);
      // The weights a matmul reads are rounded to f16 (2^-11 relative) and so are the stored gradients.
      GOLDENS.clip_norm_sgd[s].forEach((w, k) => expect(Math.abs(params(mod)[k] - w), `step ${s + 1}, element ${k}`).toBeLessThan(2e-3));
    }
    expect(readScaler(mod, "T")).toMatchObject({ scale: 1024, goodSteps: 4 });
  });
});

const SCHED = "optimizer: adamw(lr: 0.05, weight_decay: 0.1), schedule: warmup_cosine(warmup: 3, total: 6, min_lr: 0.001), clip_grad_norm: 1.0";

describe("the schedule's step counter in checkpoints", () => {
  it("a run resumed after 4 steps continues the schedule bit for bit (and as torch's LambdaLR)", async () => {
    const a = await linModule(SCHED);
    for (let i = 0; i < 4; i++) a.call("T.step", BATCH);
    expect(a.getParam("T.step_count").data[0]).toBe(4);
    const bytes = await serializeCheckpoint(a);
    const b = await linModule(SCHED);
    await loadCheckpoint(b, bytes);
    for (let i = 0; i < 4; i++) {
      a.call("T.step", BATCH);
      b.call("T.step", BATCH);
      expect(params(b)).toEqual(params(a));
      GOLDENS.lambda_warmup_cosine_adamw[4 + i].forEach((w, k) => expect(params(b)[k]).toBeCloseTo(w, 5));
    }
    // The same checkpoint with the step count reset restarts the warmup at lr 0 and leaves the trajectory.
    const c = await linModule(SCHED);
    await loadCheckpoint(c, bytes);
    c.setParam("T.step_count", new Tensor("f32", [], [0]));
    c.call("T.step", BATCH);
    expect(Math.abs(params(c)[0] - GOLDENS.lambda_warmup_cosine_adamw[4][0])).toBeGreaterThan(1e-3);
  });

  it("kiln train --checkpoint then --resume reports and continues the step count", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-sched-"));
    const file = join(dir, "s.kiln");
    writeFileSync(file, linSrc(SCHED));
    const run = async (args: string[]) => {
      const out: string[] = [], err: string[] = [];
      const code = await main(["train", file, "--batch", "1", ...args], (s) => out.push(s), (s) => err.push(s));
      return { code, out: out.join("\n"), err: err.join("\n") };
    };
    const ck = join(dir, "ck.safetensors");
    const first = await run(["--steps", "3", "--checkpoint", ck]);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/saved the training state .*3 optimizer steps taken/);
    const second = await run(["--steps", "2", "--resume", ck]);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/resumed from .*3 optimizer steps taken/);
  });
});

describe("data-parallel replicas use the same scheduled lr", () => {
  beforeAll(ensureRuntimeBuilt, 300_000);
  it("a label outside [0, C) in any replica's shard is a KilnError naming the input (the grad function checks it)", async () => {
    const b = await build(mlp("sgd(lr: 0.05)"));
    const [d] = batches([12], 5, 12, 1);
    const y = new Int32Array(d.y.data as Int32Array);
    y[9] = 7; // in the second replica's half
    const t = await trainer(b, 2);
    try {
      await expect(t.step({ x: d.x, y: new Tensor("i32", [12], y) })).rejects.toThrow(/input "y" element 3 is 7, not a class label in \[0, 5\)/);
    } finally {
      t.dispose();
    }
  }, 120_000);

  // mixed-f16: gradients are rounded to f16 per replica before the sum (tolerance as test/parallel/equivalence.test.ts).
  const cases: [string, "f32" | "mixed-f16", number][] = [
    ["adamw(lr: 0.01), schedule: warmup_cosine(warmup: 4, total: 12), clip_grad_norm: 0.5", "f32", 1e-5],
    ["sgd(lr: 0.05, momentum: 0.9), schedule: step(step_size: 3, gamma: 0.5), clip_grad_value: 0.01", "f32", 1e-5],
    ["adam(lr: 0.01), loss_scale: 1024, clip_grad_norm: 0.5, schedule: cosine(t_max: 8)", "mixed-f16", 1e-3],
  ];
  for (const [opt, precision, tol] of cases) {
    it(`${opt} (${precision}): 2 replicas x batch 6 match 1 x batch 12 after 12 steps`, async () => {
      const b = await build(mlp(opt), precision);
      const data = batches([12], 5, 12, 12);
      const want = allParams(await reference(b, data));
      const t = await trainer(b, 2);
      try {
        for (const d of data) await t.step({ x: d.x, y: d.y });
        const { ratio, where } = worstRatio(allParams(t.module), want, tol, tol);
        expect(ratio, where).toBeLessThanOrEqual(1);
        expect(sameBits(await t.replicaParams(1), allParams(t.module))).toBeUndefined();
        expect(t.module.getParam("T.step_count").data[0]).toBe(12);
      } finally {
        t.dispose();
      }
    }, 120_000);
  }
});
