// Op registry, vocabulary: the primitive op names, their attributes, and what each registry entry must declare.
// The registry (registry.ts) is a mapped type over PrimOp, so an op missing a rule fails the type check.

import type { Dim, DType, Shape, TensorType } from "../ir/types.js";
import type { DiagnosticCode } from "../diagnostics.js";

export const UNARY_OPS = [
  "neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu",
  "erf", "sin", "cos", "log1p", "expm1", "sign", "floor", "ceil", "round",
] as const;
/** remainder is torch.remainder (Python's %): the result has the sign of the divisor. */
export const BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder"] as const;
export const COMPARE_OPS = ["eq", "ne", "lt", "le", "gt", "ge"] as const;
export const REDUCE_OPS = ["sum", "mean", "max", "min"] as const;
export const LAYOUT_OPS = ["reshape", "permute", "broadcast_to", "slice", "concat", "pad", "window"] as const;
/** random_uniform is a leaf too, but typed by its own rule: its values come from the runtime's seeded streams. */
/**
 * all_finite(x1, ..., xn) is a bool scalar: every element of every input is finite (the loss scaler's overflow
 * check, which fusion folds into the kernels that produce the inputs: passes/fusion-finite.ts).
 */
/**
 * all_reduce(x) is the sum of x over the data-parallel replicas (every replica gets the same bits): a host step of
 * the wasm runtime (runtime/parallel/collective.ts), the identity with one replica. Only sync_batch_norm emits it.
 */
export const OTHER_OPS = ["where", "cast", "matmul", "iota", "argmax", "stop_gradient", "random_uniform", "all_finite", "gather", "scatter_add", "all_reduce", "depthwise_conv2d", "dim_size"] as const;
/** Graph leaves: they have no kernel; the runtime fills their buffers. */
export const SOURCE_OPS = ["input", "param", "const"] as const;
/**
 * Autodiff markers that lowering creates and the `autodiff` pass replaces: `gradient(y, w)` stands for dy/dw,
 * `cotangent` is the output-gradient placeholder of a user-written backward rule. None survives the pass.
 */
export const META_OPS = ["gradient", "cotangent"] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOpName = (typeof BINARY_OPS)[number];
export type CompareOp = (typeof COMPARE_OPS)[number];
export type ReduceOp = (typeof REDUCE_OPS)[number];
export type LayoutOp = (typeof LAYOUT_OPS)[number];
export type SourceOp = (typeof SOURCE_OPS)[number];
export type MetaOp = (typeof META_OPS)[number];

export type PrimOp = UnaryOp | BinaryOpName | CompareOp | ReduceOp | LayoutOp | (typeof OTHER_OPS)[number] | SourceOp | MetaOp;

export const ALL_OPS: readonly PrimOp[] = [
  ...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, ...REDUCE_OPS, ...LAYOUT_OPS, ...OTHER_OPS, ...SOURCE_OPS, ...META_OPS,
];

type NoAttrs = Record<string, never>;
/**
 * `first` (max/min over one axis only): the gradient goes to the first extreme alone, not split between equal
 * ones (max_pool2d's rule in PyTorch). Absent when false, so other reductions keep their IR text.
 */
export interface ReduceAttrs { readonly axes: readonly number[]; readonly keepdims: boolean; readonly first?: true }

