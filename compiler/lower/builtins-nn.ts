// Lowering stage, neural-network builtins: conv2d, max_pool2d, avg_pool2d (with ceil_mode, count_include_pad),
// flatten, dropout and batch_norm (the later layers of issue 16 are in builtins-layers.ts).
// Arguments are checked here, with diagnostics at the offending argument, before the composites of
// compiler/ops/conv.ts build them. dropout and batch_norm follow the lowering mode (FnLowerer.training: a train
// block's step) unless a `training:` argument says otherwise, as in PyTorch's functional forms.

import { formatType, isFloat, sameShape, type Dim } from "../ir/types.js";
import type { DiagnosticCode, Span } from "../diagnostics.js";
import * as NN from "../ops/conv.js";
import * as NP from "../ops/pooling.js";
import { syncBatchNorm } from "../ops/sync-norm.js";
import { boolArg, constErr, intArg, numberArg, tensorArg, wrap, type Args, type Builtin } from "./builtin-args.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, tensor, type ArgVal, type Val } from "./values.js";

type Pair = [number, number];

export function fail(L: Lowerer, span: Span, code: DiagnosticCode, message: string, hint?: string): Val {
  L.diags.error(code, message, span, hint);
  return POISON;
}

/** An integer or a list of two (stride: 2, padding: [1, 0]), each at least `min`; reported as K410. */
export function pairArg(L: Lowerer, a: ArgVal | undefined, name: string, dflt: Pair, min: number): Pair | undefined {
  if (!a) return dflt;
  let v: (number | undefined)[];
  if (a.val.kind === "literal") v = [intArg(L, a)];
  else if (a.val.kind === "list" && a.val.items.length === 2) v = a.val.items.map((it) => intArg(L, it));
  else {
    constErr(L, a, "an integer or a list of two integers, e.g. 2 or [2, 1]");
    return undefined;
  }
  if (v.some((x) => x === undefined)) return undefined;
  const pair: Pair = v.length === 1 ? [v[0]!, v[0]!] : [v[0]!, v[1]!];
  if (pair.some((x) => x < min)) {
    fail(L, a.span, "K410", `${name} must be at least ${min}, got ${a.val.kind === "list" ? `[${pair.join(", ")}]` : pair[0]}`);
    return undefined;
  }
  return pair;
}

/** A float tensor of rank 4 ([N, C, H, W]). */
export function image(L: Lowerer, a: ArgVal, fn: string): number | undefined {
  const x = tensorArg(L, a);
  if (x === undefined) return undefined;
  const t = L.type(x);
  if (!isFloat(t.dtype)) fail(L, a.span, "K301", `${fn} needs a float tensor, got ${formatType(t)}`);
  else if (t.shape.length !== 4) fail(L, a.span, "K409", `${fn} needs x [N, C, H, W], got ${formatType(t)}`, "add a batch or channel axis with reshape");
  else return x;
  return undefined;
}

/** A tensor of `like`'s dtype with shape `shape`; K301 / K409 at its argument otherwise. */
export function matching(L: Lowerer, a: ArgVal, what: string, dtype: string, shape: readonly Dim[]): number | undefined {
  const v = tensorArg(L, a);
  if (v === undefined) return undefined;
  const t = L.type(v);
  if (t.dtype !== dtype) fail(L, a.span, "K301", `${what} must be ${dtype} like x, got ${formatType(t)}`);
  else if (!sameShape(t.shape, shape)) fail(L, a.span, "K409", `${what} must have shape [${shape.join(", ")}], got ${formatType(t)}`);
  else return v;
  return undefined;
}

