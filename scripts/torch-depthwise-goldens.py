# Writes test/ops/torch-depthwise-goldens.json: depthwise conv2d (groups = channels) outputs and gradients as
# PyTorch computes them (float64 on float32-representable inputs), for test/ops/depthwise.test.ts.
# Run: /usr/bin/python3 scripts/torch-depthwise-goldens.py   (PyTorch 1.13). Each case: x [N, C, H, W], w [C, 1, KH,
# KW], optional b [C], the options as Kiln writes them and as torch takes them; loss = sum(conv * r) with fixed r.
import json
import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20)


def data(shape):
    return [float(a) for a in rng.standard_normal(int(np.prod(shape))).astype(np.float32)]


# (name, N, C, H, W, KH, KW, stride, padding, dilation, bias)
CASES = [
    ("s1_p1_3x3_c5_b2", 2, 5, 9, 9, 3, 3, (1, 1), (1, 1), (1, 1), True),
    ("s2_p1_3x3_c6", 1, 6, 11, 13, 3, 3, (2, 2), (1, 1), (1, 1), True),
    ("s1_p2_d2_3x3_c3_b3", 3, 3, 8, 10, 3, 3, (1, 1), (2, 2), (2, 2), True),
    ("s2_p2_5x5_c4_b2", 2, 4, 16, 16, 5, 5, (2, 2), (2, 2), (1, 1), True),
    ("s1_p0_3x3_c7_nobias", 1, 7, 6, 20, 3, 3, (1, 1), (0, 0), (1, 1), False),
    ("s3_p1_3x3_c5_b2", 2, 5, 10, 11, 3, 3, (3, 3), (1, 1), (1, 1), True),
    ("s12_p10_3x2_c5", 2, 5, 7, 12, 3, 2, (1, 2), (1, 0), (1, 1), True),
    # Rows of at most 8 pixels (the wasm kernel holds them in two vectors): mobilenet's small images.
    ("s1_p1_3x3_c6_4x4_b2", 2, 6, 4, 4, 3, 3, (1, 1), (1, 1), (1, 1), True),
    ("s1_p1_3x3_c3_8x8_b3", 3, 3, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1), True),
    ("s2_p1_3x3_c5_8x8_b2", 2, 5, 8, 8, 3, 3, (2, 2), (1, 1), (1, 1), True),
    ("s1_p1_3x3_c7_2x2", 1, 7, 2, 2, 3, 3, (1, 1), (1, 1), (1, 1), True),
]

def g9(t):
    """Nine significant digits: the tests compare f32 results at 1e-5, so more digits only grow the file."""
    return [float(f"{v:.9g}") for v in t.flatten().tolist()]


out = []
for name, N, C, H, W, KH, KW, stride, padding, dilation, bias in CASES:
    xs, ws, bs = [N, C, H, W], [C, 1, KH, KW], [C]
    vals = {"x": data(xs), "w": data(ws)}
    if bias:
        vals["b"] = data(bs)
    x = torch.tensor(vals["x"]).reshape(xs).requires_grad_()
    w = torch.tensor(vals["w"]).reshape(ws).requires_grad_()
    b = torch.tensor(vals["b"]).requires_grad_() if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=C)
    r = torch.tensor(data(list(y.shape))).reshape(y.shape)  # float32-representable, as the inputs
    (y * r).sum().backward()
    grads = {"x": g9(x.grad), "w": g9(w.grad)}
    if bias:
        grads["b"] = g9(b.grad)
    out.append({
        "name": name, "shapes": {"x": xs, "w": ws, **({"b": bs} if bias else {})},
        "options": f"stride: [{stride[0]}, {stride[1]}], padding: [{padding[0]}, {padding[1]}], dilation: [{dilation[0]}, {dilation[1]}], groups: {C}",
        "inputs": vals, "r": [float(v) for v in np.float32(r.flatten().numpy())], "outShape": list(y.shape), "y": g9(y.detach()), "grads": grads,
    })

path = __file__.rsplit("/scripts/", 1)[0] + "/test/ops/torch-depthwise-goldens.json"
with open(path, "w") as f:
    json.dump({"source": "scripts/torch-depthwise-goldens.py, PyTorch " + torch.__version__, "cases": out}, f)
print(f"wrote {path}: {len(out)} cases")
