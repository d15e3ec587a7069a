// kiln export --format torch carries a train block's lr schedule and gradient clipping: the package's
// make_scheduler/clip_gradients, used as train_ddp.py uses them, reproduce PyTorch's own trajectory
// (test/train/train-utils-torch.json, scripts/torch-train-utils-goldens.py) and Kiln's; rmsprop and adagrad export
// as torch.optim.RMSprop/Adagrad; cross_entropy with options exports to ops equal to F.cross_entropy. Skips (printing why) without python3-torch, unless KILN_REQUIRE_PYTORCH=1.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";
import { spawnSync } from "node:child_process";
import { PY, kiln, python, pythonWith, tmp } from "./helpers.js";
import { BATCH, GOLDENS, linModule, linSrc, params } from "../train/lin-helpers.js";

const HAVE_TORCH = pythonWith("torch export of schedules and clipping", ["torch"]);

const RUN = `import sys, json, importlib, torch
sys.path.insert(0, sys.argv[1])
pkg = importlib.import_module("t_torch")
m = pkg.M.from_kiln()
opt = pkg.make_optimizer(m)
sched = pkg.make_scheduler(opt)
x = torch.tensor([[1., 2.], [3., -1.], [0.5, 0.5]])
t = torch.tensor([[1., 0.], [0., 1.], [2., -1.]])
out = []
for _ in range(int(sys.argv[2])):
    opt.zero_grad()
    m.train_loss(x, t).backward()
    pkg.clip_gradients(m)
    opt.step()
    if sched is not None:
        sched.step()
    # Kiln's [in, out] order: a weight read as x @ w is held as nn.Linear's [out, in] (KILN_LINEAR).
    out.append((m.w.t() if "M.w" in m.KILN_LINEAR else m.w).detach().flatten().tolist() + m.b.detach().tolist())
print(json.dumps({"traj": out, "opt": type(opt).__name__, "sched": type(sched).__name__}))
`;

async function exported(entries: string, steps: number) {
  const dir = tmp();
  const file = join(dir, "t.kiln");
  writeFileSync(file, linSrc(entries));
  const weights = join(dir, "w.safetensors");
  writeFileSync(weights, serializeSafetensors({ "M.w": new Tensor("f32", [2, 2], [0.5, -0.3, 0.2, 0.8]), "M.b": new Tensor("f32", [2], [0.1, -0.1]) }));
  const r = await kiln("export", file, "--format", "torch", "--weights", weights, "--out", join(dir, "t_torch"));
  expect(r.code, r.err).toBe(0);
  expect(readFileSync(join(dir, "t_torch", "train_ddp.py"), "utf8")).toMatch(/clip_gradients\(model\)\n\s+opt\.step\(\)\n\s+if sched is not None:\n\s+sched\.step\(\)/);
  return JSON.parse(python(RUN, [dir, String(steps)])) as { traj: number[][]; opt: string; sched: string };
}

function close(got: number[][], want: number[][], tol: number) {
  got.forEach((ws, s) => ws.forEach((w, i) => expect(Math.abs(w - want[s][i]), `step ${s + 1}, element ${i}`).toBeLessThanOrEqual(tol)));
}

