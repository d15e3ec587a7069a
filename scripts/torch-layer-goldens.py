# Writes test/ops/torch-layer-goldens.json: outputs and input gradients of Kiln's layer builtins of issue 16
# (norms, pooling options, adaptive pooling, conv1d, conv_transpose2d, lstm/gru cells) as PyTorch computes them
# (float64, on float32-representable inputs), for test/ops/layers.test.ts.
# Run: /usr/bin/python3 scripts/torch-layer-goldens.py   (PyTorch 1.13; each case pairs a Kiln expression with the
# torch call that defines it; the loss is sum over outputs of sum(output * r) with fixed random r)
import json
import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(16)


def data(shape, positive=False):
    v = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
    if positive:
        v = (np.abs(v) + np.float32(0.5)).astype(np.float32)
    return [float(a) for a in v]


# (name, group, kiln expression, {input: shape}, torch function of the inputs, inputs to differentiate)
# An input named rv (running variance) is drawn positive.
CASES = [
    ("group_norm_4d", "norm", "group_norm(x, 2, g, b, eps: 0.001)", {"x": [2, 4, 3, 3], "g": [4], "b": [4]},
     lambda x, g, b: F.group_norm(x, 2, g, b, eps=1e-3), ["x", "g", "b"]),
    ("group_norm_3d_plain", "norm", "group_norm(x, 3)", {"x": [2, 6, 5]},
     lambda x: F.group_norm(x, 3), ["x"]),
    ("instance_norm_4d", "norm", "instance_norm(x, g, b)", {"x": [2, 3, 4, 3], "g": [3], "b": [3]},
     lambda x, g, b: F.instance_norm(x, weight=g, bias=b), ["x", "g", "b"]),
    ("instance_norm_3d_eps", "norm", "instance_norm(x, eps: 0.01)", {"x": [2, 3, 5]},
     lambda x: F.instance_norm(x, eps=0.01), ["x"]),
    ("batch_norm_3d_train", "norm", "batch_norm(x, g, b, rm, rv, training: true)", {"x": [4, 3, 5], "g": [3], "b": [3], "rm": [3], "rv": [3]},
     lambda x, g, b, rm, rv: F.batch_norm(x, rm.detach().clone(), rv.detach().clone(), g, b, training=True), ["x", "g", "b"]),
    ("batch_norm_3d_eval", "norm", "batch_norm(x, g, b, rm, rv)", {"x": [4, 3, 5], "g": [3], "b": [3], "rm": [3], "rv": [3]},
     lambda x, g, b, rm, rv: F.batch_norm(x, rm, rv, g, b, training=False), ["x", "g", "b"]),

    ("avg_exclude_pad", "pool", "avg_pool2d(x, 3, stride: 2, padding: 1, count_include_pad: false)", {"x": [1, 2, 6, 7]},
     lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), ["x"]),
    ("avg_ceil", "pool", "avg_pool2d(x, 3, stride: 2, ceil_mode: true)", {"x": [1, 2, 6, 6]},
     lambda x: F.avg_pool2d(x, 3, 2, ceil_mode=True), ["x"]),
    ("avg_ceil_pad_include", "pool", "avg_pool2d(x, 3, stride: 2, padding: 1, ceil_mode: true)", {"x": [1, 2, 6, 7]},
     lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), ["x"]),
    ("avg_ceil_pad_exclude", "pool", "avg_pool2d(x, [3, 2], stride: [2, 3], padding: 1, ceil_mode: true, count_include_pad: false)", {"x": [2, 1, 6, 7]},
     lambda x: F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True, count_include_pad=False), ["x"]),
    ("max_ceil", "pool", "max_pool2d(x, 3, stride: 2, ceil_mode: true)", {"x": [1, 2, 6, 6]},
     lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True), ["x"]),
    # ceil would give 4 windows along each axis, but the 4th would start in the right padding: 3.
    ("max_ceil_drop", "pool", "max_pool2d(x, 2, stride: 2, padding: 1, ceil_mode: true)", {"x": [1, 2, 5, 5]},
     lambda x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True), ["x"]),
    ("adaptive_divisible", "pool", "adaptive_avg_pool2d(x, [2, 2])", {"x": [2, 3, 6, 4]},
     lambda x: F.adaptive_avg_pool2d(x, (2, 2)), ["x"]),
    ("adaptive_uneven", "pool", "adaptive_avg_pool2d(x, [3, 2])", {"x": [1, 2, 7, 5]},
     lambda x: F.adaptive_avg_pool2d(x, (3, 2)), ["x"]),
    ("adaptive_larger", "pool", "adaptive_avg_pool2d(x, [4, 3])", {"x": [1, 2, 3, 2]},
     lambda x: F.adaptive_avg_pool2d(x, (4, 3)), ["x"]),
    ("adaptive_global", "pool", "adaptive_avg_pool2d(x, 1)", {"x": [2, 3, 4, 5]},
     lambda x: F.adaptive_avg_pool2d(x, 1), ["x"]),
    ("global_avg", "pool", "global_avg_pool2d(x)", {"x": [2, 3, 4, 5]},
     lambda x: x.mean(dim=(2, 3)), ["x"]),

    ("conv1d_opts", "conv1d", "conv1d(x, w, b, stride: 2, padding: 1, dilation: 2)", {"x": [2, 4, 9], "w": [6, 4, 3], "b": [6]},
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2), ["x", "w", "b"]),
    ("conv1d_groups", "conv1d", "conv1d(x, w, groups: 2)", {"x": [1, 4, 7], "w": [4, 2, 3]},
     lambda x, w: F.conv1d(x, w, groups=2), ["x", "w"]),

    ("convt_stride_outpad", "convt", "conv_transpose2d(x, w, b, stride: 2, padding: 1, output_padding: 1)", {"x": [1, 3, 4, 3], "w": [3, 2, 3, 3], "b": [2]},
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), ["x", "w", "b"]),
    ("convt_groups_dilation", "convt", "conv_transpose2d(x, w, stride: [2, 1], padding: [0, 2], dilation: [1, 2], groups: 2)", {"x": [2, 4, 3, 4], "w": [4, 1, 2, 3]},
     lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=2), ["x", "w"]),
    # padding larger than dilation * (K - 1): the zero-inserted input is cropped, not padded.
    ("convt_crop", "convt", "conv_transpose2d(x, w, stride: 3, padding: 2)", {"x": [1, 2, 3, 3], "w": [2, 2, 2, 2]},
     lambda x, w: F.conv_transpose2d(x, w, stride=3, padding=2), ["x", "w"]),

    ("lstm_cell", "rnn", "lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)", {"x": [3, 4], "h": [3, 5], "c": [3, 5], "w_ih": [20, 4], "w_hh": [20, 5], "b_ih": [20], "b_hh": [20]},
     lambda x, h, c, w_ih, w_hh, b_ih, b_hh: torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh), ["x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"]),
    ("lstm_cell_nobias", "rnn", "lstm_cell(x, h, c, w_ih, w_hh)", {"x": [2, 3], "h": [2, 2], "c": [2, 2], "w_ih": [8, 3], "w_hh": [8, 2]},
     lambda x, h, c, w_ih, w_hh: torch.lstm_cell(x, (h, c), w_ih, w_hh, None, None), ["x", "h", "c", "w_ih", "w_hh"]),
    ("gru_cell", "rnn", "gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)", {"x": [3, 4], "h": [3, 5], "w_ih": [15, 4], "w_hh": [15, 5], "b_ih": [15], "b_hh": [15]},
     lambda x, h, w_ih, w_hh, b_ih, b_hh: torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh), ["x", "h", "w_ih", "w_hh", "b_ih", "b_hh"]),
    ("gru_cell_nobias", "rnn", "gru_cell(x, h, w_ih, w_hh)", {"x": [2, 3], "h": [2, 2], "w_ih": [6, 3], "w_hh": [6, 2]},
     lambda x, h, w_ih, w_hh: torch.gru_cell(x, h, w_ih, w_hh, None, None), ["x", "h", "w_ih", "w_hh"]),
]

