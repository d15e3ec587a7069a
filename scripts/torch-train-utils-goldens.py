# Goldens for test/train/train-utils-torch.test.ts: PyTorch 1.13 trajectories of a small model under gradient
# clipping, lr schedules and a static loss scale, and F.cross_entropy with label smoothing, ignore_index, class
# weights and soft targets. Run:
# /usr/bin/python3 scripts/torch-train-utils-goldens.py > test/train/train-utils-torch.json (Debian's python, with torch)
import json, math
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=10)
X = torch.tensor([[1., 2.], [3., -1.], [0.5, 0.5]])
T = torch.tensor([[1., 0.], [0., 1.], [2., -1.]])

def traj(make_opt, steps, clip=None, sched=None, scale=None):
    w = torch.tensor([[0.5, -0.3], [0.2, 0.8]], requires_grad=True)
    b = torch.tensor([0.1, -0.1], requires_grad=True)
    opt = make_opt([w, b])
    s = sched(opt) if sched else None
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((X @ w + b - T) ** 2).sum()
        (loss * scale if scale else loss).backward()
        if scale:
            for p in (w, b): p.grad /= scale
        if clip and clip[0] == "norm": torch.nn.utils.clip_grad_norm_([w, b], clip[1])
        if clip and clip[0] == "value": torch.nn.utils.clip_grad_value_([w, b], clip[1])
        opt.step()
        if s: s.step()
        out.append(w.detach().flatten().tolist() + b.detach().tolist())
    return out

def warm(kind, W, N, m, s0, lr):
    def f(t):
        if t < W: return s0 + (1 - s0) * t / W
        u = (min(t, N) - W) / (N - W)
        v = m + (lr - m) * ((1 + math.cos(math.pi * u)) / 2 if kind == "cos" else 1 - u)
        return v / lr
    return f

S = torch.optim.lr_scheduler
g = {
  "none_sgd": traj(lambda p: torch.optim.SGD(p, lr=0.01), 4),
  "clip_norm_sgd": traj(lambda p: torch.optim.SGD(p, lr=0.01), 4, clip=("norm", 1.0)),
  "clip_value_adam": traj(lambda p: torch.optim.Adam(p, lr=0.05), 4, clip=("value", 0.5)),
  "clip_norm_adamw_wd": traj(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), 4, clip=("norm", 2.0)),
  "step_sgd_momentum": traj(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), 5, sched=lambda o: S.StepLR(o, step_size=2, gamma=0.5)),
  "cosine_adam": traj(lambda p: torch.optim.Adam(p, lr=0.05), 6, sched=lambda o: S.CosineAnnealingLR(o, T_max=4, eta_min=0.01)),
  # warmup_cosine(warmup: 2, total: 6, min_lr: 0.001, start_factor: 0.25) with torch's own schedulers chained
  "seq_warmup_cosine_adamw": traj(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), 6,
      sched=lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, total_iters=2), S.CosineAnnealingLR(o, T_max=4, eta_min=0.001)], milestones=[2])),
  # start_factor 0 (LinearLR refuses 0) and steps past total: LambdaLR with the documented formula
  "lambda_warmup_cosine_adamw": traj(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), 8, clip=("norm", 1.0),
      sched=lambda o: S.LambdaLR(o, warm("cos", 3, 6, 0.001, 0.0, 0.05))),
  "lambda_warmup_linear_sgd": traj(lambda p: torch.optim.SGD(p, lr=0.01), 7, sched=lambda o: S.LambdaLR(o, warm("lin", 2, 5, 0.002, 0.5, 0.01))),
  "step_adagrad_lr_decay": traj(lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.5), 5, sched=lambda o: S.StepLR(o, step_size=2, gamma=0.5)),
  "cosine_rmsprop_momentum": traj(lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5), 5, clip=("norm", 1.0), sched=lambda o: S.CosineAnnealingLR(o, T_max=3)),
  "static_scale_sgd": traj(lambda p: torch.optim.SGD(p, lr=0.01), 4, scale=1024.0),
}

# cross_entropy
torch.manual_seed(0)
logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.3, -0.2, 1.5, 0.0], [2.0, 0.1, -0.5, 0.7], [-1.0, 0.0, 1.0, 2.0], [0.2, 0.2, 0.2, 0.2]])
labels = torch.tensor([1, 2, 0, 3, 2])
lab_ign = torch.tensor([1, -100, 0, 3, -100])
lab_ign2 = torch.tensor([1, 2, 0, 2, 3])  # ignore_index 2, a valid class
wts = torch.tensor([0.5, 2.0, 1.0, 3.0])
probs = torch.softmax(torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [0.5, -0.5, 0.2, 0.0], [0.0, 0.0, 0.0, 3.0], [1.0, 1.0, -1.0, -1.0]]), 1)

def ce(target, **kw):
    x = logits.clone().requires_grad_(True)
    l = F.cross_entropy(x, target, **kw)
    l.backward()
    return {"loss": l.item(), "grad": x.grad.flatten().tolist()}

g["ce"] = {
  "plain": ce(labels),
  "smooth": ce(labels, label_smoothing=0.1),
  "weight": ce(labels, weight=wts),
  "weight_smooth": ce(labels, weight=wts, label_smoothing=0.2),
  "ignore": ce(lab_ign),
  "ignore_smooth": ce(lab_ign, label_smoothing=0.1),
  "ignore_weight_smooth": ce(lab_ign, weight=wts, label_smoothing=0.3),
  "ignore_valid_class_weight": ce(lab_ign2, ignore_index=2, weight=wts),
  "soft": ce(probs),
  "soft_weight_smooth": ce(probs, weight=wts, label_smoothing=0.1),
  "probs": probs.flatten().tolist(),
}
print(json.dumps(g))
