// Lowering stage, builtin functions: argument binding (positional or keyword, with defaults) and the lowering
// of each builtin to primitives or composites. Arguments that must be compile-time constants (axes, shapes,
// dtypes, sizes) are checked here with K304.

import type { CallExpr } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import { formatType, isFloat, type Dim, type Shape } from "../ir/types.js";
import { divDims, mulDims } from "../ir/dim-expr.js";
import * as C from "../ops/composites.js";
import * as M from "../ops/composites-math.js";
import * as CE from "../ops/composites-loss.js";
import { normalizeAxis } from "../ops/shape-utils.js";
import type { UnaryOp } from "../ops/types.js";
import { sliceAttrs } from "../ops/vjp.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, tensor, type ArgVal, type Val } from "./values.js";
import { NN_BUILTINS } from "./builtins-nn.js";
import { axesArg, boolArg, constErr, intArg, intListArg, numberArg, tensorArg, wrap, type Args, type Builtin } from "./builtin-args.js";
import { MATH_BUILTINS } from "./builtins-math.js";
import { INDEX_BUILTINS } from "./builtins-index.js";
import { LAYER_BUILTINS } from "./builtins-layers.js";

interface KwArgIn {
  readonly key: string;
  readonly keySpan: Span;
  readonly arg: ArgVal;
}

/** The extra positional tensors of a variadic builtin, or undefined (K204 when there are none). */
function restTensors(L: Lowerer, name: string, call: CallExpr, rest: readonly ArgVal[]): Val[] | undefined {
  const xs = rest.map((r) => L.materialize(r.val, r.span));
  if (xs.length === 0) {
    L.diags.error("K204", `${name} needs at least one tensor`, call.span);
    return undefined;
  }
  return xs.some((x) => x.kind !== "tensor") ? undefined : xs;
}

const unary = (op: UnaryOp): Builtin => ({ params: ["x"], run: (L, a) => L.unaryOp(op, a.x!.val) });
const binary = (op: "maximum" | "minimum" | "pow"): Builtin => ({
  params: ["a", "b"],
  run: (L, a) => L.emitVal(op, L.pair(a.a!.val, a.b!.val, a.a!.span, a.b!.span), {}),
});
const reduction = (op: "sum" | "mean" | "max" | "min"): Builtin => ({
  params: op === "max" || op === "min" ? ["x", "axis?", "keepdims?", "indices?"] : ["x", "axis?", "keepdims?"],
  run(L, a) {
    const x = tensorArg(L, a.x!);
    if (x === undefined) return POISON;
    const rank = L.type(x).shape.length;
    const axes = a.axis ? axesArg(L, a.axis, rank) : [...Array(rank).keys()];
    const keepdims = a.keepdims ? boolArg(L, a.keepdims) : false;
    const indices = a.indices ? boolArg(L, a.indices) : false;
    if (axes === undefined || keepdims === undefined || indices === undefined) return POISON;
    if (indices) return extremeWithIndex(L, a, x, axes, keepdims, op === "min");
    return L.emitVal(op, [tensor(x)], { axes, keepdims });
  },
});

/** max/min(x, axis: a, indices: true): torch.max(x, dim)'s (values, indices) pair, over one axis of known size. */
function extremeWithIndex(L: Lowerer, a: Args, x: number, axes: number[], keepdims: boolean, min: boolean): Val {
  const t = L.type(x);
  if (!a.axis || axes.length !== 1) return typeErr(L, a.indices!, `indices: true needs one axis, e.g. max(x, axis: 1, indices: true)`, "K403");
  if (t.dtype === "bool") return typeErr(L, a.x!, `${min ? "min" : "max"} is not defined for bool tensors`, "K302");
  if (typeof t.shape[axes[0]] !== "number") return typeErr(L, a.x!, `indices: true needs a known size along axis ${axes[0]}, got ${formatType(t)}`, "K304");
  const r = M.extremeWithIndex(L, x, axes[0], keepdims, min);
  return r.values === undefined || r.indices === undefined ? POISON : { kind: "tuple", items: [tensor(r.values), tensor(r.indices)] };
}

