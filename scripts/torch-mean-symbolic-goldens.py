# Goldens for test/ops/mean-symbolic.test.ts: value and gradient w.r.t. x (float32, CPU, torch 1.13) of losses built
# on means over symbolic dims (Kiln's dim_size count): over the batch, over the batch and a known axis, over two
# symbolic dims, over a symbolic axis with keepdims, over a product dim (reshape to [B * 3]); at two sizes each.
# Run: /usr/bin/python3 scripts/torch-mean-symbolic-goldens.py > test/ops/mean-symbolic-goldens.json
import json
import torch

def inputs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * 3).float()

# name -> (loss over x and w, x shape at dims, w shape, dims)
CASES = {
    "batch": (lambda x, w: (x.mean(dim=0) * w).sum(), lambda d: [d["B"], 3], [3]),
    "batch_and_known": (lambda x, w: (x.mean(dim=(0, 2)) * w).sum(), lambda d: [d["B"], 4, 3], [4]),
    "two_symbolic": (lambda x, w: (x * x * w).mean(), lambda d: [d["B"], d["T"]], [1]),
    "keepdims": (lambda x, w: (x.mean(dim=1, keepdim=True) * w).sum(), lambda d: [4, d["T"]], [4, 1]),
    "product_dim": (lambda x, w: (x.reshape(-1) * x.reshape(-1)).mean() * w.sum(), lambda d: [d["B"], 3], [2]),
}
SIZES = [{"B": 5, "T": 7}, {"B": 2, "T": 3}]

cases = []
for name, (loss, shape, wshape) in CASES.items():
    for k, dims in enumerate(SIZES):
        x = inputs(shape(dims), 100 + 10 * k + len(cases)).requires_grad_(True)
        w = inputs(wshape, 7)
        v = loss(x, w)
        v.backward()
        cases.append({"name": name, "dims": dims, "xShape": list(x.shape), "x": x.detach().reshape(-1).tolist(), "w": w.reshape(-1).tolist(), "value": v.item(), "grad": x.grad.reshape(-1).tolist()})
print(json.dumps({"source": "torch " + torch.__version__ + ", scripts/torch-mean-symbolic-goldens.py", "cases": cases}))
