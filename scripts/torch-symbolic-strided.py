# Goldens for test/lower/symbolic-strided.test.ts: PyTorch's outputs and gradients of the strided conv/pool program
# (the test's PROG) for inputs given as JSON in argv[1]; prints JSON. Run with Debian's /usr/bin/python3 (torch).
import json, sys
import torch
import torch.nn.functional as F

d = json.loads(sys.argv[1])
t = lambda k: torch.tensor(d[k], dtype=torch.float64).reshape(d[k + "_shape"]).requires_grad_()
x, w, b = t("x"), t("w"), t("b")
c = F.conv2d(x, w, b, stride=2, padding=1)
m = F.max_pool2d(torch.tanh(c), 2)
a = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
dd = F.conv2d(x, w, stride=(3, 2), dilation=(1, 2))
loss = (c * c).sum() + (m * m * 3).sum() + torch.tanh(a).sum() + (dd * 0.5 + dd * dd).sum()
loss.backward()
flat = lambda v: v.detach().reshape(-1).tolist()
print(json.dumps({"outs": [flat(v) for v in (c, m, a, dd)], "shapes": [list(v.shape) for v in (c, m, a, dd)], "loss": loss.item(), "grads": [flat(v.grad) for v in (x, w, b)]}))
