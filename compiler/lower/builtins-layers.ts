// Lowering stage, the layers of issue 16: group_norm, instance_norm, adaptive/global average pooling, conv1d,
// conv_transpose2d, lstm_cell and gru_cell. Arguments are checked here (diagnostics at the offending argument)
// before the composites of compiler/ops/norms.ts, pooling.ts, conv-variants.ts and rnn-cells.ts build them.

import { formatType, isFloat } from "../ir/types.js";
import * as CV from "../ops/conv-variants.js";
import * as NORM from "../ops/norms.js";
import * as NP from "../ops/pooling.js";
import * as RNN from "../ops/rnn-cells.js";
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

/** A single integer at least `min` (conv1d's stride, padding, dilation); K410 below. */
function scalarArg(L: Lowerer, a: Args, name: string, dflt: number, min: number): number | undefined {
  const arg = a[name];
  if (!arg) return dflt;
  const v = intArg(L, arg);
  if (v === undefined) return undefined;
  if (v < min) {
    fail(L, arg.span, "K410", `${name} must be at least ${min}, got ${v}`);
    return undefined;
  }
  return v;
}

/** w of rank `rank` with known sizes and x's dtype; K301 / K409 at its argument otherwise. */
function kernel(L: Lowerer, a: Args, fn: string, x: number, layout: string): number[] | undefined {
  const w = tensorArg(L, a.w!);
  if (w === undefined) return undefined;
  const t = L.type(w);
  if (t.dtype !== L.type(x).dtype) fail(L, a.w!.span, "K301", `w must be ${L.type(x).dtype} like x, got ${formatType(t)}`);
  else if (t.shape.length !== layout.split(",").length || !t.shape.every((d) => typeof d === "number")) fail(L, a.w!.span, "K409", `${fn} needs w [${layout}] with known sizes, got ${formatType(t)}`);
  else return [w, ...(t.shape as number[])];
  return undefined;
}

function conv1d(L: Lowerer, a: Args): Val {
  const x = batched(L, a, "conv1d", 3);
  const stride = scalarArg(L, a, "stride", 1, 1);
  const padding = scalarArg(L, a, "padding", 0, 0);
  const dilation = scalarArg(L, a, "dilation", 1, 1);
  const groups = scalarArg(L, a, "groups", 1, 1);
  if (x === undefined || stride === undefined || padding === undefined || dilation === undefined || groups === undefined) return POISON;
  const xt = L.type(x);
  if (xt.shape.length !== 3) return fail(L, a.x!.span, "K409", `conv1d needs x [N, C, L], got ${formatType(xt)}`, "conv2d takes [N, C, H, W]");
  const k = kernel(L, a, "conv1d", x, "O, C / groups, K");
  if (!k) return POISON;
  const [w, O, Cg, K] = k;
  const C = xt.shape[1] as number, Len = xt.shape[2];
  if (C % groups !== 0 || O % groups !== 0) return fail(L, (C % groups !== 0 ? a.x! : a.w!).span, "K409", `conv1d with groups: ${groups} needs input channels (${C}) and output channels (${O}) divisible by ${groups}`);
  if (Cg !== C / groups) return fail(L, a.w!.span, "K409", `conv1d: w [${O}, ${Cg}, ${K}] expects ${Cg} input channels per group, x has ${C} channels${groups > 1 ? ` in ${groups} groups (${C / groups} each)` : ""}`, "w is [out_channels, in_channels / groups, K], as in PyTorch");
  const o = { stride, padding, dilation, groups };
  if (typeof Len === "number" && CV.conv1dOut(Len, K, o) < 1) return fail(L, a.w!.span, "K410", `conv1d: the kernel of ${K} (dilation ${dilation}) does not fit the length ${Len} with padding ${padding}`, "the output would be empty; use more padding or a smaller kernel");
  const b = a.b ? matching(L, a.b, "b", xt.dtype, [O]) : undefined;
  if (a.b && b === undefined) return POISON;
  return wrap(CV.conv1d(L, x, w, b, o));
}

