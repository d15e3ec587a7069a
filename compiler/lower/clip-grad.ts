// Lowering stage, gradient clipping of train blocks: `clip_grad_norm: 1.0` scales every gradient by
// min(1, max / (global L2 norm + 1e-6)) as torch.nn.utils.clip_grad_norm_, `clip_grad_value: 0.5` clamps each element
// to [-0.5, 0.5] as clip_grad_value_. Both act on unscaled gradients (under loss scaling, after the division by
// the scale, as the torch AMP recipe's scaler.unscale_ before clipping) and before the optimizer's weight decay.

import type { Expr } from "../frontend/kiln/ast.js";
import type { DiagnosticBag } from "../diagnostics.js";
import type { Lowerer } from "./lowerer.js";

export interface ClipSpec {
  readonly kind: "norm" | "value";
  readonly max: number;
}

function literal(e: Expr): number | undefined {
  if (e.kind === "number") return e.value;
  if (e.kind === "unary" && e.operand.kind === "number") return -e.operand.value;
  return undefined;
}

/** Reads the clip entries of a train block; undefined when none is given, null after a reported error. */
export function parseClip(norm: Expr | undefined, value: Expr | undefined, diags: DiagnosticBag): ClipSpec | undefined | null {
  if (norm && value) {
    diags.error("K611", "give clip_grad_norm or clip_grad_value, not both", value.span, "clipping by value then by norm is ambiguous in order; pick one");
    return null;
  }
  const e = norm ?? value;
  if (!e) return undefined;
  const name = norm ? "clip_grad_norm" : "clip_grad_value";
  const v = literal(e);
  if (v === undefined) {
    diags.error("K304", `${name} must be a number`, e.span, `e.g. ${name}: 1.0`);
    return null;
  }
  if (!(v > 0) || !Number.isFinite(v)) {
    diags.error("K609", `${name} must be a finite number > 0, got ${v}`, e.span);
    return null;
  }
  return { kind: norm ? "norm" : "value", max: v };
}

/** The clipped gradients (same order), from unscaled gradients. */
export function clipGrads(L: Lowerer, spec: ClipSpec, grads: readonly number[]): number[] {
  const op = (o: "add" | "mul" | "div" | "minimum" | "maximum", a: number, b: number) => L.emit(o, [a, b], {})!;
  const c = (v: number, g: number) => L.constant(v, L.type(g).dtype);
  if (spec.kind === "value") return grads.map((g) => op("minimum", op("maximum", g, c(-spec.max, g)), c(spec.max, g)));
  // The squared norm in f32 whatever the gradients' dtype (torch stacks the per-param norms in f32 for f32 params).
  const squares = grads.map((g) => {
    const g32 = L.type(g).dtype === "f32" ? g : L.emit("cast", [g], { to: "f32" })!;
    return L.emit("sum", [op("mul", g32, g32)], { axes: L.type(g).shape.map((_, k) => k), keepdims: false })!;
  });
  const total = L.emit("sqrt", [squares.reduce((a, b) => op("add", a, b))], {})!;
  const coef = op("minimum", op("div", L.constant(spec.max, "f32"), op("add", total, L.constant(1e-6, "f32"))), L.constant(1, "f32"));
  return grads.map((g) => op("mul", g, L.type(g).dtype === "f32" ? coef : L.emit("cast", [coef], { to: L.type(g).dtype })!));
}
