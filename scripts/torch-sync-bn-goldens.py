# Goldens for test/parallel/sync-batch-norm-torch.test.ts: one SGD step (lr 1, no momentum) of conv2d (no bias) ->
# BatchNorm2d (training, momentum 0.1, eps 1e-5) -> mean(y * r) in PyTorch 1.13 on the whole batch of 6, which is
# what nn.SyncBatchNorm computes for any split of that batch over processes (its statistics are the global batch's).
# The gradients of k, gamma and beta (k's through batch norm's backward) and the new running statistics. Run:
# /usr/bin/python3 scripts/torch-sync-bn-goldens.py > test/parallel/torch-sync-bn-goldens.json
import json
import numpy as np
import torch
import torch.nn.functional as F

rng = np.random.default_rng(17)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
x, r, k = f32(6, 2, 6, 6), f32(6, 3, 4, 4), (f32(3, 2, 3, 3) * 0.5)
gamma = (1 + 0.1 * rng.standard_normal(3)).astype(np.float32)
beta = (0.1 * rng.standard_normal(3)).astype(np.float32)
rm = (0.1 * rng.standard_normal(3)).astype(np.float32)
rv = (1 + 0.1 * np.abs(rng.standard_normal(3))).astype(np.float32)

torch.set_default_dtype(torch.float64)  # the golden in float64: Kiln's f32 is compared with a tolerance
bn = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5)
with torch.no_grad():
    bn.weight.copy_(torch.tensor(gamma, dtype=torch.float64)); bn.bias.copy_(torch.tensor(beta, dtype=torch.float64))
    bn.running_mean.copy_(torch.tensor(rm, dtype=torch.float64)); bn.running_var.copy_(torch.tensor(rv, dtype=torch.float64))
K = torch.tensor(k, dtype=torch.float64, requires_grad=True)
bn.train()
loss = (bn(F.conv2d(torch.tensor(x, dtype=torch.float64), K)) * torch.tensor(r, dtype=torch.float64)).mean()
loss.backward()
out = {
    "inputs": {"x": x.ravel().tolist(), "r": r.ravel().tolist()},
    "params": {"k": k.ravel().tolist(), "g": gamma.tolist(), "be": beta.tolist(), "rm": rm.tolist(), "rv": rv.tolist()},
    "loss": loss.item(),
    "grads": {"k": K.grad.ravel().tolist(), "g": bn.weight.grad.tolist(), "be": bn.bias.grad.tolist()},
    "running": {"rm": bn.running_mean.tolist(), "rv": bn.running_var.tolist()},
}
print(json.dumps(out))
