// Torch export: a compiled module -> a Python package for PyTorch: model.py (one nn.Module per Kiln model, params
// under Kiln's names and layouts, each function a method, each train block's loss and optimizer), the weights,
// a safetensors reader/writer and train_ddp.py (DistributedDataParallel under torchrun).

import type { Graph, IRModule, ParamInfo } from "../../ir/graph.js";
import type { TrainDecl } from "../../frontend/kiln/ast.js";
import { DiagnosticBag } from "../../diagnostics.js";
import { parseProgram } from "../../frontend/kiln/parse.js";
import { lowerProgram } from "../../lower/lower-module.js";
import { parseOptimizer, type OptimizerSpec } from "../../lower/optimizers.js";
import { parseSchedule, type ScheduleSpec } from "../../lower/lr-schedule.js";
import { parseClip, type ClipSpec } from "../../lower/clip-grad.js";
import { KilnError } from "../../../runtime/errors.js";
import { serializeSafetensors } from "../../../runtime/safetensors.js";
import type { Tensor } from "../../../runtime/tensor.js";
import { COMPILER_VERSION } from "../../version.js";
import { TORCH_DTYPE } from "./ops.js";
import { closure, pyName, writePyFunction } from "./write.js";
import { SAFETENSORS_PY, trainDdpPy } from "./python.js";

// nn.Module's own attributes: a Kiln method with one of these names gets a trailing underscore.
const MODULE_ATTRS = new Set("apply buffers children cpu cuda double eval float forward_ half load_state_dict modules named_buffers named_children named_modules named_parameters parameters register_buffer register_parameter requires_grad_ state_dict to train training type zero_grad from_kiln load_kiln save_kiln train_loss KILN_PARAMS".split(" "));

const local = (qualified: string) => qualified.slice(qualified.indexOf(".") + 1);
const methodName = (fn: string) => (MODULE_ATTRS.has(pyName(fn)) ? `${pyName(fn)}_` : pyName(fn));

interface TrainInfo {
  decl: TrainDecl;
  model: string;
  opt: OptimizerSpec;
  schedule?: ScheduleSpec;
  clip?: ClipSpec;
  /** The train step as lowered (before autodiff): its loss is the forward in training mode. */
  step: Graph;
  /** batch_norm running statistics the step writes in its forward: params -> value node. */
  stats: { param: string; node: number }[];
}

function trainBlocks(source: string, file: string): TrainInfo[] {
  const parsed = parseProgram(source, file);
  const diags = new DiagnosticBag();
  const lowered = lowerProgram(parsed.program, diags);
  if (!lowered) throw new KilnError(`kiln: ${file} does not lower`);
  return parsed.program.items.filter((i): i is TrainDecl => i.kind === "train").map((decl) => {
    const entry = (k: string) => decl.entries.find((e) => e.key === k)!.value;
    const has = (k: string) => decl.entries.some((e) => e.key === k);
    const m = entry("model");
    const opt = parseOptimizer(entry("optimizer"), diags)!;
    const schedule = has("schedule") ? parseSchedule(entry("schedule"), diags) : undefined;
    const clip = parseClip(has("clip_grad_norm") ? entry("clip_grad_norm") : undefined, has("clip_grad_value") ? entry("clip_grad_value") : undefined, diags) ?? undefined;
    const step = lowered.functions.find((g) => g.name === `${decl.name}.step`)!;
    if (decl.entries.some((e) => e.key === "loss_scale") || lowered.precision) throw new KilnError(`kiln: ${file}:${decl.span.line}:${decl.span.col}: cannot export train ${decl.name} to PyTorch: loss scaling is Kiln's mixed-precision training\nhint: use torch.cuda.amp.GradScaler around the exported train_loss, or export without --precision/loss_scale`);
    // Optimizer updates read gradients; the running statistics come from the forward alone.
    const weight = (name: string) => lowered.params.some((p) => p.name === name && !p.role);
    const stats = (step.updates ?? []).filter((u) => weight(u.param) && ![...closure(step, [u.node])].some((id) => step.nodes[id].op === "gradient"));
    return { decl, model: m.kind === "name" ? m.name : "", opt, ...(schedule ? { schedule } : {}), ...(clip ? { clip } : {}), step, stats };
  });
}