const BUILTINS: Record<string, Builtin> = {
  neg: unary("neg"), exp: unary("exp"), log: unary("log"), sqrt: unary("sqrt"), rsqrt: unary("rsqrt"),
  abs: unary("abs"), tanh: unary("tanh"), sigmoid: unary("sigmoid"), relu: unary("relu"),
  maximum: binary("maximum"), minimum: binary("minimum"), pow: binary("pow"),
  stop_gradient: { params: ["x"], run: (L, a) => L.emitVal("stop_gradient", [L.materialize(a.x!.val, a.x!.span)], {}) },
  sum: reduction("sum"), mean: reduction("mean"), max: reduction("max"), min: reduction("min"),
  where: {
    params: ["cond", "a", "b"],
    run(L, a) {
      const c = L.materialize(a.cond!.val, a.cond!.span);
      const [x, y] = L.pair(a.a!.val, a.b!.val, a.a!.span, a.b!.span);
      return L.emitVal("where", [c, x, y], {});
    },
  },
  // clamp(x, lo, hi), or torch's one-sided clamp(x, min: lo) / clamp(x, max: hi) (min and max are lo and hi).
  clamp: {
    params: ["x", "lo?", "hi?", "min?", "max?"],
    run(L, a, call) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      const dt = L.type(x).dtype;
      for (const [p, q] of [["lo", "min"], ["hi", "max"]] as const) {
        if (a[p] && a[q]) {
          L.diags.error("K205", `clamp: '${q}' is another name for '${p}', given twice`, a[q]!.span);
          return POISON;
        }
      }
      const loArg = a.lo ?? a.min, hiArg = a.hi ?? a.max;
      if (!loArg && !hiArg) {
        L.diags.error("K204", "clamp needs a lower bound, an upper bound or both", call.span, "clamp(x, lo, hi), clamp(x, min: lo) or clamp(x, max: hi)");
        return POISON;
      }
      const lo = loArg ? L.materialize(loArg.val, loArg.span, dt) : undefined;
      const hi = hiArg ? L.materialize(hiArg.val, hiArg.span, dt) : undefined;
      if ((lo && lo.kind !== "tensor") || (hi && hi.kind !== "tensor")) return POISON;
      return wrap(C.clamp(L, x, (lo as { id: number } | undefined)?.id, (hi as { id: number } | undefined)?.id));
    },
  },
  cast: {
    params: ["x", "dtype"],
    run(L, a) {
      const d = a.dtype!.val;
      if (d.kind !== "dtype") return constErr(L, a.dtype!, "a dtype such as f32 or i32");
      const x = L.materialize(a.x!.val, a.x!.span, d.dtype);
      return L.emitVal("cast", [x], { to: d.dtype });
    },
  },
  matmul: { params: ["a", "b"], run: (L, a) => L.emitVal("matmul", [L.materialize(a.a!.val, a.a!.span), L.materialize(a.b!.val, a.b!.span)], {}) },
  reshape: {
    params: ["x", "shape"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const shape = x === undefined ? undefined : shapeArg(L, a.shape!, L.type(x).shape);
      return x === undefined || !shape ? POISON : L.emitVal("reshape", [tensor(x)], { shape });
    },
  },
  broadcast_to: {
    params: ["x", "shape"],
    run(L, a) {
      const shape = shapeArg(L, a.shape!);
      return shape ? L.emitVal("broadcast_to", [L.materialize(a.x!.val, a.x!.span)], { shape }) : POISON;
    },
  },
  transpose: {
    params: ["x"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      const r = L.type(x).shape.length;
      if (r < 2) {
        L.diags.error("K403", `transpose swaps the last two axes; ${formatType(L.type(x))} has fewer than two`, a.x!.span);
        return POISON;
      }
      const perm = [...Array(r).keys()];
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      return L.emitVal("permute", [tensor(x)], { perm });
    },
  },
  permute: {
    params: ["x", "perm"],
    run(L, a) {
      const perm = intListArg(L, a.perm!);
      return perm ? L.emitVal("permute", [L.materialize(a.x!.val, a.x!.span)], { perm }) : POISON;
    },
  },
  slice: {
    params: ["x", "axis", "start", "end", "step?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      const axis = axesArg(L, a.axis!, L.type(x).shape.length, true)?.[0];
      const start = intArg(L, a.start!);
      const end = intArg(L, a.end!);
      const step = a.step ? intArg(L, a.step) : 1;
      if (axis === undefined || start === undefined || end === undefined || step === undefined) return POISON;
      return L.emitVal("slice", [tensor(x)], sliceAttrs(axis, start, end, step));
    },
  },
  // True when no element of any argument is Inf or NaN; the check runs inside the kernels producing the arguments.
  all_finite: {
    params: [],
    variadic: true,
    run(L, _a, call, rest) {
      const xs = restTensors(L, "all_finite", call, rest);
      return xs ? L.emitVal("all_finite", xs, {}) : POISON;
    },
  },
  concat: {
    params: ["axis"],
    variadic: true,
    run(L, a, call, rest) {
      const xs = restTensors(L, "concat", call, rest);
      if (!xs) return POISON;
      const rank = L.type((xs[0] as { id: number }).id).shape.length;
      const axis = a.axis ? axesArg(L, a.axis, rank, true)?.[0] : 0;
      return axis === undefined ? POISON : L.emitVal("concat", xs, { axis });
    },
  },
  argmax: {
    params: ["x", "axis?", "keepdims?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      const rank = L.type(x).shape.length;
      const axis = a.axis ? axesArg(L, a.axis, rank, true)?.[0] : rank - 1;
      const keepdims = a.keepdims ? boolArg(L, a.keepdims) : false;
      if (axis === undefined || axis < 0 || keepdims === undefined) return axis !== undefined && axis < 0 ? typeErr(L, a.x!, "argmax needs a tensor of rank >= 1", "K403") : POISON;
      if (typeof L.type(x).shape[axis] !== "number") return typeErr(L, a.x!, `argmax needs a known size along axis ${axis}, got ${formatType(L.type(x))}`, "K304");
      return L.emitVal("argmax", [tensor(x)], { axis, keepdims });
    },
  },
  one_hot: {
    params: ["labels", "n"],
    run(L, a) {
      const x = tensorArg(L, a.labels!);
      const n = intArg(L, a.n!);
      if (x === undefined || n === undefined) return POISON;
      if (L.type(x).dtype !== "i32") return typeErr(L, a.labels!, `one_hot needs i32 labels, got ${formatType(L.type(x))}`);
      if (n < 1) {
        L.diags.error("K411", `one_hot needs at least one class, got n = ${n}`, a.n!.span, "n is the number of classes, e.g. one_hot(labels, 10)");
        return POISON;
      }
      L.markClassLabels(x, n);
      return wrap(C.oneHot(L, x, n));
    },
  },
  softmax: { params: ["x", "axis?"], run: (L, a) => rowwise(L, a, C.softmax) },
  log_softmax: { params: ["x", "axis?"], run: (L, a) => rowwise(L, a, C.logSoftmax) },
  cross_entropy: {
    // torch.nn.functional.cross_entropy's order: weight, ignore_index, label_smoothing (usually given by name).
    params: ["logits", "labels", "weight?", "ignore_index?", "label_smoothing?"],
    run(L, a) {
      const x = tensorArg(L, a.logits!);
      const y = tensorArg(L, a.labels!);
      if (x === undefined || y === undefined) return POISON;
      const lt = L.type(x), yt = L.type(y);
      const soft = yt.shape.length === 2 && isFloat(yt.dtype);
      if (lt.shape.length !== 2 || (soft ? yt.shape[0] !== lt.shape[0] || yt.shape[1] !== lt.shape[1] : yt.shape.length !== 1 || lt.shape[0] !== yt.shape[0])) {
        return typeErr(L, a.logits!, `cross_entropy needs logits [N, C] and labels [N] (or probabilities [N, C]), got ${formatType(lt)} and ${formatType(yt)}`, "K409");
      }
      if (!soft && yt.dtype !== "i32") return typeErr(L, a.labels!, `cross_entropy needs i32 class labels or float probabilities, got ${formatType(yt)}`);
      const classes = lt.shape[1];
      if (typeof classes !== "number") return typeErr(L, a.logits!, `cross_entropy needs a known number of classes, got ${classes}`, "K304");
      const smoothing = a.label_smoothing ? numberArg(L, a.label_smoothing) : 0;
      const ignoreIndex = a.ignore_index ? intArg(L, a.ignore_index) : undefined;
      const weight = a.weight ? tensorArg(L, a.weight) : undefined;
      if (smoothing === undefined || (a.ignore_index && ignoreIndex === undefined) || (a.weight && weight === undefined)) return POISON;
      if (!(smoothing >= 0 && smoothing <= 1)) {
        L.diags.error("K411", `cross_entropy: label_smoothing must be in [0, 1], got ${smoothing}`, a.label_smoothing!.span);
        return POISON;
      }
      if (weight !== undefined) {
        const wt = L.type(weight);
        if (wt.shape.length !== 1 || wt.shape[0] !== classes || wt.dtype !== lt.dtype) return typeErr(L, a.weight!, `cross_entropy: weight must be ${lt.dtype}[${classes}] (one per class), got ${formatType(wt)}`, "K409");
      }
      if (soft && a.ignore_index) {
        L.diags.error("K411", "cross_entropy: ignore_index needs class labels, not probabilities (as PyTorch)", a.ignore_index.span, "drop ignore_index, or give a row of zeros as that sample's target");
        return POISON;
      }
      if (soft) return wrap(CE.crossEntropySoft(L, x, y, { smoothing, ...(weight !== undefined ? { weight } : {}) }));
      L.markClassLabels(y, classes, ignoreIndex);
      if (!smoothing && ignoreIndex === undefined && weight === undefined) return wrap(C.crossEntropy(L, x, y, classes));
      return wrap(CE.crossEntropyLabels(L, x, y, classes, { smoothing, ...(ignoreIndex !== undefined ? { ignoreIndex } : {}), ...(weight !== undefined ? { weight } : {}) }));
    },
  },
  linear: {
    params: ["x", "w", "b?"],
    run(L, a) {
      const x = tensorArg(L, a.x!), w = tensorArg(L, a.w!);
      const b = a.b ? tensorArg(L, a.b) : undefined;
      if (x === undefined || w === undefined || (a.b && b === undefined)) return POISON;
      return wrap(C.linear(L, x, w, b));
    },
  },
  layer_norm: {
    params: ["x", "gamma?", "beta?", "eps?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const g = a.gamma ? tensorArg(L, a.gamma) : undefined;
      const b = a.beta ? tensorArg(L, a.beta) : undefined;
      const eps = a.eps ? numberArg(L, a.eps) : 1e-5;
      if (x === undefined || eps === undefined || (a.gamma && g === undefined) || (a.beta && b === undefined)) return POISON;
      return wrap(C.layerNorm(L, x, g, b, eps));
    },
  },
  ...NN_BUILTINS,
  ...MATH_BUILTINS,
  ...INDEX_BUILTINS,
  ...LAYER_BUILTINS,
};

