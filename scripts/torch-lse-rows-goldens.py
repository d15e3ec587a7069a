# Goldens for test/codegen/lse-rows-cases.ts: torch.nn.functional.cross_entropy (float32, CPU, torch 1.13, mean
# reduction) and its gradient w.r.t. the logits, for 4 rows of n classes that exercise the log-sum-exp row kernel:
# -1e30 masks away from the label, huge logits, a row spanning more than 87 (the exp's general path), n not a multiple
# of 4. Run: /usr/bin/python3 scripts/torch-lse-rows-goldens.py > test/codegen/lse-rows-goldens.json
import json, math
import torch

def enc(t):
    return [v if math.isfinite(v) else ("-inf" if v < 0 else ("inf" if v > 0 else "nan")) for v in t.reshape(-1).tolist()]

cases = []
for n in [3, 5, 17, 1025]:
    g = torch.Generator().manual_seed(n)
    x = ((torch.rand(4, n, generator=g, dtype=torch.float64) * 2 - 1) * 8).float()
    labels = torch.tensor([0, n - 1, n // 2, 1 % n])
    x[0, 1:n:3] = -1e30                # masked positions (-1e30: Kiln's one-hot product makes 0 * -inf NaN), never the label (0)
    x[1] = x[1] * 1e4                  # huge logits: most exps underflow to 0
    x[2, 0] = -120.0                   # a row reaching beyond exp's fast range (max - min > 87.6)
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x, labels)
    loss.backward()
    cases.append({"n": n, "x": enc(x.detach()), "labels": labels.tolist(), "loss": loss.item(), "grad": enc(x.grad)})
print(json.dumps({"source": "torch " + torch.__version__ + ", scripts/torch-lse-rows-goldens.py", "cases": cases}))
