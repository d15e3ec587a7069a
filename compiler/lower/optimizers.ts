// Lowering stage, optimizers of train blocks: sgd (momentum, nesterov, dampening, weight decay), adam and adamw,
// with PyTorch's update rules, emitted as graph nodes after the gradients. Their state (momentum buffers,
// moments, step count) lives in params with role "state" that the runtime keeps between calls.

import type { CallExpr, Expr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { readNumericCall, type Hyper, type NumericCallSpec } from "./numeric-call.js";
import type { ParamInfo } from "../ir/graph.js";
import type { TensorType } from "../ir/types.js";
import type { Lowerer } from "./lowerer.js";


/** Each optimizer's hyperparameters with defaults (undefined: required) and the valid range check. */
const OPTIMIZERS: Record<string, NumericCallSpec> = {
  sgd: {
    defaults: { lr: undefined, momentum: 0, dampening: 0, weight_decay: 0, nesterov: 0 },
    check: (h) =>
      !(h.lr > 0) ? "lr must be > 0" : !(h.momentum >= 0 && h.momentum < 1) ? "momentum must be in [0, 1)" : !(h.dampening >= 0 && h.dampening <= 1) ? "dampening must be in [0, 1]"
      : !(h.weight_decay >= 0) ? "weight_decay must be >= 0" : h.nesterov && (h.momentum <= 0 || h.dampening !== 0) ? "nesterov needs momentum > 0 and dampening 0" : undefined,
  },
  adam: { defaults: { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 }, check: adamCheck },
  // torch.optim.RMSprop (not centered) and torch.optim.Adagrad (initial_accumulator_value 0), with their defaults.
  rmsprop: {
    defaults: { lr: 0.01, alpha: 0.99, eps: 1e-8, weight_decay: 0, momentum: 0 },
    check: (h) => !(h.lr > 0) ? "lr must be > 0" : !(h.alpha >= 0 && h.alpha < 1) ? "alpha must be in [0, 1)" : !(h.eps > 0) ? "eps must be > 0"
      : !(h.weight_decay >= 0) ? "weight_decay must be >= 0" : !(h.momentum >= 0 && h.momentum < 1) ? "momentum must be in [0, 1)" : undefined,
  },
  adagrad: {
    defaults: { lr: 0.01, lr_decay: 0, weight_decay: 0, eps: 1e-10 },
    check: (h) => !(h.lr > 0) ? "lr must be > 0" : !(h.lr_decay >= 0) ? "lr_decay must be >= 0" : !(h.weight_decay >= 0) ? "weight_decay must be >= 0" : !(h.eps > 0) ? "eps must be > 0" : undefined,
  },
  adamw: { defaults: { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }, check: adamCheck },
};

function adamCheck(h: Hyper): string | undefined {
  if (!(h.lr > 0)) return "lr must be > 0";
  if (!(h.beta1 >= 0 && h.beta1 < 1)) return "beta1 must be in [0, 1)";
  if (!(h.beta2 >= 0 && h.beta2 < 1)) return "beta2 must be in [0, 1)";
  if (!(h.eps > 0)) return "eps must be > 0";
  if (!(h.weight_decay >= 0)) return "weight_decay must be >= 0";
  return undefined;
}

export interface OptimizerSpec {
  readonly kind: string;
  readonly h: Hyper;
}

/** Reads `sgd(lr: 0.1, ...)`; every problem is a diagnostic (K609 for a value out of range). */
export function parseOptimizer(e: Expr, diags: DiagnosticBag): OptimizerSpec | undefined {
  if (e.kind !== "call" || !OPTIMIZERS[e.callee]) {
    diags.error("K611", "optimizer must be sgd(...), adam(...), adamw(...), rmsprop(...) or adagrad(...)", e.span);
    return undefined;
  }
  const call = e as CallExpr;
  const h = readNumericCall(call, OPTIMIZERS[call.callee]!, diags, { what: call.callee, arg: "hyperparameter", example: 0.01 }, true);
  return h && { kind: call.callee, h };
}

/**
 * Emits the update of one param; returns [param, new value] pairs (the param itself and its state). `keep` wraps
 * each new state value before the param's update reads it (loss scaling: "the new value if the step is kept,
 * else the old"), so the update reads the state's final value and no intermediate is stored twice.
 */
export function emitUpdate(L: Lowerer, opt: OptimizerSpec, train: string, p: { name: string; node: number; grad: number; type: TensorType; scale?: number; lr?: number }, step: number | undefined, state: (name: string, t: TensorType) => number, keep: (name: string, next: number) => number = (_n, v) => v): [string, number][] {
  const c = (v: number) => L.constant(v, p.type.dtype);
  const op = (o: "add" | "sub" | "mul" | "div", a: number, b: number) => L.emit(o, [a, b], {})!;
  const { h } = opt;
  // Under loss scaling `p.grad` is the scaled gradient and each use divides by `p.scale` inside its own
  // expression ((k * g_scaled) / scale), so no unscaled gradient is shared between kernels and stored.
  const scaled = p.scale;
  let shared: number | undefined = scaled === undefined ? p.grad : undefined;
  const G = () => (shared ??= op("div", p.grad, scaled!));
  const times = (k: number | (() => number)) => {
    const kk = typeof k === "number" ? c(k) : k();
    return shared === undefined ? op("div", op("mul", kk, p.grad), scaled!) : op("mul", kk, shared);
  };
  // A schedule's lr is an f32 scalar node of the step graph; without one, the constant lr.
  let lrNode: number | undefined;
  const LR = () => (lrNode ??= p.lr === undefined ? c(h.lr) : p.type.dtype === "f32" ? p.lr : L.emit("cast", [p.lr], { to: p.type.dtype })!);
  const out: [string, number][] = [];
  if (opt.kind === "sgd") {
    if (h.weight_decay) shared = op("add", G(), op("mul", c(h.weight_decay), p.node));
    let step1: number | undefined; // what the param moves along (lr times it), when not the gradient itself
    if (h.momentum) {
      const bufName = `${train}.momentum.${p.name}`;
      const buf = state(bufName, p.type);
      let next = op("add", op("mul", c(h.momentum), buf), h.dampening ? times(1 - h.dampening) : G());
      // PyTorch starts the buffer at the gradient itself: the first step is not dampened.
      if (h.dampening) next = L.emit("where", [L.emit("eq", [step!, L.constant(1, "f32")], {})!, G(), next], {})!;
      const nextBuf = keep(bufName, next);
      out.push([bufName, nextBuf]);
      step1 = h.nesterov ? op("add", G(), op("mul", c(h.momentum), nextBuf)) : nextBuf;
    }
    out.push([p.name, op("sub", p.node, step1 === undefined ? times(LR) : op("mul", LR(), step1))]);
    return out;
  }
  if (opt.kind === "rmsprop" || opt.kind === "adagrad") {
    // Both add weight decay to the gradient and divide it by the root of a running sum of squares.
    if (h.weight_decay) shared = op("add", G(), op("mul", c(h.weight_decay), p.node));
    const g = G();
    const sqName = `${train}.${opt.kind === "rmsprop" ? "square_avg" : "sum"}.${p.name}`;
    const sq = state(sqName, p.type);
    const nextSq = keep(sqName, opt.kind === "rmsprop"
      ? op("add", op("mul", c(h.alpha), sq), op("mul", c(1 - h.alpha), op("mul", g, g)))
      : op("add", sq, op("mul", g, g)));
    out.push([sqName, nextSq]);
    const scaledG = op("div", g, op("add", L.emit("sqrt", [nextSq], {})!, c(h.eps)));
    if (opt.kind === "adagrad") {
      // lr / (1 + (step - 1) lr_decay)
      const clr = h.lr_decay ? op("div", LR(), op("add", c(1), op("mul", op("sub", step!, c(1)), c(h.lr_decay)))) : LR();
      out.push([p.name, op("sub", p.node, op("mul", clr, scaledG))]);
      return out;
    }
    let dir = scaledG;
    if (h.momentum) {
      const bufName = `${train}.momentum.${p.name}`;
      dir = keep(bufName, op("add", op("mul", c(h.momentum), state(bufName, p.type)), scaledG));
      out.push([bufName, dir]);
    }
    out.push([p.name, op("sub", p.node, op("mul", LR(), dir))]);
    return out;
  }
  // adam / adamw (PyTorch): adam adds weight decay to the gradient, adamw decays the weight directly.
  let w = p.node;
  if (opt.kind === "adam" && h.weight_decay) shared = op("add", G(), op("mul", c(h.weight_decay), w));
  // torch.optim.AdamW decays by the group's current lr (a schedule's).
  if (opt.kind === "adamw" && h.weight_decay) w = op("mul", w, p.lr === undefined ? c(1 - h.lr * h.weight_decay) : op("sub", c(1), op("mul", LR(), c(h.weight_decay))));
  const mName = `${train}.m.${p.name}`, vName = `${train}.v.${p.name}`;
  const m = keep(mName, op("add", op("mul", c(h.beta1), state(mName, p.type)), times(1 - h.beta1)));
  const g = G();
  const v = keep(vName, op("add", op("mul", c(h.beta2), state(vName, p.type)), op("mul", c(1 - h.beta2), op("mul", g, g))));
  const t = step!;
  const bc1 = op("sub", c(1), L.emit("pow", [c(h.beta1), t], {})!);
  const bc2 = op("sub", c(1), L.emit("pow", [c(h.beta2), t], {})!);
  const denom = op("add", L.emit("sqrt", [op("div", v, bc2)], {})!, c(h.eps));
  out.push([mName, m], [vName, v], [p.name, op("sub", w, op("div", op("mul", LR(), op("div", m, bc1)), denom))]);
  return out;
}

/** Whether the optimizer counts steps: adam's bias correction, sgd's undampened first step, adagrad's lr_decay. */
export function countsSteps(opt: OptimizerSpec): boolean {
  return opt.kind === "adam" || opt.kind === "adamw" || (opt.kind === "adagrad" && !!opt.h.lr_decay) || (opt.kind === "sgd" && !!opt.h.momentum && !!opt.h.dampening);
}

export function stateParam(train: string, name: string, t: TensorType): ParamInfo {
  return { name, model: train, type: t, init: { kind: "zeros" }, role: "state" };
}