function convTranspose2d(L: Lowerer, a: Args): Val {
  const fn = "conv_transpose2d";
  const x = image(L, a.x!, fn);
  const stride = pairArg(L, a.stride, "stride", [1, 1], 1);
  const padding = pairArg(L, a.padding, "padding", [0, 0], 0);
  const outputPadding = pairArg(L, a.output_padding, "output_padding", [0, 0], 0);
  const dilation = pairArg(L, a.dilation, "dilation", [1, 1], 1);
  const groups = scalarArg(L, a, "groups", 1, 1);
  if (x === undefined || !stride || !padding || !outputPadding || !dilation || groups === undefined) return POISON;
  const k = kernel(L, a, fn, x, "C_in, C_out / groups, KH, KW");
  if (!k) return POISON;
  const [w, Cin, CoutG, KH, KW] = k;
  const xt = L.type(x);
  const [, C, H, W] = xt.shape;
  if (typeof C !== "number" || typeof H !== "number" || typeof W !== "number") return fail(L, a.x!.span, "K409", `${fn} needs known C, H and W, got ${formatType(xt)}`, "N may be symbolic");
  if (Cin !== C) return fail(L, a.w!.span, "K409", `${fn}: w [${k.slice(1).join(", ")}] expects ${Cin} input channels, x has ${C}`, "w is [in_channels, out_channels / groups, KH, KW], as in PyTorch");
  if (C % groups !== 0) return fail(L, a.groups!.span, "K409", `${fn} with groups: ${groups} needs input channels (${C}) divisible by ${groups}`);
  // PyTorch's rule: the extra rows must be fewer than the stride or the dilation.
  if (outputPadding.some((p, i) => p >= Math.max(stride[i], dilation[i]))) return fail(L, a.output_padding!.span, "K410", `${fn}: output_padding [${outputPadding.join(", ")}] must be smaller than stride [${stride.join(", ")}] or dilation [${dilation.join(", ")}]`);
  const o = { stride, padding, dilation, groups, outputPadding };
  const out = [CV.convTransposeOut(H, KH, 0, o), CV.convTransposeOut(W, KW, 1, o)];
  if (out.some((d) => d < 1)) return fail(L, a.padding!.span, "K410", `${fn}: padding [${padding.join(", ")}] leaves an empty output (${out.join("x")})`);
  const b = a.b ? matching(L, a.b, "b", xt.dtype, [CoutG * groups]) : undefined;
  if (a.b && b === undefined) return POISON;
  return wrap(CV.convTranspose2d(L, x, w, b, o));
}

LAYER_BUILTINS.conv1d = { params: ["x", "w", "b?", "stride?", "padding?", "dilation?", "groups?"], run: conv1d };
LAYER_BUILTINS.conv_transpose2d = { params: ["x", "w", "b?", "stride?", "padding?", "output_padding?", "dilation?", "groups?"], run: convTranspose2d };

/** lstm_cell / gru_cell: x [B, I], h (and c) [B, H], weights [G H, I] and [G H, H], biases [G H] (optional). */
function cell(kind: "lstm" | "gru"): Builtin {
  const fn = `${kind}_cell`;
  const G = kind === "lstm" ? 4 : 3;
  return {
    params: kind === "lstm" ? ["x", "h", "c", "w_ih", "w_hh", "b_ih?", "b_hh?"] : ["x", "h", "w_ih", "w_hh", "b_ih?", "b_hh?"],
    run(L, a) {
      const x = tensorArg(L, a.x!);
      const h = tensorArg(L, a.h!);
      if (x === undefined || h === undefined) return POISON;
      const xt = L.type(x), ht = L.type(h);
      if (!isFloat(xt.dtype)) return fail(L, a.x!.span, "K301", `${fn} needs a float tensor, got ${formatType(xt)}`);
      if (xt.shape.length !== 2 || typeof xt.shape[1] !== "number") return fail(L, a.x!.span, "K409", `${fn} needs x [B, input_size] with a known input size, got ${formatType(xt)}`, "add a batch axis with reshape");
      if (ht.shape.length !== 2 || typeof ht.shape[1] !== "number") return fail(L, a.h!.span, "K409", `${fn} needs h [B, hidden_size] with a known hidden size, got ${formatType(ht)}`);
      const [B, I] = xt.shape as [typeof xt.shape[0], number];
      const H = ht.shape[1] as number;
      const hh = matching(L, a.h!, "h", xt.dtype, [B, H]);
      const c = kind === "lstm" ? matching(L, a.c!, "c", xt.dtype, [B, H]) : undefined;
      const wIh = matching(L, a.w_ih!, "w_ih", xt.dtype, [G * H, I]);
      const wHh = matching(L, a.w_hh!, "w_hh", xt.dtype, [G * H, H]);
      const bIh = a.b_ih ? matching(L, a.b_ih, "b_ih", xt.dtype, [G * H]) : undefined;
      const bHh = a.b_hh ? matching(L, a.b_hh, "b_hh", xt.dtype, [G * H]) : undefined;
      if (hh === undefined || (kind === "lstm" && c === undefined) || wIh === undefined || wHh === undefined || (a.b_ih && bIh === undefined) || (a.b_hh && bHh === undefined)) return POISON;
      const w = { wIh, wHh, bIh, bHh };
      if (kind === "gru") return wrap(RNN.gruCell(L, x, h, w));
      const r = RNN.lstmCell(L, x, h, c!, w);
      return r.h === undefined || r.c === undefined ? POISON : { kind: "tuple", items: [tensor(r.h), tensor(r.c)] };
    },
  };
}

LAYER_BUILTINS.lstm_cell = cell("lstm");
LAYER_BUILTINS.gru_cell = cell("gru");
