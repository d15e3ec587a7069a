// Lowering stage, shape arithmetic in expressions: `B * T`, `4 * B`, `B * T * 2` where a dimension name meets
// a dimension or an integer, giving a product dim for shape lists (`reshape(x, [B * T, D])`, `zeros([B * T])`).

import type { BinaryExpr } from "../frontend/ast.js";
import { mulDims } from "../ir/dim-expr.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, type Val } from "./values.js";

export function dimArith(L: Lowerer, e: BinaryExpr, l: Val, r: Val): Val {
  const asDim = (v: Val) => (v.kind === "dim" ? v.dim : v.kind === "literal" && v.isInt && v.value >= 1 ? v.value : undefined);
  const [a, b] = [asDim(l), asDim(r)];
  if (e.op === "*" && a !== undefined && b !== undefined) return { kind: "dim", dim: mulDims(a, b) };
  L.diags.error(
    "K501", `only products of dimensions are supported ('${e.op}' with a dimension here)`, e.opSpan,
    e.op === "*" ? "multiply a dimension by another dimension or a positive integer" : "dimension sums and differences (T - 1) are not supported yet; write a product such as B * T",
  );
  return POISON;
}