export type AttrsOf = { [P in UnaryOp | BinaryOpName | CompareOp | "where" | "matmul" | "stop_gradient" | "all_finite" | "gather" | "all_reduce"]: NoAttrs } & { [P in ReduceOp]: ReduceAttrs } & {
  cast: { readonly to: DType };
  reshape: { readonly shape: Shape };
  permute: { readonly perm: readonly number[] };
  broadcast_to: { readonly shape: Shape };
  /**
   * Elements start, start + step, ... below end along one axis (concrete, 0 <= start < end <= dim). `step`
   * is absent when 1, so unit slices keep their IR text. On a symbolic axis T, end is T minus a constant
   * ("T-1", compiler/ir/dim-expr.ts) and step is 1.
   */
  slice: { readonly axis: number; readonly start: number; readonly end: Dim; readonly step?: number };
  concat: { readonly axis: number };
  /**
   * Like XLA's lax.pad: per axis [lo, hi, interior] (all >= 0; interior = elements inserted between
   * neighbours), the new elements set to `value`. Padded axes need concrete sizes.
   */
  pad: { readonly pads: readonly (readonly [number, number, number])[]; readonly value: number };
  /**
   * im2col as a view: x [N, C, H, W] -> [N, OH, OW, C, KH, KW] with out[n, i, j, c, p, q] =
   * x[n, c, i*sh + p*dh, j*sw + q*dw]; OH = floor((H - dh*(KH-1) - 1) / sh) + 1 (likewise OW).
   */
  window: { readonly kernel: readonly [number, number]; readonly stride: readonly [number, number]; readonly dilation: readonly [number, number] };
  /**
   * depthwise_conv2d(x [N, C, H, W], w [C, 1, KH, KW]) -> [N, C, OH, OW]: out[n, c, i, j] = sum over (p, q) of
   * w[c, 0, p, q] * x[n, c, i*sh + p*dh - top, j*sw + q*dw - left], reads outside x being 0. pads are
   * [[top, bottom], [left, right]] and may be negative (the input gradient's conv crops); OH = floor((H + top +
   * bottom - dh (KH - 1) - 1) / sh) + 1. H and W are known at compile time. ops/depthwise.ts.
   */
  depthwise_conv2d: { readonly stride: readonly [number, number]; readonly dilation: readonly [number, number]; readonly pads: readonly (readonly [number, number])[] };
  /** f32 values uniform in [0, 1) that the runtime draws from seeded stream `stream` before every call. */
  random_uniform: { readonly stream: number; readonly shape: Shape };
  /**
   * The product of `dims` (symbolic ones as bound by the call) as a scalar of `dtype`: the count a mean over
   * symbolic axes divides by (its gradient), in O(1); the runtime writes it per call, like an input.
   */
  dim_size: { readonly dims: readonly Dim[]; readonly dtype: DType };
  /** n may be symbolic (a causal mask over a sequence of length T). */
  iota: { readonly n: Dim; readonly dtype: "i32" };
  /**
   * scatter_add(ids, src): out [n, rest...] = 0, then out[ids[j]] += src[j] for every index j of ids (rows whose id
   * is outside [0, n) are dropped); gather's gradient. gather(table, ids) = table[ids] along axis 0 (no attrs).
   */
  scatter_add: { readonly n: Dim };
  /** Index of the first maximum along one axis (i32); expanded into max/eq/where/min before codegen. */
  argmax: { readonly axis: number; readonly keepdims: boolean };
  input: { readonly name: string; readonly index: number };
  param: { readonly name: string };
  const: { readonly value: number };
  gradient: NoAttrs;
  /** `site` tells placeholders of different backward-rule call sites apart. */
  cotangent: { readonly site: number };
};

export type Attrs = AttrsOf[PrimOp];

/** What a shape/dtype rule returns for a bad program: becomes a diagnostic at the call site. */
export interface RuleError {
  readonly error: DiagnosticCode;
  readonly message: string;
  readonly hint?: string;
}

export type InferResult = TensorType | RuleError;

export function isRuleError(r: InferResult): r is RuleError {
  return (r as RuleError).error !== undefined;
}

/** A float64 tensor for the reference interpreter (ints and bools are stored as exact float64 values too). */
export interface RefTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/**
 * A rule slot that a later issue fills. The registry's type admits it, and `pendingRules()` lists every
 * such slot, so a missing rule is visible in the code and in the test report rather than discovered by a user.
 */
export interface Pending {
  readonly pending: string;
}

export function pending(by: string): Pending {
  return { pending: by };
}

export function isPending(x: unknown): x is Pending {
  return typeof x === "object" && x !== null && typeof (x as Pending).pending === "string";
}

/** The backend-independent part of an op: shape/dtype rule and float64 evaluator. */
export interface OpCore<P extends PrimOp> {
  readonly name: P;
  /** Number of tensor inputs; "variadic" for concat. */
  readonly arity: number | "variadic";
  /** Shape and dtype rule; symbolic dims are compared by name. */
  infer(inputs: readonly TensorType[], attrs: AttrsOf[P]): InferResult;
  /** Float64 reference semantics. `out` is the inferred type with every dim concrete. */
  evaluate(inputs: readonly RefTensor[], attrs: AttrsOf[P], out: { dtype: DType; shape: number[] }): RefTensor;
}