export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

export function builtinNames(): string[] {
  return Object.keys(BUILTINS);
}

/** Binds positional and keyword arguments to the builtin's parameters, then lowers it. */
export function callBuiltin(L: Lowerer, call: CallExpr, args: ArgVal[], kwargs: KwArgIn[]): Val {
  const b = BUILTINS[call.callee];
  const names = b.params.map((p) => p.replace("?", ""));
  const bound: Args = {};
  const rest: ArgVal[] = [];
  args.forEach((arg, i) => {
    if (b.variadic) rest.push(arg);
    else if (i < names.length) bound[names[i]] = arg;
  });
  if (!b.variadic && args.length > names.length) {
    L.diags.error("K204", `${call.callee} takes at most ${names.length} argument(s) (${names.join(", ")}), got ${args.length}`, call.span);
    return POISON;
  }
  for (const k of kwargs) {
    if (!names.includes(k.key)) {
      L.diags.error("K205", `${call.callee} has no parameter '${k.key}'`, k.keySpan, `its parameters are ${names.join(", ")}`);
      return POISON;
    }
    if (bound[k.key]) {
      L.diags.error("K205", `${call.callee}: '${k.key}' is given twice`, k.keySpan);
      return POISON;
    }
    bound[k.key] = k.arg;
  }
  const missing = b.params.filter((p) => !p.endsWith("?") && !bound[p]);
  if (missing.length) {
    L.diags.error("K204", `${call.callee} is missing argument '${missing[0]}' (takes ${b.params.join(", ")})`, call.span);
    return POISON;
  }
  if ([...Object.values(bound), ...rest].some((a) => a!.val.kind === "error")) return POISON;
  L.span = call.span;
  return b.run(L, bound, call, rest);
}

