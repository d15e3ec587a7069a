// ONNX import, the layer ops: pooling, reductions, LayerNormalization and Clip (relu6), mapped onto Kiln's
// max_pool2d/avg_pool2d, mean/sum/max/min, layer_norm and clamp.

import { axesOf, axisOf, dtypeOf, isConst, list, num, outSize, pads2d, pair, req, shapeOf, type OpCtx, type Rule } from "./ops-util.js";
import type { Dim } from "./values.js";

function pool(fn: "max_pool2d" | "avg_pool2d"): Rule {
  return (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    if (xs.length !== 4) c.fail(`only 2-D pooling (input [N, C, H, W]) is imported, got rank ${xs.length}`);
    if (c.node.output!.length > 1 && c.node.output![1]) c.fail(`MaxPool's indices output is not supported`);
    if (c.attr<number[]>("dilations", [1, 1]).some((v) => v !== 1)) c.fail(`dilated pooling is not supported`);
    const k = c.attr<number[]>("kernel_shape", []), s = c.attr<number[]>("strides", [1, 1]), p = pads2d(c);
    if (k.length !== 2) c.fail(`kernel_shape must have 2 entries`);
    if (fn === "avg_pool2d" && p.some((v) => v) && !c.attr("count_include_pad", 0)) c.fail(`average pooling over padding that is not counted (count_include_pad=0) is not supported; Kiln counts the padding as zeros`);
    const out = [0, 1].map((a) => outSize(c, xs[2 + a]!, k[a]!, s[a]!, p[a]!, 1));
    // ceil_mode (squeezenet's pools) changes nothing when the windows tile the input exactly.
    if (c.attr("ceil_mode", 0)) {
      const ceil = [0, 1].map((a) => Math.ceil((num(c, xs[2 + a]!, "a spatial dim") + 2 * p[a]! - k[a]!) / s[a]!) + 1);
      if (ceil.some((v, a) => v !== out[a])) c.fail(`ceil_mode=1 gives [${ceil.join(", ")}] here where Kiln's rounding down gives [${out.join(", ")}]; re-export with ceil_mode=False or an input size whose windows tile exactly`);
    }
    const args = [c.expr(x), pair(k)];
    if (s[0] !== k[0] || s[1] !== k[1]) args.push(`stride: ${pair(s)}`);
    if (p.some((v) => v !== 0)) args.push(`padding: ${pair(p)}`);
    return [c.emit(`${fn}(${args.join(", ")})`, [xs[0]!, xs[1]!, ...out])];
  };
}

/** ReduceMean and friends: axes from the attribute (or, for ReduceSum from opset 13, the second input). */
function reduce(fn: string, axesInput: boolean): Rule {
  return (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    const keep = c.attr("keepdims", 1) === 1;
    const axes = axesOf(c, axesInput ? 1 : Number.NaN, xs.length) ?? (c.attr("noop_with_empty_axes", 0) ? [] : xs.map((_, k) => k));
    if (!axes.length) return [x];
    const shape = xs.flatMap((d, k): Dim[] => (axes.includes(k) ? (keep ? [1] : []) : [d]));
    const ax = axes.length === 1 ? `${axes[0]}` : list(axes);
    return [c.emit(`${fn}(${c.expr(x)}, axis: ${ax}${keep ? ", keepdims: true" : ""})`, shape, dtypeOf(x))];
  };
}

const LayerNormalization: Rule = (c) => {
  const x = req(c, 0), g = req(c, 1), b = c.input(2);
  const xs = shapeOf(x);
  if (axisOf(c, c.attr("axis", -1), xs.length) !== xs.length - 1) c.fail(`LayerNormalization over more than the last axis is not supported (Kiln's layer_norm normalises the last axis)`);
  if ((c.node.output ?? []).slice(1).some(Boolean)) c.fail(`LayerNormalization's mean and inverse-std outputs are not supported`);
  const eps = +c.attr("epsilon", 1e-5).toPrecision(6);
  const beta = b ? c.expr(b, "zeros()") : `zeros(${list([xs[xs.length - 1]!])})`;
  return [c.emit(`layer_norm(${c.expr(x)}, ${c.expr(g, "ones()")}, ${beta}${eps !== 1e-5 ? `, eps: ${eps}` : ""})`, xs)];
};

const Clip: Rule = (c) => {
  const x = req(c, 0), lo = c.input(1), hi = c.input(2);
  for (const v of [lo, hi]) if (v && !isConst(v)) c.fail(`Clip's bounds must be constants`);
  const args = [lo && `min: ${c.expr(lo)}`, hi && `max: ${c.expr(hi)}`].filter(Boolean);
  if (!args.length) return [x];
  return [c.emit(lo && hi ? `clamp(${c.expr(x)}, ${c.expr(lo)}, ${c.expr(hi)})` : `clamp(${c.expr(x)}, ${args[0]})`, shapeOf(x), dtypeOf(x))];
};

const GlobalAveragePool: Rule = (c) => {
  const x = req(c, 0);
  const xs = shapeOf(x);
  if (xs.length !== 4) c.fail(`only 2-D pooling (input [N, C, H, W]) is imported, got rank ${xs.length}`);
  return [c.emit(`mean(${c.expr(x)}, axis: [2, 3], keepdims: true)`, [xs[0]!, xs[1]!, 1, 1])];
};

const LeakyRelu: Rule = (c) => {
  const x = req(c, 0);
  const a = c.attr("alpha", 0.01), e = c.expr(x);
  return [c.emit(`where(${e} > 0, ${e}, ${+a.toPrecision(7)} * ${e})`, shapeOf(x))];
};

/** ONNX opset 20's Gelu; before that, what fuse.ts makes of the exporters' Erf (or Tanh) arithmetic. */
const Gelu: Rule = (c) => {
  const x = req(c, 0);
  const tanh = c.attr<string>("approximate", "none") === "tanh";
  return [c.emit(`gelu(${c.expr(x)}${tanh ? ", approximate: true" : ""})`, shapeOf(x))];
};

export const NN_OPS: Record<string, Rule> = {
  Gelu,
  MaxPool: pool("max_pool2d"),
  AveragePool: pool("avg_pool2d"),
  GlobalAveragePool,
  GlobalMaxPool: (c) => {
    const x = req(c, 0);
    const xs = shapeOf(x);
    return [c.emit(`max(${c.expr(x)}, axis: [2, 3], keepdims: true)`, [xs[0]!, xs[1]!, 1, 1])];
  },
  ReduceMean: reduce("mean", false),
  ReduceSum: reduce("sum", true),
  ReduceMax: reduce("max", false),
  ReduceMin: reduce("min", false),
  LayerNormalization,
  Clip,
  LeakyRelu,
};