function pool(kind: "max" | "avg"): Builtin {
  const fn = `${kind}_pool2d`;
  return {
    params: ["x", "kernel", "stride?", "padding?", "ceil_mode?", ...(kind === "avg" ? ["count_include_pad?"] : [])],
    run(L, a) {
      const x = image(L, a.x!, fn);
      const kernel = pairArg(L, a.kernel, "kernel", [1, 1], 1);
      const stride = kernel && pairArg(L, a.stride, "stride", kernel, 1);
      const padding = pairArg(L, a.padding, "padding", [0, 0], 0);
      const ceilMode = a.ceil_mode ? boolArg(L, a.ceil_mode) : false;
      const countIncludePad = a.count_include_pad ? boolArg(L, a.count_include_pad) : true;
      if (x === undefined || !kernel || !stride || !padding || ceilMode === undefined || countIncludePad === undefined) return POISON;
      // PyTorch's rule: a window must never lie entirely in the padding.
      if (padding.some((p, k) => p > kernel[k] / 2)) return fail(L, a.padding!.span, "K410", `${fn}: padding [${padding.join(", ")}] is more than half the kernel [${kernel.join(", ")}]`, "padding may be at most kernel / 2");
      const [, , H, W] = L.type(x).shape;
      if (typeof H === "number" && typeof W === "number") {
        const size = [H, W].map((d, k) => NP.poolOut(d, kernel[k], stride[k], padding[k], ceilMode));
        if (size.some((d) => d < 1)) return fail(L, a.kernel!.span, "K410", `${fn}: the ${kernel.join("x")} kernel does not fit the ${H}x${W} input with padding ${padding.join("x")}`, "the output would be empty; use more padding or a smaller kernel");
      }
      return wrap(NP.pool2d(L, kind, x, { kernel, stride, padding, ceilMode, countIncludePad }));
    },
  };
}

/** The call's mode: its `training:` argument, else whether a train step is being lowered. */
function trainingArg(L: Lowerer, a: Args): boolean | undefined {
  return a.training ? boolArg(L, a.training) : L.training;
}

/** The qualified name of the model param a value is (directly, or the handle a train step differentiates). */
function paramName(L: Lowerer, id: number): string | undefined {
  for (const [q, node] of L.paramOverrides) if (node === id) return q;
  const n = L.b.nodes[id];
  return n.op === "param" ? (n.attrs as { name: string }).name : undefined;
}

function batchNorm(L: Lowerer, a: Args, sync = false): Val {
  const name = sync ? "sync_batch_norm" : "batch_norm";
  const xa = a.x!;
  const x = tensorArg(L, xa);
  if (x === undefined) return POISON;
  const xt = L.type(x);
  if (!isFloat(xt.dtype)) return fail(L, xa.span, "K301", `${name} needs a float tensor, got ${formatType(xt)}`);
  if (xt.shape.length < 2 || xt.shape.length > 4) return fail(L, xa.span, "K409", `${name} needs x [N, C], [N, C, L] or [N, C, H, W], got ${formatType(xt)}`);
  const C = xt.shape[1];
  const names = ["gamma", "beta", "running_mean", "running_var"] as const;
  const vs = names.map((k) => matching(L, a[k]!, k, xt.dtype, [C]));
  const momentum = a.momentum ? numberArg(L, a.momentum) : 0.1;
  const eps = a.eps ? numberArg(L, a.eps) : 1e-5;
  const training = trainingArg(L, a);
  if (vs.some((v) => v === undefined) || momentum === undefined || eps === undefined || training === undefined) return POISON;
  if (!(momentum >= 0 && momentum <= 1)) return fail(L, a.momentum!.span, "K411", `${name} momentum must be in [0, 1], got ${momentum}`);
  if (!(eps > 0)) return fail(L, a.eps!.span, "K411", `${name} eps must be > 0, got ${eps}`);
  const [gamma, beta, rm, rv] = vs as number[];
  // Outside a train step, training: true normalises with batch statistics and leaves the running stats alone.
  if (!L.training) return wrap(NN.batchNorm(L, x, gamma, beta, rm, rv, { momentum, eps, training }).y);
  // In a train step the running stats are params that the optimizer leaves alone; this step writes them back
  // (unless training: false froze this batch_norm).
  const params: string[] = [];
  for (const [k, id] of [["running_mean", rm], ["running_var", rv]] as const) {
    const q = paramName(L, id);
    if (!training) {
      if (q !== undefined && !L.statUpdates.has(q)) L.statUpdates.set(q, undefined);
      continue;
    }
    const span = a[k]!.span;
    if (q === undefined) return fail(L, span, "K501", `in a train step, ${name}'s ${k} must be a param of the model`, `declare it, e.g. param ${k === "running_mean" ? "rm" : "rv"}: f32[${C}] = ${k === "running_mean" ? "zeros" : "ones"}(), and pass it here`);
    if (L.statUpdates.get(q) !== undefined || params.includes(q)) return fail(L, span, "K501", `param ${q} is already updated as running statistics by another batch_norm in this step`, "give each batch_norm its own running_mean and running_var");
    params.push(q);
  }
  if (!training) return wrap(NN.batchNorm(L, x, gamma, beta, rm, rv, { momentum, eps, training }).y);
  if (L.b.guards.length) return fail(L, L.span, "K501", `${name} in a train step cannot run under a run-time condition (an if, or a loop with a run-time trip count)`, "the running statistics must be updated on every step");
  // sync_batch_norm: the global batch's statistics in a data-parallel grad; elsewhere there is one replica.
  const r = sync && L.collectives ? syncBatchNorm(L, x, gamma, beta, rm, rv, { momentum, eps }) : NN.batchNorm(L, x, gamma, beta, rm, rv, { momentum, eps, training: true });
  if (r.runningMean === undefined || r.runningVar === undefined) return POISON;
  L.statUpdates.set(params[0], r.runningMean);
  L.statUpdates.set(params[1], r.runningVar);
  return wrap(r.y);
}

