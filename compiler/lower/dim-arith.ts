// Lowering stage, shape arithmetic in expressions: `B * T`, `4 * B`, `B * T * 2` where a dimension name meets
// a dimension or an integer, giving a product dim for shape lists (`reshape(x, [B * T, D])`, `zeros([B * T])`);
// and a dimension used as a value (`for t in 0..T`, `cast(T, f32)`): its size as an i32 scalar.

import type { BinaryExpr } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import { mulDims } from "../ir/dim-expr.js";
import type { Dim, DType } from "../ir/types.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, type Val } from "./values.js";

export function dimArith(L: Lowerer, e: BinaryExpr, l: Val, r: Val): Val {
  const asDim = (v: Val) => (v.kind === "dim" ? v.dim : v.kind === "literal" && v.isInt && v.value >= 1 ? v.value : undefined);
  const [a, b] = [asDim(l), asDim(r)];
  if (e.op === "*" && a !== undefined && b !== undefined) return { kind: "dim", dim: mulDims(a, b) };
  L.diags.error(
    "K501", `only products of dimensions are supported ('${e.op}' with a dimension here)`, e.opSpan,
    e.op === "*" ? "multiply a dimension by another dimension or a positive integer" : "in expressions dimensions combine by * only; T - 1 comes from a slice (x[:, 1:]) or a type (f32[B, T - 1])",
  );
  return POISON;
}

/**
 * The value of dim `d` as a scalar of `dtype` (default i32): a constant when known, else sum(broadcast_to(1, [d])),
 * which the runtime computes from the call's binding (a symbolic size has no other way into the graph).
 */
export function dimValue(L: Lowerer, d: Dim, span: Span, dtype: DType = "i32"): Val {
  if (dtype === "bool") {
    L.diags.error("K301", `the dimension ${d} cannot be used as bool`, span);
    return POISON;
  }
  if (typeof d === "number") return { kind: "tensor", id: L.constant(d, dtype) };
  const ones = L.emit("broadcast_to", [L.constant(1, "i32")], { shape: [d] });
  const n = ones === undefined ? undefined : L.emit("sum", [ones], { axes: [0], keepdims: false });
  const v = n === undefined || dtype === "i32" ? n : L.emit("cast", [n], { to: dtype });
  return v === undefined ? POISON : { kind: "tensor", id: v };
}
