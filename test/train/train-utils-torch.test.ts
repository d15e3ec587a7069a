// Gradient clipping, lr schedules and a static loss scale in train blocks against PyTorch 1.13: a few steps of a
// 2x2 linear model with the same init and batch give the same weights. Goldens: test/train/train-utils-torch.json,
// written by scripts/torch-train-utils-goldens.py (torch.nn.utils.clip_grad_norm_/clip_grad_value_,
// torch.optim.lr_scheduler StepLR, CosineAnnealingLR, SequentialLR(LinearLR, CosineAnnealingLR), LambdaLR).
import { describe, expect, it } from "vitest";
import { BATCH, GOLDENS, linModule, params } from "./lin-helpers.js";

async function trajectory(entries: string, steps: number): Promise<number[][]> {
  const mod = await linModule(entries);
  const out: number[][] = [];
  for (let i = 0; i < steps; i++) {
    mod.call("T.step", BATCH);
    out.push(params(mod));
  }
  return out;
}

function expectTrajectory(got: number[][], want: number[][], tol = 2e-6) {
  expect(got.length).toBe(want.length);
  got.forEach((ws, s) => ws.forEach((w, i) => expect(Math.abs(w - want[s][i]), `step ${s + 1}, element ${i}: ${w} vs ${want[s][i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[s][i])))));
}

describe("gradient clipping against torch.nn.utils", () => {
  it("the unclipped baseline matches (the goldens' model is this one)", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01)", 4), GOLDENS.none_sgd);
  });
  it("clip_grad_norm: one global L2 norm over all params (sgd)", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01), clip_grad_norm: 1.0", 4), GOLDENS.clip_norm_sgd);
  });
  it("clip_grad_value (adam)", async () => {
    expectTrajectory(await trajectory("optimizer: adam(lr: 0.05), clip_grad_value: 0.5", 4), GOLDENS.clip_value_adam);
  });
  it("clip_grad_norm before adamw's decoupled weight decay", async () => {
    expectTrajectory(await trajectory("optimizer: adamw(lr: 0.05, weight_decay: 0.1), clip_grad_norm: 2.0", 4), GOLDENS.clip_norm_adamw_wd);
  });
});

describe("lr schedules against torch.optim.lr_scheduler", () => {
  it("step (StepLR) with sgd momentum", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01, momentum: 0.9), schedule: step(step_size: 2, gamma: 0.5)", 5), GOLDENS.step_sgd_momentum);
  });
  it("cosine (CosineAnnealingLR), past t_max", async () => {
    expectTrajectory(await trajectory("optimizer: adam(lr: 0.05), schedule: cosine(t_max: 4, eta_min: 0.01)", 6), GOLDENS.cosine_adam);
  });
  it("warmup_cosine is SequentialLR(LinearLR, CosineAnnealingLR), adamw decaying by the scheduled lr", async () => {
    expectTrajectory(await trajectory("optimizer: adamw(lr: 0.05, weight_decay: 0.1), schedule: warmup_cosine(warmup: 2, total: 6, min_lr: 0.001, start_factor: 0.25)", 6), GOLDENS.seq_warmup_cosine_adamw);
  });
  it("warmup_cosine from 0, held at min_lr past total, with clipping (LambdaLR)", async () => {
    expectTrajectory(await trajectory("optimizer: adamw(lr: 0.05, weight_decay: 0.1), schedule: warmup_cosine(warmup: 3, total: 6, min_lr: 0.001), clip_grad_norm: 1.0", 8), GOLDENS.lambda_warmup_cosine_adamw);
  });
  it("schedules with adagrad's lr_decay (StepLR) and rmsprop's momentum under clipping (CosineAnnealingLR)", async () => {
    expectTrajectory(await trajectory("optimizer: adagrad(lr: 0.1, lr_decay: 0.5), schedule: step(step_size: 2, gamma: 0.5)", 5), GOLDENS.step_adagrad_lr_decay);
    expectTrajectory(await trajectory("optimizer: rmsprop(lr: 0.01, momentum: 0.5), schedule: cosine(t_max: 3), clip_grad_norm: 1.0", 5), GOLDENS.cosine_rmsprop_momentum);
  });
  it("warmup_linear (LambdaLR)", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01), schedule: warmup_linear(warmup: 2, total: 5, min_lr: 0.002, start_factor: 0.5)", 7), GOLDENS.lambda_warmup_linear_sgd);
  });
});

describe("loss scaling with clipping, and a static loss scale", () => {
  it("a static scale in f32 trains as the manual recipe (loss * 1024).backward(), grad /= 1024", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01), loss_scale: 1024", 4), GOLDENS.static_scale_sgd);
  });
  it("clip_grad_norm clips the unscaled gradients (scaler.unscale_ then clip), dynamic and static", async () => {
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01), clip_grad_norm: 1.0, loss_scale: dynamic(init: 1024)", 4), GOLDENS.clip_norm_sgd);
    expectTrajectory(await trajectory("optimizer: sgd(lr: 0.01), clip_grad_norm: 1.0, loss_scale: 256", 4), GOLDENS.clip_norm_sgd);
    expectTrajectory(await trajectory("optimizer: adam(lr: 0.05), clip_grad_value: 0.5, loss_scale: 4096", 4), GOLDENS.clip_value_adam);
  });
});
