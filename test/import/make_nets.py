# Test fixture for kiln import: the model families with random weights (no downloads), exported by
# Debian's python3-torch / python3-torchvision 1.13 with torch.onnx.export into argv[1]; argv[2:] picks the models.
import math
import sys

import torch
import torch.nn as nn

out, which = sys.argv[1], sys.argv[2:]
torch.manual_seed(0)


class Encoder(nn.Module):
    """A BERT-like encoder: token embedding, learned positions, nn.TransformerEncoder (GELU), mean pooling."""

    def __init__(s, V=50, D=32, H=4, L=2, T=16):
        super().__init__()
        s.emb = nn.Embedding(V, D)
        s.pos = nn.Parameter(torch.randn(1, T, D) * 0.1)
        layer = nn.TransformerEncoderLayer(D, H, dim_feedforward=64, dropout=0.1, activation="gelu", batch_first=True)
        s.enc = nn.TransformerEncoder(layer, L)
        s.norm = nn.LayerNorm(D)
        s.head = nn.Linear(D, 3)

    def forward(s, ids):
        h = s.emb(ids) + s.pos[:, : ids.shape[1]]
        return s.head(s.norm(s.enc(h, mask=s.mask(ids.shape[1]))).mean(dim=1))

    def mask(s, T):
        return None


class CausalEncoder(Encoder):
    """The encoder as a decoder-only model: nn.Transformer's additive causal mask (0 below, -inf above)."""

    def mask(s, T):
        return nn.Transformer.generate_square_subsequent_mask(T)


class Block(nn.Module):
    """A GPT-2 block (nanoGPT's): the causal mask is a tril buffer sliced to T, filled with -inf where 0."""

    def __init__(s, D, H, T):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        s.qkv, s.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        s.fc, s.out = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
        s.H = H
        s.register_buffer("mask", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(s, x):
        B, T, D = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, s.H, D // s.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // s.H))
        att = torch.softmax(att.masked_fill(s.mask[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        x = x + s.proj((att @ v).transpose(1, 2).contiguous().view(B, T, D))
        return x + s.out(nn.functional.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, V=40, D=32, H=4, L=2, T=16):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, D), nn.Embedding(T, D)
        s.blocks = nn.ModuleList([Block(D, H, T) for _ in range(L)])
        s.ln = nn.LayerNorm(D)
        s.head = nn.Linear(D, V, bias=False)

    def forward(s, ids):
        h = s.wte(ids) + s.wpe(torch.arange(ids.shape[1], dtype=torch.long).unsqueeze(0))
        for b in s.blocks:
            h = b(h)
        return s.head(s.ln(h))


def vision(name):
    import torchvision

    return getattr(torchvision.models, name)(num_classes=10)


def randomize(m):
    # Random LayerNorm/BatchNorm affine params and running statistics, so that none is the identity.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.LayerNorm, nn.BatchNorm2d)):
                mod.weight.copy_(torch.rand_like(mod.weight) + 0.5)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.1)
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)


MODELS = {
    # name: (module, example input, opset); the batch is symbolic, the sequence models' T fixed but in *_seq.
    "encoder": (Encoder, lambda: torch.randint(0, 50, (2, 16)), 14),
    "encoder17": (Encoder, lambda: torch.randint(0, 50, (2, 16)), 17),
    "encoder_causal": (CausalEncoder, lambda: torch.randint(0, 50, (2, 16)), 14),
    "gpt": (GPT, lambda: torch.randint(0, 40, (2, 16)), 14),
    # The sequence length symbolic too ("seq"): the position table and the mask are sliced to it, the positions
    # are a Range over it, nn.Transformer's mask is built from it (ConstantOfShape, Trilu).
    "encoder_seq": (Encoder, lambda: torch.randint(0, 50, (2, 16)), 14),
    "encoder_causal_seq": (CausalEncoder, lambda: torch.randint(0, 50, (2, 16)), 14),
    "gpt_seq": (GPT, lambda: torch.randint(0, 40, (2, 16)), 14),
    "resnet18": (lambda: vision("resnet18"), lambda: torch.randn(1, 3, 64, 64), 13),
    # Unfolded: BatchNormalization nodes (trainable batch_norm) and the Identity-shared BN params, opset 17.
    "resnet18_bn": (lambda: vision("resnet18"), lambda: torch.randn(1, 3, 64, 64), 17),
    "mobilenet_v2": (lambda: vision("mobilenet_v2"), lambda: torch.randn(1, 3, 64, 64), 13),
    "squeezenet1_1": (lambda: vision("squeezenet1_1"), lambda: torch.randn(1, 3, 64, 64), 13),
}

for name in which:
    make, example, opset = MODELS[name]
    fold = name != "resnet18_bn"
    m = make()
    randomize(m)
    m.eval()
    seq = name.endswith("_seq")
    axes = {"x": {0: "batch", 1: "seq"} if seq else {0: "batch"}, "y": {0: "batch", 1: "seq"} if seq and name.startswith("gpt") else {0: "batch"}}
    torch.onnx.export(m, example(), f"{out}/{name}.onnx", input_names=["x"], output_names=["y"],
                      dynamic_axes=axes, opset_version=opset,
                      do_constant_folding=fold, training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE)
