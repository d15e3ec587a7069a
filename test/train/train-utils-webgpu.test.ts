// The train utilities on WebGPU: the same PyTorch trajectories as train-utils-torch.test.ts (a warmup-cosine
// schedule with global-norm clipping under adamw, StepLR with sgd momentum, clipping by value under a static loss
// scale) and cross_entropy with weights, ignore_index and label smoothing (value and gradient), in WGSL kernels.
// Goldens: test/train/train-utils-torch.json (scripts/torch-train-utils-goldens.py, PyTorch 1.13).
import { afterAll, describe, expect, it } from "vitest";
import { irOf } from "../helpers/backend.js";
import { gpuModule, webgpuEnv } from "../webgpu/helpers.js";
import { Tensor } from "../../runtime/tensor.js";
import { BATCH, GOLDENS, linSrc } from "./lin-helpers.js";

const env = await webgpuEnv("train utilities on WebGPU");
afterAll(() => env.h?.device.destroy());

async function gpuTrajectory(entries: string, steps: number): Promise<number[][]> {
  const mod = await gpuModule(env, irOf(linSrc(entries)));
  mod.setParam("M.w", new Tensor("f32", [2, 2], [0.5, -0.3, 0.2, 0.8]));
  mod.setParam("M.b", new Tensor("f32", [2], [0.1, -0.1]));
  const out: number[][] = [];
  for (let i = 0; i < steps; i++) {
    const r = mod.call("T.step", BATCH);
    await (Array.isArray(r) ? r[0]! : r).read();
    out.push([...Array.from((await mod.getParam("M.w")).data as Float32Array), ...Array.from((await mod.getParam("M.b")).data as Float32Array)]);
  }
  mod.dispose();
  return out;
}

function expectTrajectory(got: number[][], want: number[][], tol = 2e-6) {
  got.forEach((ws, s) => ws.forEach((w, i) => expect(Math.abs(w - want[s][i]), `step ${s + 1}, element ${i}: ${w} vs ${want[s][i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[s][i])))));
}

describe.skipIf(!env.h)("train utilities on WebGPU against PyTorch", { timeout: 180_000 }, () => {
  it("warmup_cosine + clip_grad_norm (adamw), held past total", async () => {
    expectTrajectory(await gpuTrajectory("optimizer: adamw(lr: 0.05, weight_decay: 0.1), schedule: warmup_cosine(warmup: 3, total: 6, min_lr: 0.001), clip_grad_norm: 1.0", 8), GOLDENS.lambda_warmup_cosine_adamw);
  });
  it("step schedule (sgd momentum)", async () => {
    expectTrajectory(await gpuTrajectory("optimizer: sgd(lr: 0.01, momentum: 0.9), schedule: step(step_size: 2, gamma: 0.5)", 5), GOLDENS.step_sgd_momentum);
  });
  it("clip_grad_value under a static loss scale (adam)", async () => {
    expectTrajectory(await gpuTrajectory("optimizer: adam(lr: 0.05), clip_grad_value: 0.5, loss_scale: 4096", 4), GOLDENS.clip_value_adam);
  });
  it("cross_entropy with weights, ignore_index and label smoothing", async () => {
    const ir = irOf(`fn ce(x: f32[5, 4], y: i32[5], w: f32[4]) -> f32 { return cross_entropy(x, y, weight: w, ignore_index: -100, label_smoothing: 0.3) }
fn f(x: f32[5, 4], y: i32[5], w: f32[4]) -> (f32, f32[5, 4]) { return value_and_grad(ce)(x, y, w) }`);
    const mod = await gpuModule(env, ir);
    const x = new Tensor("f32", [5, 4], [1.0, 2.0, 0.5, -1.0, 0.3, -0.2, 1.5, 0.0, 2.0, 0.1, -0.5, 0.7, -1.0, 0.0, 1.0, 2.0, 0.2, 0.2, 0.2, 0.2]);
    const r = mod.call("f", { x, y: new Tensor("i32", [5], [1, -100, 0, 3, -100]), w: new Tensor("f32", [4], [0.5, 2.0, 1.0, 3.0]) });
    const [loss, grad] = await Promise.all((r as { read(): Promise<Tensor> }[]).map((t) => t.read()));
    const want = GOLDENS.ce.ignore_weight_smooth as { loss: number; grad: number[] };
    expect(Math.abs((loss.data[0] as number) - want.loss)).toBeLessThan(2e-6);
    want.grad.forEach((g, i) => expect(Math.abs((grad.data[i] as number) - g), `grad[${i}]`).toBeLessThan(2e-6));
    mod.dispose();
  });
});
