// Lowering stage, math builtins of issue 16: the new elementwise primitives (erf, sin, cos, log1p, expm1, sign,
// floor, ceil, round, remainder) and the composites of compiler/ops/composites-math.ts (gelu, silu, softplus,
// logsumexp, var, std, prod, cumsum, tril, triu, arange, topk). Arguments are checked here, with diagnostics at
// the offending argument; names and defaults are PyTorch's (axis for dim).

import type { DiagnosticCode, Span } from "../diagnostics.js";
import { formatType, isFloat } from "../ir/types.js";
import * as M from "../ops/composites-math.js";
import type { UnaryOp } from "../ops/types.js";
import { axesArg, boolArg, intArg, numberArg, tensorArg, wrap, type Args, type Builtin } from "./builtin-args.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, tensor, type ArgVal, type Val } from "./values.js";

function fail(L: Lowerer, span: Span, code: DiagnosticCode, message: string, hint?: string): Val {
  L.diags.error(code, message, span, hint);
  return POISON;
}

/** A float tensor argument; K302 naming the builtin otherwise. */
function floatArg(L: Lowerer, a: ArgVal, fn: string): number | undefined {
  const x = tensorArg(L, a);
  if (x === undefined) return undefined;
  if (isFloat(L.type(x).dtype)) return x;
  fail(L, a.span, "K302", `${fn} needs a float tensor, got ${formatType(L.type(x))}`, `cast first: ${fn}(cast(x, f32))`);
  return undefined;
}

/** Axes to reduce (all when absent) whose sizes must be known at compile time (`what` needs them unrolled). */
function knownAxes(L: Lowerer, a: Args, x: number, fn: string, single: boolean): number[] | undefined {
  const rank = L.type(x).shape.length;
  const axes = a.axis ? axesArg(L, a.axis, rank, single) : [...Array(rank).keys()];
  if (axes === undefined) return undefined;
  if (single && axes.length !== 1) {
    fail(L, a.x!.span, "K403", `${fn} needs a tensor of rank >= 1`);
    return undefined;
  }
  const unknown = axes.find((ax) => typeof L.type(x).shape[ax] !== "number");
  if (unknown !== undefined) {
    fail(L, (a.axis ?? a.x)!.span, "K304", `${fn} needs a known size along axis ${unknown}, got ${formatType(L.type(x))}`, "only axes of known size can be scanned or multiplied out");
    return undefined;
  }
  return axes;
}

const unary = (op: UnaryOp): Builtin => ({ params: ["x"], run: (L, a) => L.unaryOp(op, a.x!.val) });

/** var and std: torch's correction (default 1, Bessel's), over `axis` (default all). */
function spread(fn: "var" | "std"): Builtin {
  return {
    params: ["x", "axis?", "correction?", "keepdims?"],
    run(L, a) {
      const x = floatArg(L, a.x!, fn);
      if (x === undefined) return POISON;
      const rank = L.type(x).shape.length;
      const axes = a.axis ? axesArg(L, a.axis, rank) : [...Array(rank).keys()];
      const correction = a.correction ? numberArg(L, a.correction) : 1;
      const keepdims = a.keepdims ? boolArg(L, a.keepdims) : false;
      if (axes === undefined || correction === undefined || keepdims === undefined) return POISON;
      if (!(correction >= 0)) return fail(L, a.correction!.span, "K411", `${fn} correction must be >= 0, got ${correction}`, "1 is Bessel's correction (the default), 0 the population variance");
      const v = M.variance(L, x, axes, correction, keepdims);
      return wrap(fn === "var" || v === undefined ? v : L.emit("sqrt", [v], {}));
    },
  };
}

function triangle(upper: boolean): Builtin {
  const fn = upper ? "triu" : "tril";
  return {
    params: ["x", "diagonal?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const diagonal = a.diagonal ? intArg(L, a.diagonal) : 0;
      if (x === undefined || diagonal === undefined) return POISON;
      const s = L.type(x).shape;
      if (s.length < 2) return fail(L, a.x!.span, "K403", `${fn} works on the last two axes; ${formatType(L.type(x))} has fewer than two`);
      return wrap(M.triangle(L, x, upper, diagonal));
    },
  };
}

