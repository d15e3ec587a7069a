// Lowering stage, dynamic loss scaling for train blocks (PyTorch GradScaler semantics): the loss is multiplied by
// the scale before differentiation, gradients are divided by it, and when any gradient is Inf/NaN the optimizer
// step is skipped (params and optimizer state stay bit-identical), the scale is multiplied by `backoff`; after
// `interval` clean steps in a row it is multiplied by `growth`. Scale and clean-step count are state params
// (`T.scaler.scale`, `T.scaler.good_steps`) that the runtime keeps and checkpoints save. A static scale
// (`loss_scale: 1024`) multiplies and divides alike and skips an overflowing step, but never changes; it counts
// the overflowing steps in a row (`T.scaler.skipped`) so the runtime can stop a run where every step overflows.

import type { Expr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import type { TensorType } from "../ir/types.js";
import type { Lowerer } from "./lowerer.js";

export interface LossScaleSpec {
  readonly init: number;
  readonly growth: number;
  readonly backoff: number;
  readonly interval: number;
  readonly min: number;
  /** A fixed scale: `init` forever (growth and backoff unused). */
  readonly fixed?: boolean;
}

/** GradScaler's defaults; also what a train block gets under mixed-f16 when it sets no loss_scale. */
export const DEFAULTS: LossScaleSpec = { init: 65536, growth: 2, backoff: 0.5, interval: 2000, min: 1 };

function literal(e: Expr): number | undefined {
  if (e.kind === "number") return e.value;
  if (e.kind === "unary" && e.operand.kind === "number") return -e.operand.value;
  return undefined;
}

/**
 * `dynamic(init: 65536, growth: 2, backoff: 0.5, interval: 2000, min: 1)`, or a number for a static scale; K609 for
 * values out of range.
 */
export function parseLossScale(e: Expr, diags: DiagnosticBag): LossScaleSpec | undefined {
  const fixed = literal(e);
  if (fixed !== undefined) {
    if (!(fixed > 0 && Number.isFinite(fixed))) {
      diags.error("K609", `loss_scale: a static scale must be a finite number > 0, got ${fixed}`, e.span, "e.g. loss_scale: 1024");
      return undefined;
    }
    return { init: fixed, growth: 1, backoff: 1, interval: 1, min: fixed, fixed: true };
  }
  if (e.kind !== "call" || e.callee !== "dynamic" || e.args.length) {
    diags.error("K611", "loss_scale must be a number (a static scale) or dynamic(init: ..., growth: ..., backoff: ..., interval: ..., min: ...)", e.span);
    return undefined;
  }
  const spec: Record<string, number> = { ...(DEFAULTS as unknown as Record<string, number>) };
  for (const kw of e.kwargs) {
    if (!(kw.name in DEFAULTS)) {
      diags.error("K205", `dynamic loss scaling has no option '${kw.name}'`, kw.span, `options: ${Object.keys(DEFAULTS).join(", ")}`);
      return undefined;
    }
    const v = literal(kw.value);
    if (v === undefined) {
      diags.error("K304", `${kw.name} must be a number`, kw.value.span);
      return undefined;
    }
    spec[kw.name] = v;
  }
  const s = spec as unknown as LossScaleSpec;
  const bad = !(s.init > 0) ? "init must be > 0" : !(s.growth > 1) ? "growth must be > 1" : !(s.backoff > 0 && s.backoff < 1) ? "backoff must be in (0, 1)"
    : !(Number.isInteger(s.interval) && s.interval >= 1) ? "interval must be an integer >= 1" : !(s.min > 0 && s.min <= s.init) ? "min must be in (0, init]" : undefined;
  if (bad) {
    diags.error("K609", `loss_scale: ${bad}`, e.span);
    return undefined;
  }
  return s;
}

export interface Scaler {
  /** The node to differentiate instead of the loss (absent when no loss was given: a data-parallel apply). */
  readonly scaledLoss: number | undefined;
  /** The scale (a state param node): the optimizer divides each use of a scaled gradient by it. */
  readonly scale: number;
  /** A gradient of the scaled loss, divided back by the scale. */
  unscale(g: number): number;
  /** "All gradients finite": the bool scalar every update is guarded with. */
  check(grads: readonly number[]): number | undefined;
  /** `next` if the step is kept (`ok`), else the state's old value: for the optimizer's state, before it is read. */
  keep(ok: number, next: number, old: number): number;
  /**
   * Guards every update not already kept with `ok` (the old value is kept otherwise) and appends the scaler's
   * own state updates.
   */
  finish(ok: number | undefined, updates: { param: string; node: number }[], stateValue: (param: string) => number, kept: ReadonlySet<number>): void;
}

export function makeScaler(L: Lowerer, spec: LossScaleSpec, train: string, loss: number | undefined, stateNode: (name: string, t: TensorType) => number, initScale: (name: string, v: number) => void): Scaler {
  const f32 = (v: number) => L.constant(v, "f32");
  const op = (o: "add" | "mul" | "div" | "sub", a: number, b: number) => L.emit(o, [a, b], {})!;
  const scaleName = `${train}.scaler.scale`, goodName = `${train}.scaler.good_steps`;
  const scale = stateNode(scaleName, { dtype: "f32", shape: [] });
  initScale(scaleName, spec.init);
  const good = stateNode(goodName, { dtype: "f32", shape: [] });
  // Never updated: lets the runtime recognise a scale that has collapsed to its floor.
  const minName = `${train}.scaler.min`;
  stateNode(minName, { dtype: "f32", shape: [] });
  initScale(minName, spec.min);
  const skippedName = `${train}.scaler.skipped`;
  const skipped = spec.fixed ? stateNode(skippedName, { dtype: "f32", shape: [] }) : undefined;
  return {
    scaledLoss: loss === undefined ? undefined : op("mul", loss, scale),
    scale,
    unscale: (g) => op("div", g, scale),
    // One all_finite over every gradient: fusion makes the kernels producing them clear its flag as they store
    // (passes/fusion-finite.ts), so detecting an overflow reads no gradient memory of its own.
    check: (grads) => (grads.length ? L.emit("all_finite", [...grads], {}) : undefined),
    keep: (ok, next, old) => L.emit("where", [ok, next, old], {})!,
    finish(ok, updates, stateValue, kept) {
      if (ok === undefined) return;
      for (const u of updates) if (!kept.has(u.node)) u.node = L.emit("where", [ok, u.node, stateValue(u.param)], {})!;
      if (skipped !== undefined) {
        updates.push({ param: goodName, node: L.emit("where", [ok, op("add", good, f32(1)), f32(0)], {})! });
        updates.push({ param: skippedName, node: L.emit("where", [ok, f32(0), op("add", skipped, f32(1))], {})! });
        return;
      }
      const good1 = op("add", good, f32(1));
      const grow = L.emit("ge", [good1, f32(spec.interval)], {})!;
      const grown = L.emit("where", [grow, op("mul", scale, f32(spec.growth)), scale], {})!;
      const shrunk = L.emit("maximum", [op("mul", scale, f32(spec.backoff)), f32(spec.min)], {})!;
      updates.push({ param: scaleName, node: L.emit("where", [ok, grown, shrunk], {})! });
      updates.push({ param: goodName, node: L.emit("where", [ok, L.emit("where", [grow, f32(0), good1], {})!, f32(0)], {})! });
    },
  };
}