/**
 * The trained 2-D weights some function multiplies from the right (x @ w): nn.Linear's weights, which torch holds
 * as [out, in]. Any other use (an embedding table, a tied head) reads the same handle transposed back, so the
 * choice never changes a result.
 */
function linearWeights(params: ParamInfo[], graphs: Graph[], stats: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const g of graphs) {
    for (const n of g.nodes) {
      if (n.op !== "matmul") continue;
      const w = g.nodes[n.inputs[1]];
      if (w?.op !== "param") continue;
      const p = params.find((q) => q.name === (w.attrs as { name: string }).name);
      if (p && p.type.shape.length === 2 && p.type.dtype.startsWith("f") && !stats.has(p.name)) out.add(p.name);
    }
  }
  return out;
}

function optimizerPy(t: TrainInfo): { text: string; summary: string } {
  const h = t.opt.h;
  const summary = `${t.opt.kind}(${Object.entries(h).map(([k, v]) => `${k}=${v}`).join(", ")})`;
  // Kiln's optimizers follow these torch.optim classes' update rules (test/train/optimizers-torch.test.ts).
  const calls: Record<OptimizerSpec["kind"], () => string> = {
    sgd: () => `torch.optim.SGD(params, lr=${h.lr}, momentum=${h.momentum}, dampening=${h.dampening}, weight_decay=${h.weight_decay}, nesterov=${h.nesterov ? "True" : "False"})`,
    adam: () => `torch.optim.Adam(params, lr=${h.lr}, betas=(${h.beta1}, ${h.beta2}), eps=${h.eps}, weight_decay=${h.weight_decay})`,
    adamw: () => `torch.optim.AdamW(params, lr=${h.lr}, betas=(${h.beta1}, ${h.beta2}), eps=${h.eps}, weight_decay=${h.weight_decay})`,
    rmsprop: () => `torch.optim.RMSprop(params, lr=${h.lr}, alpha=${h.alpha}, eps=${h.eps}, weight_decay=${h.weight_decay}, momentum=${h.momentum}, centered=False)`,
    adagrad: () => `torch.optim.Adagrad(params, lr=${h.lr}, lr_decay=${h.lr_decay}, weight_decay=${h.weight_decay}, initial_accumulator_value=0, eps=${h.eps})`,
  };
  const make = calls[t.opt.kind];
  if (!make) throw new KilnError(`kiln: cannot export optimizer ${t.opt.kind} to PyTorch`);
  return { text: make(), summary };
}

/** make_scheduler and clip_gradients: the train block's schedule and clipping (None / nothing when it has none). */
function schedulePy(t: TrainInfo, suffix: string): string {
  const s = t.schedule, lr = t.opt.h.lr;
  let body = "    return None";
  if (s?.kind === "step") body = `    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=${s.h.step_size}, gamma=${s.h.gamma})`;
  else if (s?.kind === "cosine") body = `    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=${s.h.t_max}, eta_min=${s.h.eta_min})`;
  else if (s) {
    const { warmup: W, total: N, min_lr: m, start_factor: f } = s.h;
    const decay = s.kind === "warmup_cosine" ? "(1 + math.cos(math.pi * u)) / 2" : "1 - u";
    body = `    def factor(t):
        if t < ${W}:
            return ${f} + ${1 - f} * t / ${W}
        u = (min(t, ${N}) - ${W}) / ${N - W}
        return (${m} + (${lr} - ${m}) * (${decay})) / ${lr}
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)`;
  }
  const what = s ? `${s.kind}(${Object.entries(s.h).map(([k, v]) => `${k}=${v}`).join(", ")})` : "none";
  const clip = t.clip?.kind === "norm" ? `torch.nn.utils.clip_grad_norm_(params, ${t.clip.max})` : t.clip ? `torch.nn.utils.clip_grad_value_(params, ${t.clip.max})` : "pass";
  return `def make_scheduler${suffix}(optimizer):
    """train ${t.decl.name}'s lr schedule, ${what}: call its step() after each optimizer.step()."""
${body}


def clip_gradients${suffix}(model):
    """train ${t.decl.name}'s gradient clipping${t.clip ? ` (clip_grad_${t.clip.kind}: ${t.clip.max})` : " (none)"}: call it between backward() and optimizer.step()."""
    params = [p for p in model.parameters() if p.requires_grad]
    ${clip}`;
}

