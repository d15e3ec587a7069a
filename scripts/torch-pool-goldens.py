# Goldens for test/codegen/pool-grad.test.ts: max_pool2d / avg_pool2d forward values and max_pool2d's input
# gradient (ties go to the first maximum, row-major) from PyTorch (torch 1.13, float32, CPU), on inputs with many
# ties (halves in [-2, 2]). Run: /usr/bin/python3 scripts/torch-pool-goldens.py > test/codegen/pool-grad-goldens.json
import json
import torch
import torch.nn.functional as F


def lcg(n, seed):
    s = seed
    out = []
    for _ in range(n):
        s = (s * 1664525 + 1013904223) % 2**32
        out.append(round((s / 2**32 * 2 - 1) * 4) / 2)
    return out


def t(shape, data, grad=False):
    return torch.tensor(data, dtype=torch.float32).reshape(shape).requires_grad_(grad)


cases = []
N, C, H, W = 2, 3, 8, 12
xs = lcg(N * C * H * W, 11)
g = [0.5 + 0.25 * c for c in range(C)]
b = [0.125 * c - 0.25 for c in range(C)]
for name, k, expr in [("max2", 2, "x"), ("max2_bnrelu", 2, "bnrelu"), ("max3", 3, "x")]:
    HH = H if k == 2 else 9
    xd = lcg(N * C * HH * W, 11 + k)
    x = t([N, C, HH, W], xd, True)
    gg = t([C, 1, 1], g, True)
    bb = t([C, 1, 1], b, True)
    h = x if expr == "x" else F.relu(x * gg + bb)
    y = F.max_pool2d(h, k)
    w = torch.tensor(lcg(y.numel(), 5), dtype=torch.float32).reshape(y.shape) + 0.25
    (y * w).sum().backward()
    cases.append({"name": name, "k": k, "expr": expr, "x": {"shape": [N, C, HH, W], "data": xd}, "g": g, "b": b,
                  "w": {"shape": list(y.shape), "data": w.flatten().tolist()},
                  "y": y.detach().flatten().tolist(), "dx": x.grad.flatten().tolist(),
                  **({"dg": gg.grad.flatten().tolist(), "db": bb.grad.flatten().tolist()} if expr != "x" else {})})
x = t([N, C, H, W], xs)
fwd = {
    "max3s2p1": F.max_pool2d(x, 3, stride=2, padding=1),
    "avg3s2p1": F.avg_pool2d(x, 3, stride=2, padding=1),
    "avg2": F.avg_pool2d(x, 2),
    "max2p1": F.max_pool2d(x, 2, padding=1),
}
print(json.dumps({"note": "scripts/torch-pool-goldens.py, torch " + torch.__version__, "grads": cases,
                  "forward": {"x": {"shape": [N, C, H, W], "data": xs}, "y": {k: {"shape": list(v.shape), "data": v.flatten().tolist()} for k, v in fwd.items()}}}))
