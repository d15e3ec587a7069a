# PyTorch reference for bench/gpt-check.js: rebuilds bench/common.js's GPT weights (the same LCG, in float32) and
# token batch, runs 5 steps of torch.optim.Adam on gpt_char.kiln's GPT, and prints the losses, so the bench's
# systems can be checked against numbers from outside the code. Run: /usr/bin/python3 scripts/gpt_bench_torch.py
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

T, D, H, L, V, FF = 64, 64, 4, 4, 65, 256
B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def random_f32(n, seed):
    # bench/common.js randomF32: s = s * 1664525 + 1013904223 mod 2^32; value (s / 2^32) * 2 - 1 stored as f32.
    out = np.empty(n, dtype=np.float32)
    s = seed & 0xFFFFFFFF
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = (s / 2**32) * 2 - 1
    return out


def gpt_weights():
    # bench/common.js gptWeights: the same order of seeds; JS maps Float32Arrays with f64 arithmetic, then stores f32.
    seed = [101]

    def take(n):
        a = random_f32(n, seed[0]).astype(np.float64)
        seed[0] += 1
        return a

    def u(shape, std):
        return (take(int(np.prod(shape))) * std * math.sqrt(3)).astype(np.float32).reshape(shape)

    def gain(n):
        return (1 + 0.1 * take(n)).astype(np.float32)

    def bias(n):
        return (0.01 * take(n)).astype(np.float32)

    w = {"tok": u([V, D], 0.02), "pos": u([T, D], 0.02), "lnf_g": gain(D), "lnf_b": bias(D), "head": u([D, V], 0.02)}
    for i in range(L):
        p = f"blocks.{i}."
        w[p + "ln1_g"], w[p + "ln1_b"], w[p + "ln2_g"], w[p + "ln2_b"] = gain(D), bias(D), gain(D), bias(D)
        w[p + "w_fc"], w[p + "b_fc"], w[p + "w_proj"], w[p + "b_proj"] = u([D, FF], 0.02), bias(FF), u([FF, D], 0.01), bias(D)
        for n in ("q", "k", "v"):
            w[p + "attn.w_" + n] = u([D, D], 0.02)
        w[p + "attn.w_o"], w[p + "attn.b_o"] = u([D, D], 0.01), bias(D)
    return {k: torch.tensor(v, requires_grad=True) for k, v in w.items()}


def batch():
    # bench/common.js inputsOf for the gpt cases: windows of T + 1 of a pseudo-random character stream.
    stream = np.minimum(V - 1, np.floor((random_f32(B * (T + 1), 5).astype(np.float64) + 1) / 2 * V)).astype(np.int64)
    win = stream.reshape(B, T + 1)
    return torch.tensor(win[:, :T]), torch.tensor(win[:, 1:])


def forward(w, x):
    h = w["tok"][x] + w["pos"]
    heads = lambda t: t.reshape(B, T, H, D // H).permute(0, 2, 1, 3)
    mask = torch.ones(T, T).tril().bool()
    for i in range(L):
        p = f"blocks.{i}."
        a = F.layer_norm(h, (D,), w[p + "ln1_g"], w[p + "ln1_b"], 1e-5)
        q, k, v = (heads(a @ w[p + "attn.w_" + n]) for n in ("q", "k", "v"))
        att = (q @ k.transpose(-1, -2) / math.sqrt(D // H)).masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).permute(0, 2, 1, 3).reshape(B, T, D)
        h = h + y @ w[p + "attn.w_o"] + w[p + "attn.b_o"]
        m = F.relu(F.layer_norm(h, (D,), w[p + "ln2_g"], w[p + "ln2_b"], 1e-5) @ w[p + "w_fc"] + w[p + "b_fc"])
        h = h + m @ w[p + "w_proj"] + w[p + "b_proj"]
    return F.layer_norm(h, (D,), w["lnf_g"], w["lnf_b"], 1e-5) @ w["head"]


w = gpt_weights()
x, y = batch()
with torch.no_grad():
    logits = forward(w, x)
    print("forward sum %.6f abs %.6f" % (logits.double().sum().item(), logits.double().abs().sum().item()))
opt = torch.optim.Adam(list(w.values()), lr=0.003, betas=(0.9, 0.999), eps=1e-8)
losses = []
for _ in range(STEPS):
    opt.zero_grad()
    loss = F.cross_entropy(forward(w, x).reshape(B * T, V), y.reshape(B * T))
    loss.backward()
    opt.step()
    losses.append(loss.item())
print("losses " + " ".join("%.6f" % l for l in losses))