function modelClass(ir: IRModule, model: string, trains: TrainInfo[], source: string): string {
  const params = ir.params.filter((p) => p.model === model && !p.role);
  const statNames = new Set(trains.flatMap((t) => t.stats.map((s) => s.param)));
  const attr = (q: string) => pyName(local(q));
  const graphs = [...ir.functions.filter((g) => g.model === model && !g.updates?.length), ...trains.filter((t) => t.model === model).map((t) => t.step)];
  const linear = linearWeights(params, graphs, statNames);
  // A linear weight is held as nn.Linear holds it, [out, in], and read as its transpose where Kiln reads [in, out].
  const ref = (q: string) => (linear.has(q) ? `self.${attr(q)}.t()` : `self.${attr(q)}`);
  const init = params.map((p: ParamInfo) => {
    const shape = linear.has(p.name) ? [...(p.type.shape as number[])].reverse() : (p.type.shape as number[]);
    const zeros = `torch.zeros((${shape.join(", ")}${p.type.shape.length === 1 ? "," : ""}), dtype=${TORCH_DTYPE[p.type.dtype]})`;
    return statNames.has(p.name) ? `self.register_buffer("${attr(p.name)}", ${zeros})  # running statistics: written by the train loss, not trained` : `self.${attr(p.name)} = nn.Parameter(${zeros}${p.type.dtype.startsWith("f") || p.type.dtype === "bf16" ? "" : ", requires_grad=False"})`;
  });
  const methods = ir.functions.filter((g) => g.model === model && !g.updates?.length).map((g) =>
    writePyFunction(g, { name: methodName(local(g.name)), method: true, param: ref, doc: `Kiln's ${g.name}.` }));
  const trainLosses = trains.filter((t) => t.model === model).map((t, k) => writePyFunction(t.step, {
    name: k === 0 ? "train_loss" : `train_loss_${pyName(t.decl.name)}`,
    method: true,
    param: ref,
    extra: t.stats.map((s) => s.node),
    epilogue: (name) => (t.stats.length ? ["with torch.no_grad():", ...t.stats.map((s) => `    self.${attr(s.param)}.copy_(${name(s.node)})`)] : []),
    doc: `The loss of train ${t.decl.name} in training mode (dropout on, batch_norm on batch statistics, which it writes to the running ones).`,
  }));
  const ind = (s: string) => s.split("\n").map((l) => (l ? `    ${l}` : l)).join("\n");
  return `class ${pyName(model)}(nn.Module):
    """Kiln's model ${model}: params under Kiln's names, in torch's layouts: a weight Kiln reads as x @ w [in, out]
    is held as nn.Linear's weight [out, in] and read as x @ w.t() (KILN_LINEAR); conv weights are [out, in, kh, kw]
    in both. Load weights with from_kiln(path) or load_kiln(path), which transpose Kiln's files as needed."""

    KILN_PARAMS = {${params.map((p) => `${JSON.stringify(p.name)}: ${JSON.stringify(attr(p.name))}`).join(", ")}}
    KILN_LINEAR = {${[...linear].map((n) => JSON.stringify(n)).join(", ")}}

    def __init__(self):
        super().__init__()
${init.map((l) => `        ${l}`).join("\n")}

    @classmethod
    def from_kiln(cls, path=None):
        """A model with the weights of a Kiln safetensors file (default: the ones exported with it)."""
        return cls().load_kiln(path or os.path.join(HERE, "weights.safetensors"))

    def load_kiln(self, path):
        tensors, _ = load_file(path)
        for name, a in self.KILN_PARAMS.items():
            if name not in tensors:
                raise KeyError(f"{path} has no tensor '{name}' (it has: {', '.join(tensors) or 'none'})")
            t, cur = tensors[name], getattr(self, a)
            want = tuple(reversed(cur.shape)) if name in self.KILN_LINEAR else tuple(cur.shape)
            if tuple(t.shape) != want or t.dtype != cur.dtype:
                raise ValueError(f"{path}: tensor '{name}' is {t.dtype}{list(t.shape)}, the model's is {cur.dtype}{list(want)}")
            if name in self.KILN_LINEAR:
                t = t.t()
            with torch.no_grad():
                cur.copy_(t)
        return self

    def save_kiln(self, path):
        """Writes the weights as safetensors under Kiln's names: kiln run/train/export --weights read them."""
        save_file({name: getattr(self, a).t().contiguous() if name in self.KILN_LINEAR else getattr(self, a) for name, a in self.KILN_PARAMS.items()}, path, {"format": "kiln-weights", "source": ${JSON.stringify(source)}})

${[...methods, ...trainLosses].map(ind).join("\n\n")}
`;
}

