# Goldens for test/passes/simplify-broadcast.test.ts: value and gradient w.r.t. x (float32, CPU, torch 1.13) of
# sum(softmax(x) * t), mean(softmax(x) * t) and sum(log_softmax(x) * t) over the last axis, 4 rows of n (n = 1, odd
# lengths, one past a multiple of 4): row 0 causal-masked (-inf for softmax, -1e30 for log_softmax, whose -inf
# output times t would make the value inf), row 1 huge, row 2 reaching beyond exp's fast range.
# Run: /usr/bin/python3 scripts/torch-broadcast-fold-goldens.py > test/passes/broadcast-fold-goldens.json
import json, math
import torch

def enc(t):
    return [v if math.isfinite(v) else ("-inf" if v < 0 else ("inf" if v > 0 else "nan")) for v in t.reshape(-1).tolist()]

cases = []
for n in [1, 5, 17, 257]:
    g = torch.Generator().manual_seed(n)
    base = ((torch.rand(4, n, generator=g, dtype=torch.float64) * 2 - 1) * 8).float()
    t = ((torch.rand(4, n, generator=g, dtype=torch.float64) * 2 - 1)).float()
    base[1] = base[1] * 1e3
    base[2, 0] = -120.0
    for fn in ["sum_softmax", "mean_softmax", "sum_log_softmax"]:
        x = base.clone()
        if n > 1:
            x[0, 1:] = -math.inf if fn != "sum_log_softmax" else -1e30  # causal: row 0 sees its first column only
        x = x.requires_grad_(True)
        if fn == "sum_log_softmax":
            v = (torch.log_softmax(x, -1) * t).sum()
        else:
            p = torch.softmax(x, -1) * t
            v = p.sum() if fn == "sum_softmax" else p.mean()
        v.backward()
        cases.append({"fn": fn, "n": n, "x": enc(x.detach()), "t": enc(t), "value": v.item(), "grad": enc(x.grad)})
print(json.dumps({"source": "torch " + torch.__version__ + ", scripts/torch-broadcast-fold-goldens.py", "cases": cases}))
