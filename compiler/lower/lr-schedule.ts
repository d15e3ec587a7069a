// Lowering stage, learning-rate schedules of train blocks (`schedule: cosine(t_max: 1000)`): torch.optim.lr_scheduler's
// closed forms evaluated in the step graph from the step counter (the optimizer steps taken so far, a state param
// that checkpoints save and every data-parallel replica updates identically), so the lr needs no runtime support.

import type { CallExpr, Expr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { readNumericCall, type Hyper, type NumericCallSpec } from "./numeric-call.js";
import type { Lowerer } from "./lowerer.js";


/** Each schedule's options (undefined: required) and its range check. */
const SCHEDULES: Record<string, NumericCallSpec> = {
  // StepLR: lr * gamma ** floor(t / step_size).
  step: {
    defaults: { step_size: undefined, gamma: 0.1 },
    check: (h) => !(Number.isInteger(h.step_size) && h.step_size >= 1) ? "step_size must be an integer >= 1" : !(h.gamma > 0) ? "gamma must be > 0" : undefined,
  },
  // CosineAnnealingLR: eta_min + (lr - eta_min) (1 + cos(pi t / t_max)) / 2.
  cosine: {
    defaults: { t_max: undefined, eta_min: 0 },
    check: (h) => !(Number.isInteger(h.t_max) && h.t_max >= 1) ? "t_max must be an integer >= 1" : !(h.eta_min >= 0) ? "eta_min must be >= 0" : undefined,
  },
  // Linear warmup from start_factor * lr to lr over `warmup` steps (LinearLR), then cosine (CosineAnnealingLR) or
  // linear decay to min_lr at step `total`, held at min_lr after it.
  warmup_cosine: { defaults: { warmup: undefined, total: undefined, min_lr: 0, start_factor: 0 }, check: warmupCheck },
  warmup_linear: { defaults: { warmup: undefined, total: undefined, min_lr: 0, start_factor: 0 }, check: warmupCheck },
};

function warmupCheck(h: Hyper): string | undefined {
  if (!(Number.isInteger(h.warmup) && h.warmup >= 0)) return "warmup must be an integer >= 0";
  if (!Number.isInteger(h.total)) return "total must be an integer";
  if (!(h.total > h.warmup)) return `warmup (${h.warmup}) must be less than total (${h.total})`;
  if (!(h.min_lr >= 0)) return "min_lr must be >= 0";
  if (!(h.start_factor >= 0 && h.start_factor <= 1)) return "start_factor must be in [0, 1]";
  return undefined;
}

export interface ScheduleSpec {
  readonly kind: string;
  readonly h: Hyper;
}

/** Reads `cosine(t_max: 1000, eta_min: 0)`; every problem is a diagnostic (K609 for a value out of range). */
export function parseSchedule(e: Expr, diags: DiagnosticBag): ScheduleSpec | undefined {
  if (e.kind !== "call" || !Object.hasOwn(SCHEDULES, e.callee)) {
    diags.error("K611", "schedule must be step(...), cosine(...), warmup_cosine(...) or warmup_linear(...)", e.span, "e.g. schedule: warmup_cosine(warmup: 100, total: 2000, min_lr: 1e-5)");
    return undefined;
  }
  const call = e as CallExpr;
  const h = readNumericCall(call, SCHEDULES[call.callee], diags, { what: `schedule ${call.callee}`, arg: "option", example: 100 });
  return h && { kind: call.callee, h };
}

/**
 * The lr of the next optimizer step (an f32 scalar node) from `count`, the steps taken before it: torch's
 * scheduler.last_epoch, since PyTorch steps the scheduler after each optimizer.step().
 */
export function emitLr(L: Lowerer, s: ScheduleSpec, lr: number, count: number): number {
  const c = (v: number) => L.constant(v, "f32");
  const op = (o: "add" | "sub" | "mul" | "div" | "minimum" | "pow", a: number, b: number) => L.emit(o, [a, b], {})!;
  const { h } = s;
  // m + (lr - m) (1 + cos(pi t / T)) / 2, as 'm + k (1 + cos)' with k a constant.
  const cosine = (t: number, T: number, m: number) => op("add", c(m), op("mul", c((lr - m) / 2), op("add", c(1), L.emit("cos", [op("mul", t, c(Math.PI / T))], {})!)));
  if (s.kind === "step") return op("mul", c(lr), op("pow", c(h.gamma), L.emit("floor", [op("div", count, c(h.step_size))], {})!));
  if (s.kind === "cosine") return cosine(count, h.t_max, h.eta_min);
  const span = h.total - h.warmup;
  const t = op("sub", op("minimum", count, c(h.total)), c(h.warmup));
  const decay = s.kind === "warmup_cosine" ? cosine(t, span, h.min_lr) : op("add", c(h.min_lr), op("mul", c(lr - h.min_lr), op("sub", c(1), op("div", t, c(span)))));
  if (h.warmup === 0) return decay;
  // LinearLR(start_factor, end_factor 1, total_iters warmup): lr (start + (1 - start) t / warmup).
  const warm = op("mul", c(lr), op("add", c(h.start_factor), op("mul", count, c((1 - h.start_factor) / h.warmup))));
  return L.emit("where", [L.emit("lt", [count, c(h.warmup)], {})!, warm, decay], {})!;
}
