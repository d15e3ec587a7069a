// Lowering stage, the layers of issue 16: group_norm, instance_norm, adaptive/global average pooling, conv1d,
// conv_transpose2d, lstm_cell and gru_cell. Arguments are checked here (diagnostics at the offending argument)
// before the composites of compiler/ops/norms.ts, pooling.ts, conv-variants.ts and rnn-cells.ts build them.

import { formatType, isFloat } from "../ir/types.js";
import * as NORM from "../ops/norms.js";
import * as NP from "../ops/pooling.js";
import { intArg, numberArg, tensorArg, wrap, type Args, type Builtin } from "./builtin-args.js";
import { fail, image, matching, pairArg } from "./builtins-nn.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, tensor, type Val } from "./values.js";

/** A float tensor of rank at least `minRank` ([N, C, ...]); K301 / K409 at its argument otherwise. */
function batched(L: Lowerer, a: Args, fn: string, minRank: number): number | undefined {
  const x = tensorArg(L, a.x!);
  if (x === undefined) return undefined;
  const t = L.type(x);
  if (!isFloat(t.dtype)) fail(L, a.x!.span, "K301", `${fn} needs a float tensor, got ${formatType(t)}`);
  else if (t.shape.length < minRank) fail(L, a.x!.span, "K409", `${fn} needs x [N, C${minRank > 2 ? ", ..." : ""}]${minRank > 2 ? " with at least one spatial axis" : ""}, got ${formatType(t)}`);
  else if (typeof t.shape[1] !== "number") fail(L, a.x!.span, "K409", `${fn} needs a known channel count, got ${formatType(t)}`);
  else return x;
  return undefined;
}

/** eps (default 1e-5, > 0) and the optional per-channel gamma and beta ([C], x's dtype). */
function normArgs(L: Lowerer, a: Args, fn: string, x: number) {
  const t = L.type(x);
  const C = t.shape[1];
  const gamma = a.gamma ? matching(L, a.gamma, "gamma", t.dtype, [C]) : undefined;
  const beta = a.beta ? matching(L, a.beta, "beta", t.dtype, [C]) : undefined;
  const eps = a.eps ? numberArg(L, a.eps) : 1e-5;
  if ((a.gamma && gamma === undefined) || (a.beta && beta === undefined) || eps === undefined) return undefined;
  if (!(eps > 0)) {
    fail(L, a.eps!.span, "K411", `${fn} eps must be > 0, got ${eps}`);
    return undefined;
  }
  return { gamma, beta, eps };
}

function groupNorm(L: Lowerer, a: Args): Val {
  const x = batched(L, a, "group_norm", 2);
  const groups = intArg(L, a.groups!);
  if (x === undefined || groups === undefined) return POISON;
  const t = L.type(x);
  const C = t.shape[1] as number;
  if (groups < 1) return fail(L, a.groups!.span, "K410", `group_norm groups must be at least 1, got ${groups}`);
  if (C % groups !== 0) return fail(L, a.groups!.span, "K409", `group_norm: ${C} channels do not split into ${groups} groups`, "groups must divide the channel count (axis 1 of x)");
  if (t.shape.slice(2).some((d) => typeof d !== "number")) return fail(L, a.x!.span, "K409", `group_norm needs known sizes after the batch axis, got ${formatType(t)}`);
  const o = normArgs(L, a, "group_norm", x);
  return o ? wrap(NORM.groupNorm(L, x, groups, o.gamma, o.beta, o.eps)) : POISON;
}

function instanceNorm(L: Lowerer, a: Args): Val {
  const x = batched(L, a, "instance_norm", 3);
  if (x === undefined) return POISON;
  const t = L.type(x);
  const spatial = t.shape.slice(2);
  // PyTorch refuses one spatial element: every output would be beta.
  if (spatial.every((d) => d === 1)) return fail(L, a.x!.span, "K409", `instance_norm needs more than one spatial element per channel, got ${formatType(t)}`);
  const o = normArgs(L, a, "instance_norm", x);
  return o ? wrap(NORM.instanceNorm(L, x, o.gamma, o.beta, o.eps)) : POISON;
}

function adaptiveAvgPool(L: Lowerer, a: Args): Val {
  const x = image(L, a.x!, "adaptive_avg_pool2d");
  const size = pairArg(L, a.output_size, "output_size", [1, 1], 1);
  if (x === undefined || !size) return POISON;
  const t = L.type(x);
  const [, , H, W] = t.shape;
  if (size[0] === 1 && size[1] === 1) return wrap(NP.adaptiveAvgPool2d(L, x, size));
  if (typeof H !== "number" || typeof W !== "number") return fail(L, a.x!.span, "K409", `adaptive_avg_pool2d to [${size.join(", ")}] needs known H and W, got ${formatType(t)}`, "output_size 1 (global pooling) works on symbolic sizes");
  return wrap(NP.adaptiveAvgPool2d(L, x, size));
}

export const LAYER_BUILTINS: Record<string, Builtin> = {
  group_norm: { params: ["x", "groups", "gamma?", "beta?", "eps?"], run: groupNorm },
  instance_norm: { params: ["x", "gamma?", "beta?", "eps?"], run: instanceNorm },
  adaptive_avg_pool2d: { params: ["x", "output_size"], run: adaptiveAvgPool },
  global_avg_pool2d: {
    params: ["x"],
    run(L, a) {
      const x = image(L, a.x!, "global_avg_pool2d");
      return x === undefined ? POISON : L.emitVal("mean", [tensor(x)], { axes: [2, 3], keepdims: false });
    },
  },
};
