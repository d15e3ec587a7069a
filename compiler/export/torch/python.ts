// Torch export, the fixed Python files of the package: a safetensors reader/writer (Debian's python3-torch has
// no `safetensors` module) and the torchrun entry point, train_ddp.py, specialised by a few values.

/** kiln_safetensors.py: the whole format is an 8-byte LE header length, a JSON header, then raw bytes. */
export const SAFETENSORS_PY = `# A tiny safetensors reader/writer, because Debian's python3-torch has no \`safetensors\` package: the format is an
# 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
# then the tensors' raw little-endian bytes. Files written here load in kiln (and in the safetensors package).
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}
# Kiln lays tensors out by descending element size, then name, so every tensor is aligned to its element size.
_RANK = {"BOOL": 0, "U8": 1, "I8": 2, "F16": 3, "BF16": 4, "I32": 5, "F32": 6, "F64": 7}


def load_file(path):
    """{name: tensor} and the metadata dict of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        raw = bytearray(data[base + start:base + end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.zeros(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def save_file(tensors, path, metadata=None):
    """Writes {name: tensor} (moved to the CPU, made contiguous) as safetensors."""
    items = []
    for name, t in tensors.items():
        # reshape(-1): a 0-dim tensor (a loss) cannot be viewed as bytes.
        t = t.detach().to("cpu").contiguous()
        items.append((name, _NAMES[t.dtype], list(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""))
    items.sort(key=lambda it: (-_RANK[it[1]], it[0]))
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dt, shape, raw in items:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for _, _, _, raw in items:
            f.write(raw)
    import os
    os.replace(tmp, path)
`;

export interface TrainScript {
  pkg: string;
  model: string;
  train: string;
  optimizer: string;
  /** The train loss's inputs: [name, dtype, shape with the batch dim as "B"]. */
  inputs: { name: string; dtype: string; shape: (number | string)[] }[];
  hasForward: boolean;
}

/** train_ddp.py: DistributedDataParallel training under torchrun from Kiln weights to Kiln weights. */
export function trainDdpPy(t: TrainScript): string {
  const [x, y] = t.inputs;
  // --data mnist reshapes 784 pixels to the train input's non-batch dims, so they must be known and take 784
  // (a symbolic T or another size would fail deep in torch, or pair rows with the wrong labels).
  const rest = x.shape.slice(1);
  const pixels = rest.every((d) => typeof d === "number") ? (rest as number[]).reduce((a, b) => a * b, 1) : null;
  const imageShape = pixels === 784 ? `[${rest.join(", ")}]` : "None";
  const inputType = `${x.dtype}[${x.shape.join(", ")}]`;
  return `# Trains ${t.model} with the train block ${t.train} (${t.optimizer}) under torchrun, with torch.distributed and
# DistributedDataParallel (gloo on CPU, nccl on GPU), from Kiln safetensors weights to safetensors that kiln loads back.
#   torchrun --nproc_per_node 2 train_ddp.py --weights W.safetensors --data mnist --epochs 1 --batch 64 --out OUT.safetensors
#   torchrun --nproc_per_node 2 train_ddp.py --weights W.safetensors --data BATCHES.safetensors --steps 20 --out OUT.safetensors
# --batch is the global batch: each of the N processes takes its N-th of every batch, and DDP averages the
# gradients, so a step equals one step of kiln train on the whole batch (batch_norm statistics stay per process).
import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_safetensors import load_file  # noqa: E402
from model import ${t.model}, clip_gradients, make_optimizer, make_scheduler  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class TrainLoss(torch.nn.Module):
    """DDP synchronises gradients of the module it wraps: this one's forward is the train block's loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model.train_loss(*inputs)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# The train input's non-batch dims when they hold one 28x28 image (784 values), else None.
MNIST_SHAPE = ${imageShape}


def mnist(data_dir, split):
    """Kiln's split of the MNIST test set: images 0-7999 train, 8000-9999 held out; pixels / 255."""
    if MNIST_SHAPE is None:
        sys.exit("train_ddp.py: --data mnist needs the train input ${x.name} to hold one 28x28 image per row "
                 "(784 values), but it is ${inputType}; pass --data BATCHES.safetensors instead")
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).astype(np.int32)
    part = slice(0, 8000) if split == "train" else slice(8000, 10000)
    x = torch.from_numpy(images[part].copy()).reshape(-1, *MNIST_SHAPE)
    return x, torch.from_numpy(labels[part].copy())


def batches(args, rank, world):
    """Yields this process's share of each global batch: (step, inputs)."""
    if args.data != "mnist":
        t, _ = load_file(args.data)
        xs, ys = t["${x.name}"], t["${y.name}"]
        for s in range(min(args.steps or len(xs), len(xs))):
            n = xs[s].shape[0] // world
            yield s, xs[s][rank * n:(rank + 1) * n], ys[s][rank * n:(rank + 1) * n]
        return
    x, y = mnist(args.data_dir, "train")
    step = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed + epoch))
        for b in range(len(x) // args.batch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            n = args.batch // world
            mine = idx[rank * n:(rank + 1) * n]
            yield step, x[mine], y[mine]
            step += 1
            if args.steps and step >= args.steps:
                return


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=os.path.join(HERE, "weights.safetensors"), help="Kiln safetensors to start from")
    p.add_argument("--out", required=True, help="where rank 0 writes the trained weights (safetensors)")
    p.add_argument("--data", default="mnist", help="mnist, or a safetensors file of batches ${x.name} [S, B, ...], ${y.name} [S, B]")
    p.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "data", "mnist"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: all)")
    p.add_argument("--batch", type=int, default=64, help="global batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    args = p.parse_args()
    backend = args.backend if args.backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch % world:
        sys.exit(f"train_ddp.py: --batch {args.batch} must be a multiple of the {world} processes")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if backend == "nccl" else torch.device("cpu")
    model = ${t.model}.from_kiln(args.weights).to(device)
    ddp = DistributedDataParallel(TrainLoss(model), device_ids=[device.index] if backend == "nccl" else None)
    opt = make_optimizer(model)
    sched = make_scheduler(opt)
    for step, *inputs in batches(args, rank, world):
        opt.zero_grad(set_to_none=True)
        loss = ddp(*[t.to(device) for t in inputs])
        loss.backward()
        clip_gradients(model)
        opt.step()
        if sched is not None:
            sched.step()
        if rank == 0 and (step % 50 == 0):
            print(f"step {step + 1}  loss {loss.item():.6f}", flush=True)
    if rank == 0:
        model.save_kiln(args.out)
        print(f"train_ddp.py: wrote {args.out} ({world} processes, {backend})", flush=True)${t.hasForward ? `
        if args.data == "mnist":
            x, y = mnist(args.data_dir, "test")
            with torch.no_grad():
                acc = (model.forward(x.to(device)).argmax(-1).cpu() == y).float().mean().item()
            print(f"held-out accuracy {acc:.4f} (MNIST test images 8000-9999)", flush=True)` : ""}
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
`;
}