export const NN_BUILTINS: Record<string, Builtin> = {
  conv2d: {
    params: ["x", "w", "b?", "stride?", "padding?", "dilation?", "groups?"],
    run(L, a) {
      const x = image(L, a.x!, "conv2d");
      const stride = pairArg(L, a.stride, "stride", [1, 1], 1);
      const padding = pairArg(L, a.padding, "padding", [0, 0], 0);
      const dilation = pairArg(L, a.dilation, "dilation", [1, 1], 1);
      const groups = a.groups ? intArg(L, a.groups) : 1;
      const w = tensorArg(L, a.w!);
      if (x === undefined || w === undefined || !stride || !padding || !dilation || groups === undefined) return POISON;
      if (L.type(w).dtype !== L.type(x).dtype) return fail(L, a.w!.span, "K301", `w must be ${L.type(x).dtype} like x, got ${formatType(L.type(w))}`);
      if (groups < 1) return fail(L, a.groups!.span, "K410", `groups must be at least 1, got ${groups}`);
      const opts = { stride, padding, dilation, groups };
      const r = NN.conv2dShape(L.type(x).shape, L.type(w).shape, opts);
      if ("error" in r) return fail(L, (r.on === "x" ? a.x! : a.w!).span, r.error, r.message, r.hint);
      const b = a.b ? matching(L, a.b, "b", L.type(x).dtype, [r.out[1]]) : undefined;
      if (a.b && b === undefined) return POISON;
      return wrap(NN.conv2d(L, x, w, b, opts));
    },
  },
  max_pool2d: pool("max"),
  avg_pool2d: pool("avg"),
  flatten: {
    params: ["x"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      if (x === undefined) return POISON;
      const t = L.type(x);
      if (t.shape.length < 2) return fail(L, a.x!.span, "K403", `flatten keeps axis 0 and joins the rest; ${formatType(t)} has fewer than two axes`);
      if (t.shape.slice(1).some((d) => typeof d !== "number")) return fail(L, a.x!.span, "K409", `flatten needs known sizes after the first axis, got ${formatType(t)}`);
      return wrap(NN.flatten(L, x));
    },
  },
  dropout: {
    params: ["x", "p?", "training?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const p = a.p ? numberArg(L, a.p) : 0.5;
      const training = trainingArg(L, a);
      if (x === undefined || p === undefined || training === undefined) return POISON;
      if (!isFloat(L.type(x).dtype)) return fail(L, a.x!.span, "K301", `dropout needs a float tensor, got ${formatType(L.type(x))}`);
      if (!(p >= 0 && p < 1)) return fail(L, a.p!.span, "K411", `dropout p must be in [0, 1), got ${p}`, "p is the probability of zeroing an element");
      // In eval mode (and with p = 0) dropout is the identity, as in PyTorch.
      return !training || p === 0 ? tensor(x) : wrap(NN.dropout(L, x, p, L.streams++));
    },
  },
  batch_norm: {
    params: ["x", "gamma", "beta", "running_mean", "running_var", "momentum?", "eps?", "training?"],
    run: (L, a) => batchNorm(L, a),
  },
  // PyTorch's nn.SyncBatchNorm: in data-parallel training the statistics are the global batch's.
  sync_batch_norm: {
    params: ["x", "gamma", "beta", "running_mean", "running_var", "momentum?", "eps?", "training?"],
    run: (L, a) => batchNorm(L, a, true),
  },
};