function rowwise(L: Lowerer, a: Args, f: (L: Lowerer, x: number, axis: number) => number | undefined): Val {
  const x = tensorArg(L, a.x!);
  if (x === undefined) return POISON;
  const axis = a.axis ? axesArg(L, a.axis, L.type(x).shape.length, true)?.[0] : L.type(x).shape.length - 1;
  if (axis === undefined) return POISON;
  if (axis < 0) return typeErr(L, a.x!, "softmax needs a tensor of rank >= 1", "K403");
  return wrap(f(L, x, axis));
}

function typeErr(L: Lowerer, a: ArgVal, message: string, code: "K301" | "K302" | "K304" | "K403" | "K409" = "K301"): Val {
  L.diags.error(code, message, a.span);
  return POISON;
}


/** One axis or a list of axes, normalised (negative counts from the end), sorted and unique. */

/**
 * A shape list: integers and dimension names of this function; one -1 is inferred from `from` (the
 * source shape) when the remaining factor is a single known size or a single symbol.
 */
function shapeArg(L: Lowerer, a: ArgVal, from?: Shape): Dim[] | undefined {
  if (a.val.kind !== "list") {
    constErr(L, a, "a shape list, e.g. [B, 784]");
    return undefined;
  }
  const dims: Dim[] = [];
  let infer = -1;
  for (const it of a.val.items) {
    if (it.val.kind === "dim") {
      dims.push(it.val.dim);
      continue;
    }
    if (it.val.kind === "literal" && it.val.value === -1 && from && infer < 0) {
      infer = dims.length;
      dims.push(-1);
      continue;
    }
    if (it.val.kind === "literal" && Number.isInteger(it.val.value) && it.val.value >= 1) {
      dims.push(it.val.value);
      continue;
    }
    if (it.val.kind === "error") return undefined;
    constErr(L, it, "a positive integer or a dimension name of this function's signature");
    return undefined;
  }
  if (infer >= 0 && from) {
    const d = inferDim(from, dims.filter((_, k) => k !== infer));
    if (d === undefined) {
      L.diags.error("K404", `cannot infer the -1 dimension when reshaping ${formatType({ dtype: "f32", shape: from }).slice(3)}`, a.span, "write the dimension explicitly");
      return undefined;
    }
    dims[infer] = d;
  }
  return dims;
}

function inferDim(from: Shape, known: Dim[]): Dim | undefined {
  let rest: Dim | undefined = from.reduce<Dim>((a, d) => mulDims(a, d), 1);
  for (const d of known) if (rest !== undefined) rest = divDims(rest, d);
  return rest;
}