export interface TorchExport {
  files: Map<string, Uint8Array | string>;
}

export function exportTorch(ir: IRModule, source: string, file: string, weights: Map<string, Tensor>): Map<string, Uint8Array | string> {
  const trains = trainBlocks(source, file);
  const models = [...new Set(ir.params.filter((p) => !p.role).map((p) => p.model)), ...ir.functions.filter((g) => g.model && !g.updates?.length).map((g) => g.model!)].filter((m, i, a) => a.indexOf(m) === i && !trains.some((t) => t.decl.name === m));
  const free = ir.functions.filter((g) => !g.model).map((g) => writePyFunction(g, { name: pyName(g.name), method: false, param: () => { throw new KilnError(`kiln: ${g.name} reads a param outside a model`); }, doc: `Kiln's ${g.name}.` }));
  const opts = trains.map((t) => ({ t, ...optimizerPy(t) }));
  const optFns = opts.map(({ t, text, summary }, k) => `def make_optimizer${k === 0 ? "" : `_${pyName(t.decl.name)}`}(model):
    """train ${t.decl.name}'s optimizer, ${summary}: torch.optim follows the same update rules as Kiln's."""
    params = [p for p in model.parameters() if p.requires_grad]
    return ${text}


${schedulePy(t, k === 0 ? "" : `_${pyName(t.decl.name)}`)}`);
  const modelPy = `# PyTorch port of ${file}, written by kiln export --format torch (kiln ${COMPILER_VERSION}): each Kiln model is an
# nn.Module whose methods are the model's functions and whose train_loss is its train block's loss; free
# functions are module functions. Generated from the compiled IR; regenerate rather than edit.
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

try:
    from .kiln_safetensors import load_file, save_file
except ImportError:
    from kiln_safetensors import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))


${[...models.map((m) => modelClass(ir, m, trains, file)), ...free, ...optFns].join("\n\n")}
`;
  const pkgName = pyName(file.replace(/^.*[\\/]/, "").replace(/\.kiln$/, "")) + "_torch";
  const names = [...models.map(pyName), ...ir.functions.filter((g) => !g.model).map((g) => pyName(g.name)), ...opts.flatMap((_o, k) => ["make_optimizer", "make_scheduler", "clip_gradients"].map((f) => (k === 0 ? f : `${f}_${pyName(opts[k].t.decl.name)}`)))];
  const files = new Map<string, Uint8Array | string>();
  files.set("__init__.py", `# ${pkgName}: the PyTorch port of ${file} (kiln export --format torch); see model.py and train_ddp.py.\nfrom .model import ${names.join(", ")}\nfrom .kiln_safetensors import load_file, save_file\n`);
  files.set("model.py", modelPy);
  files.set("kiln_safetensors.py", SAFETENSORS_PY);
  const modelWeights = Object.fromEntries([...weights].filter(([n]) => ir.params.find((p) => p.name === n && !p.role)));
  files.set("weights.safetensors", serializeSafetensors(modelWeights, { format: "kiln-weights", source: file }));
  const first = trains[0];
  if (first) {
    const inputs = first.step.inputs.map((io) => ({ name: pyName(io.name), dtype: first.step.nodes[io.node].type.dtype, shape: [...first.step.nodes[io.node].type.shape] }));
    const hasForward = ir.functions.some((g) => g.name === `${first.model}.forward`);
    files.set("train_ddp.py", trainDdpPy({ pkg: pkgName, model: pyName(first.model), train: first.decl.name, optimizer: opts[0].summary, inputs, hasForward }));
  }
  return files;
}