describe.skipIf(!HAVE_TORCH)("kiln export --format torch: schedules and clipping", () => {
  it("warmup_cosine + clip_grad_norm (adamw): the exported package trains as PyTorch's LambdaLR golden and as Kiln", async () => {
    const entries = "optimizer: adamw(lr: 0.05, weight_decay: 0.1), schedule: warmup_cosine(warmup: 3, total: 6, min_lr: 0.001), clip_grad_norm: 1.0";
    const r = await exported(entries, 8);
    expect([r.opt, r.sched]).toEqual(["AdamW", "LambdaLR"]);
    close(r.traj, GOLDENS.lambda_warmup_cosine_adamw, 1e-6);
    const mod = await linModule(entries);
    const kilnTraj: number[][] = [];
    for (let s = 0; s < 8; s++) {
      mod.call("T.step", BATCH);
      kilnTraj.push(params(mod));
    }
    close(kilnTraj, r.traj, 2e-6);
  }, 120_000);
  it("train_ddp.py --data mnist refuses a train input that is no 28x28 image (here f32[3, 2]), naming it and what to do", async () => {
    const dir = tmp();
    const file = join(dir, "t.kiln");
    writeFileSync(file, linSrc("optimizer: sgd(lr: 0.01)"));
    const r = await kiln("export", file, "--format", "torch", "--out", join(dir, "t_torch"));
    expect(r.code, r.err).toBe(0);
    // The data loader alone: it must stop before reading any file (the directory does not exist).
    const p = spawnSync(PY, ["-c", "import sys; sys.path.insert(0, sys.argv[1]); import train_ddp; train_ddp.mnist('no-such-dir', 'train')", join(dir, "t_torch")], { encoding: "utf8" });
    expect(p.status, p.stderr).toBe(1);
    expect(p.stderr).toMatch(/--data mnist needs the train input x to hold one 28x28 image per row \(784 values\), but it is f32\[3, 2\]; pass --data BATCHES\.safetensors instead/);
    expect(p.stderr).not.toMatch(/Traceback/);
  }, 120_000);
  it("step as StepLR (sgd momentum), cosine as CosineAnnealingLR, clip_grad_value without a schedule", async () => {
    const a = await exported("optimizer: sgd(lr: 0.01, momentum: 0.9), schedule: step(step_size: 2, gamma: 0.5)", 5);
    expect(a.sched).toBe("StepLR");
    close(a.traj, GOLDENS.step_sgd_momentum, 1e-6);
    const b = await exported("optimizer: adam(lr: 0.05), schedule: cosine(t_max: 4, eta_min: 0.01)", 6);
    expect(b.sched).toBe("CosineAnnealingLR");
    close(b.traj, GOLDENS.cosine_adam, 1e-6);
    const c = await exported("optimizer: adam(lr: 0.05), clip_grad_value: 0.5", 4);
    expect(c.sched).toBe("NoneType");
    close(c.traj, GOLDENS.clip_value_adam, 1e-6);
  }, 120_000);
  it("rmsprop and adagrad export as torch.optim.RMSprop and Adagrad", async () => {
    for (const [opt, name] of [["rmsprop(lr: 0.01, alpha: 0.9, momentum: 0.5)", "RMSprop"], ["adagrad(lr: 0.1, lr_decay: 0.5)", "Adagrad"]]) {
      const r = await exported(`optimizer: ${opt}`, 3);
      expect(r.opt).toBe(name);
      const mod = await linModule(`optimizer: ${opt}`);
      const kilnTraj: number[][] = [];
      for (let s = 0; s < 3; s++) {
        mod.call("T.step", BATCH);
        kilnTraj.push(params(mod));
      }
      close(kilnTraj, r.traj, 2e-6);
    }
  }, 120_000);
  it("cross_entropy's options export to ops whose loss equals F.cross_entropy's", async () => {
    const dir = tmp();
    const file = join(dir, "ce.kiln");
    writeFileSync(file, `model M {
  param w: f32[3, 4] = constant(0.1)
  fn loss(x: f32[B, 3], y: i32[B], cw: f32[4]) -> f32 { return cross_entropy(x @ w, y, weight: cw, ignore_index: -100, label_smoothing: 0.2) }
  fn soft(x: f32[B, 3], p: f32[B, 4], cw: f32[4]) -> f32 { return cross_entropy(x @ w, p, weight: cw, label_smoothing: 0.1) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
    const weights = join(dir, "w.safetensors");
    writeFileSync(weights, serializeSafetensors({ "M.w": new Tensor("f32", [3, 4], [0.5, -0.3, 0.2, 0.8, 0.1, -0.1, 1.0, 0.0, -0.5, 0.3, 0.7, -0.2]) }));
    const r = await kiln("export", file, "--format", "torch", "--weights", weights, "--out", join(dir, "ce_torch"));
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(python(`import sys, json, importlib, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
pkg = importlib.import_module("ce_torch")
m = pkg.M.from_kiln()
x = torch.tensor([[1., 2., 0.5], [3., -1., 0.], [0.5, 0.5, 2.], [-1., 0., 1.]])
y = torch.tensor([1, -100, 3, 0], dtype=torch.int32)
p = torch.softmax(torch.tensor([[0., 1., 2., 3.], [1., 0., 0., 0.], [0.5, 0.5, 0., 0.], [2., -1., 0., 1.]]), 1)
cw = torch.tensor([0.5, 2.0, 1.0, 3.0])
with torch.no_grad():
    z = x @ (m.w.t() if "M.w" in m.KILN_LINEAR else m.w)
    print(json.dumps([m.loss(x, y, cw).item(), F.cross_entropy(z, y.long(), weight=cw, ignore_index=-100, label_smoothing=0.2).item(),
                      m.soft(x, p, cw).item(), F.cross_entropy(z, p, weight=cw, label_smoothing=0.1).item()]))
`, [dir]).trim()) as number[];
    expect(Math.abs(out[0] - out[1])).toBeLessThan(1e-6);
    expect(Math.abs(out[2] - out[3])).toBeLessThan(1e-6);
    // The ONNX export (non-train functions) maps the same primitives.
    const onnx = await kiln("export", file, "--format", "onnx", "--weights", weights, "--out", join(dir, "onnx"));
    expect(onnx.code, onnx.err).toBe(0);
  }, 120_000);
});
