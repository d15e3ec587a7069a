# Goldens for test/codegen/softmax-grad-cases.ts: the loss sum(softmax(x, -1) * t) (or log_softmax) and its
# gradient w.r.t. x by torch autograd (float32, CPU, torch 1.13), 3 rows of n columns, n = 7, 1000, 1027 (not
# multiples of 4 or 16: the row kernel's scalar tails). x and t come from integer formulas the test recomputes
# exactly; row 2 is scaled by 10 (a wide row). Run:
#   /usr/bin/python3 scripts/torch-softmax-grad-goldens.py > test/codegen/softmax-grad-goldens.json
import json
import torch

def inputs(n):
    x = torch.tensor([[((i * 131 + j * 71) % 97 - 48) / 8 * (10 if i == 2 else 1) for j in range(n)] for i in range(3)], dtype=torch.float32)
    t = torch.tensor([[((i * 53 + j * 29) % 23 - 11) / 4 for j in range(n)] for i in range(3)], dtype=torch.float32)
    return x, t

cases = []
for mode in ["softmax", "log_softmax"]:
    for n in [7, 1000, 1027]:
        x, t = inputs(n)
        x.requires_grad_(True)
        f = torch.softmax if mode == "softmax" else torch.log_softmax
        loss = (f(x, dim=-1) * t).sum()
        loss.backward()
        cases.append({"mode": mode, "n": n, "loss": loss.item(), "grad": x.grad.reshape(-1).tolist()})
print(json.dumps({"source": "torch " + torch.__version__ + ", scripts/torch-softmax-grad-goldens.py", "cases": cases}))