export const MATH_BUILTINS: Record<string, Builtin> = {
  erf: unary("erf"), sin: unary("sin"), cos: unary("cos"), log1p: unary("log1p"), expm1: unary("expm1"),
  sign: unary("sign"), floor: unary("floor"), ceil: unary("ceil"), round: unary("round"),
  remainder: {
    params: ["a", "b"],
    run: (L, a) => L.emitVal("remainder", L.pair(a.a!.val, a.b!.val, a.a!.span, a.b!.span), {}),
  },
  gelu: {
    params: ["x", "approximate?"],
    run(L, a) {
      const x = floatArg(L, a.x!, "gelu");
      const approx = a.approximate ? boolArg(L, a.approximate) : false;
      return x === undefined || approx === undefined ? POISON : wrap(M.gelu(L, x, approx));
    },
  },
  silu: { params: ["x"], run: (L, a) => wrap(((x) => (x === undefined ? undefined : M.silu(L, x)))(floatArg(L, a.x!, "silu"))) },
  softplus: {
    params: ["x", "beta?", "threshold?"],
    run(L, a) {
      const x = floatArg(L, a.x!, "softplus");
      const beta = a.beta ? numberArg(L, a.beta) : 1;
      const threshold = a.threshold ? numberArg(L, a.threshold) : 20;
      if (x === undefined || beta === undefined || threshold === undefined) return POISON;
      if (!(beta > 0)) return fail(L, a.beta!.span, "K411", `softplus beta must be > 0, got ${beta}`);
      return wrap(M.softplus(L, x, beta, threshold));
    },
  },
  logsumexp: {
    params: ["x", "axis?", "keepdims?"],
    run(L, a) {
      const x = floatArg(L, a.x!, "logsumexp");
      if (x === undefined) return POISON;
      const rank = L.type(x).shape.length;
      const axes = a.axis ? axesArg(L, a.axis, rank) : [...Array(rank).keys()];
      const keepdims = a.keepdims ? boolArg(L, a.keepdims) : false;
      if (axes === undefined || keepdims === undefined) return POISON;
      return wrap(M.logsumexp(L, x, axes, keepdims));
    },
  },
  var: spread("var"),
  std: spread("std"),
  prod: {
    params: ["x", "axis?", "keepdims?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      if (L.type(x).dtype === "bool") return fail(L, a.x!.span, "K302", "prod is not defined for bool tensors", "cast(x, i32) first");
      const axes = knownAxes(L, a, x, "prod", false);
      const keepdims = a.keepdims ? boolArg(L, a.keepdims) : false;
      return axes === undefined || keepdims === undefined ? POISON : wrap(M.prod(L, x, axes, keepdims));
    },
  },
  cumsum: {
    params: ["x", "axis"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      if (L.type(x).dtype === "bool") return fail(L, a.x!.span, "K302", "cumsum is not defined for bool tensors", "cast(x, i32) first");
      const axes = knownAxes(L, a, x, "cumsum", true);
      return axes === undefined ? POISON : wrap(M.cumsum(L, x, axes[0]!));
    },
  },
  tril: triangle(false),
  triu: triangle(true),
  arange: {
    params: ["start", "end?", "step?"],
    run(L, a) {
      const last = (a.end ?? a.start)!;
      if (last.val.kind === "dim" && typeof last.val.dim === "string") {
        // arange(T), arange(k, T): positions over a symbolic length, i32 at unit step (the length is T - k).
        const start = a.end ? intArg(L, a.start!) : 0;
        const step = a.step ? intArg(L, a.step) : 1;
        if (start === undefined || step === undefined) return POISON;
        if (step !== 1 || start < 0) return fail(L, (step !== 1 ? a.step : a.start)!.span, "K411", `arange over the symbolic end ${last.val.dim} takes a non-negative integer start and step 1`, `arange(${last.val.dim}) or arange(1, ${last.val.dim})`);
        return wrap(M.arange(L, start, last.val.dim, 1, "i32"));
      }
      // A dim bound to a known size (arange(T) inlined with T = 12) is that number.
      const nums = [a.start!, a.end, a.step].map((v) => (v?.val.kind === "dim" && typeof v.val.dim === "number" ? v.val.dim : v ? numberArg(L, v) : undefined));
      if (nums[0] === undefined || (a.end && nums[1] === undefined) || (a.step && nums[2] === undefined)) return POISON;
      const [start, end] = a.end ? [nums[0], nums[1]!] : [0, nums[0]];
      const step = nums[2] ?? 1;
      if (step === 0) return fail(L, a.step!.span, "K411", "arange step must not be 0");
      const ints = [start, end, step].every(Number.isInteger);
      return wrap(M.arange(L, start, end, step, ints ? "i32" : "f32"));
    },
  },
  topk: {
    params: ["x", "k", "axis?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const k = intArg(L, a.k!);
      if (x === undefined || k === undefined) return POISON;
      if (L.type(x).dtype === "bool") return fail(L, a.x!.span, "K302", "topk is not defined for bool tensors");
      const rank = L.type(x).shape.length;
      if (rank === 0) return fail(L, a.x!.span, "K403", "topk needs a tensor of rank >= 1");
      const axis = a.axis ? axesArg(L, a.axis, rank, true)?.[0] : rank - 1;
      if (axis === undefined) return POISON;
      const n = L.type(x).shape[axis];
      if (typeof n !== "number") return fail(L, a.x!.span, "K304", `topk needs a known size along axis ${axis}, got ${formatType(L.type(x))}`);
      if (k < 1 || k > n) return fail(L, a.k!.span, "K411", `topk k must be in 1..${n} (the size of axis ${axis}), got ${k}`);
      const r = M.topk(L, x, k, axis);
      if (r.values === undefined || r.indices === undefined) return POISON;
      return { kind: "tuple", items: [tensor(r.values), tensor(r.indices)] };
    },
  },
};