cases = []
for name, group, expr, shapes, fn, wrt in CASES:
    inputs = {k: {"shape": s, "data": data(s, positive=(k == "rv"))} for k, s in shapes.items()}
    ts = {k: torch.tensor(v["data"]).reshape(v["shape"]).requires_grad_(k in wrt) for k, v in inputs.items()}
    ys = fn(**ts)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    outs = []
    loss = 0
    for y in ys:
        r = torch.tensor(data(list(y.shape))).reshape(y.shape)
        loss = loss + (y * r).sum()
        outs.append({"shape": list(y.shape), "y": y.detach().flatten().tolist(), "r": r.flatten().tolist()})
    grads = torch.autograd.grad(loss, [ts[k] for k in wrt])
    cases.append({
        "name": name, "group": group, "expr": expr, "inputs": inputs, "outs": outs, "wrt": wrt,
        "grads": {k: g.flatten().tolist() for k, g in zip(wrt, grads)},
    })

# Whole sequences through torch.nn.GRU / nn.LSTM (one layer, zero initial state): the cells' weight layouts and
# gate orders are those of the nn modules too. Kiln runs the cell in a loop over a symbolic T.
sequences = []
for kind, G in (("gru", 3), ("lstm", 4)):
    T, B, I, H = 5, 2, 3, 4
    inputs = {"xs": {"shape": [T, B, I], "data": data([T, B, I])}, "wi": {"shape": [G * H, I], "data": data([G * H, I])},
              "wh": {"shape": [G * H, H], "data": data([G * H, H])}, "bi": {"shape": [G * H], "data": data([G * H])},
              "bh": {"shape": [G * H], "data": data([G * H])}}
    ts = {k: torch.tensor(v["data"]).reshape(v["shape"]).requires_grad_(True) for k, v in inputs.items()}
    mod = (torch.nn.GRU if kind == "gru" else torch.nn.LSTM)(I, H)
    del mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0
    mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0 = ts["wi"], ts["wh"], ts["bi"], ts["bh"]
    out, state = mod(ts["xs"])
    hn = (state if kind == "gru" else state[0])[0]
    r = torch.tensor(data([B, H])).reshape(B, H)
    grads = torch.autograd.grad((hn * r).sum(), [ts[k] for k in inputs])
    sequences.append({"kind": kind, "inputs": inputs, "y": hn.detach().flatten().tolist(), "r": r.flatten().tolist(),
                      "grads": {k: g.flatten().tolist() for k, g in zip(inputs, grads)}})

# One line per case, so a regenerated file diffs by case.
with open("test/ops/torch-layer-goldens.json", "w") as fh:
    fh.write('{\n "note": ' + json.dumps("generated by scripts/torch-layer-goldens.py with torch " + torch.__version__) + ',\n "cases": [\n')
    fh.write(",\n".join("  " + json.dumps(c) for c in cases))
    fh.write("\n ],\n \"sequences\": [\n")
    fh.write(",\n".join("  " + json.dumps(q) for q in sequences))
    fh.write("\n ]\n}\n")
print("wrote", len(cases), "cases")
