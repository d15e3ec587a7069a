# Goldens for test/codegen/softmax-rows.test.ts: torch.softmax / torch.log_softmax (float32, CPU, torch 1.13) over
# the last axis of a few rows that exercise the row kernel: -inf masks, huge and tiny values, and row lengths that
# are not multiples of 4. Run: /usr/bin/python3 scripts/torch-softmax-rows-goldens.py > test/codegen/softmax-rows-goldens.json
import json, math
import torch

def row(n, seed, scale):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1).mul(scale).float()

cases = []
for n in [1, 3, 5, 17, 1025]:
    x = row(n, n, 8.0)
    if n >= 3:
        x[1] = -math.inf  # a masked position
    cases.append(x)
cases.append(torch.tensor([1e30, -1e30, 3e38, 0.0, 1.0], dtype=torch.float32))
cases.append(torch.tensor([1e-30, -1e-38, 1e-45, 0.0, -0.0, 2e-44, 7.0], dtype=torch.float32))
cases.append(torch.tensor([-80.0, -100.0, 0.0, -87.0, -103.9, -104.5], dtype=torch.float32))

def enc(t):
    return [v if math.isfinite(v) else ("-inf" if v < 0 else ("inf" if v > 0 else "nan")) for v in t.tolist()]

out = []
for x in cases:
    out.append({"x": enc(x), "softmax": enc(torch.softmax(x, -1)), "log_softmax": enc(torch.log_softmax(x, -1))})
print(json.dumps({"source": "torch " + torch.__version__ + ", scripts/torch-softmax-rows-goldens.py", "rows": out}))
