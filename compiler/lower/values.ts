// Lowering stage, the values an expression lowers to: a tensor node, a weakly typed number literal (it takes
// the dtype of the tensor it meets, like JAX's weak types), a list or dtype argument of a builtin, or a poison
// value after an error (so one mistake gives one diagnostic, not a cascade).

import type { Span } from "../diagnostics.js";
import type { Dim, DType } from "../ir/types.js";
import type { ModelInfo } from "./module-scope.js";

export type Val =
  | { readonly kind: "tensor"; readonly id: number }
  | { readonly kind: "literal"; readonly value: number; readonly isInt: boolean }
  | { readonly kind: "list"; readonly items: readonly ArgVal[] }
  | { readonly kind: "dtype"; readonly dtype: DType }
  /** A dimension name of the function's signature (`B`): usable in shape lists only. */
  | { readonly kind: "dim"; readonly dim: Dim }
  /** Several results (`value_and_grad`, multi-result calls): only for `return` and `let a, b = ...`. */
  | { readonly kind: "tuple"; readonly items: Val[] }
  /** A submodule instance (`attn`, `blocks[0]`): only for calling its methods. */
  | { readonly kind: "module"; readonly info: ModelInfo }
  /** An array of submodules (`blocks`): only for indexing with a constant. */
  | { readonly kind: "modules"; readonly name: string; readonly infos: readonly ModelInfo[] }
  | { readonly kind: "error" };

/** A value with the span of the expression it came from (for diagnostics about arguments). */
export interface ArgVal {
  readonly val: Val;
  readonly span: Span;
  /** Set when the expression was a bare name: lists of names are shapes (`reshape(x, [B, 784])`). */
  readonly name?: string;
}

export const POISON: Val = { kind: "error" };

export function tensor(id: number): Val {
  return { kind: "tensor", id };
}
