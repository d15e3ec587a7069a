// Export, raising (shared by the ONNX and torch writers): finds the primitive chains that Kiln's composites lower to (conv2d, pooling, softmax,
// log_softmax, layer_norm) and writes each as the one standard ONNX op it came from. A chain is raised only when
// its inner values have no other use; otherwise the op table writes the primitives one by one.

import type { Graph, Node } from "../ir/graph.js";
import type { AttrsOf } from "../ops/types.js";
import type { OnnxGraphContext } from "./onnx/context.js";

/** What a raised chain computes, for writers other than ONNX (torch): the op and its settings. */
export type RaisedOp =
  | { kind: "conv"; kernel: readonly number[]; stride: readonly number[]; dilation: readonly number[]; pads: number[]; bias: boolean }
  | { kind: "max_pool" | "avg_pool"; kernel: readonly number[]; stride: readonly number[]; pads: number[] }
  | { kind: "softmax" | "log_softmax"; axis: number }
  | { kind: "layer_norm"; gamma: boolean; beta: boolean; eps: number; size: number };

export interface Raised {
  readonly op: RaisedOp;
  /** The IR values the chain replaces (computed by it, never written on their own). */
  readonly covered: number[];
  /** The chain's inputs, as IR ids, in the order `emit` reads them. */
  readonly inputs: number[];
  readonly emit: (cx: OnnxGraphContext, ins: string[], out: string) => void;
}

type Matcher = (g: Graph, root: Node) => Raised | undefined;

function op<P extends Node["op"]>(g: Graph, id: number, name: P): Node<P> | undefined {
  const n = g.nodes[id];
  return n.op === name ? (n as Node<P>) : undefined;
}

const samePerm = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Spatial zero/-inf padding before a window: [N, C] untouched, no interior padding. */
function spatialPad(g: Graph, id: number, value: number): { x: number; pads: number[]; covered: number[] } {
  const p = op(g, id, "pad");
  if (!p || p.attrs.value !== value) return { x: id, pads: [0, 0, 0, 0], covered: [] };
  const pads = p.attrs.pads;
  if (pads.length !== 4 || pads.some((q) => q[2] !== 0) || pads[0].some((v) => v) || pads[1].some((v) => v)) return { x: id, pads: [0, 0, 0, 0], covered: [] };
  return { x: p.inputs[0], pads: [pads[2][0], pads[3][0], pads[2][1], pads[3][1]], covered: [id] };
}

/** permute[0,3,1,2](reshape[N,OH,OW,O](add?(matmul(reshape(window(pad?(x))), permute[1,0](reshape(w))), b))) -> Conv. */
const conv: Matcher = (g, root) => {
  const back = op(g, root.id, "permute");
  if (!back || !samePerm(back.attrs.perm, [0, 3, 1, 2])) return;
  const nhwc = op(g, back.inputs[0], "reshape");
  if (!nhwc) return;
  let mmId = nhwc.inputs[0];
  const covered = [back.id, nhwc.id];
  let bias: number | undefined;
  const add = op(g, mmId, "add");
  if (add) {
    bias = add.inputs[1];
    if (g.nodes[bias].type.shape.length !== 1) return;
    covered.push(add.id);
    mmId = add.inputs[0];
  }
  const mm = op(g, mmId, "matmul");
  const rows = mm && op(g, mm.inputs[0], "reshape");
  const wt = mm && op(g, mm.inputs[1], "permute");
  const win = rows && op(g, rows.inputs[0], "window");
  const wm = wt && op(g, wt.inputs[0], "reshape");
  if (!mm || !rows || !wt || !win || !wm || !samePerm(wt.attrs.perm, [1, 0])) return;
  const w = wm.inputs[0];
  const ws = g.nodes[w].type.shape;
  if (ws.length !== 4 || ws[2] !== win.attrs.kernel[0] || ws[3] !== win.attrs.kernel[1]) return;
  const pad = spatialPad(g, win.inputs[0], 0);
  covered.push(mm.id, rows.id, wt.id, win.id, wm.id, ...pad.covered);
  const a = win.attrs;
  return {
    op: { kind: "conv", kernel: a.kernel, stride: a.stride, dilation: a.dilation, pads: pad.pads, bias: bias !== undefined },
    covered,
    inputs: bias === undefined ? [pad.x, w] : [pad.x, w, bias],
    emit: (cx, ins, out) => cx.add("Conv", ins, [out], { kernel_shape: [...a.kernel], strides: [...a.stride], dilations: [...a.dilation], pads: pad.pads, group: 1 }),
  };
};

/**
 * permute[0,3,1,2](mean(window(pad?(x)), axes [4,5])) -> AveragePool (padding counted, as Kiln does);
 * permute[0,3,1,2](max(reshape(window(pad?(x)), [N,OH,OW,C,KH*KW]), axes [4])) -> MaxPool.
 */
const pool: Matcher = (g, root) => {
  const back = op(g, root.id, "permute");
  if (!back || !samePerm(back.attrs.perm, [0, 3, 1, 2])) return;
  const r = g.nodes[back.inputs[0]];
  if (r.op !== "max" && r.op !== "mean") return;
  const ra = r.attrs as AttrsOf["max"];
  if (ra.keepdims) return;
  // max_pool2d reduces the window's taps flattened to one axis (so its gradient goes to the first maximum).
  const taps = r.op === "max" && samePerm(ra.axes, [4]) ? op(g, r.inputs[0], "reshape") : undefined;
  if (!taps && !samePerm(ra.axes, [4, 5])) return;
  const win = op(g, taps ? taps.inputs[0] : r.inputs[0], "window");
  if (!win || win.attrs.dilation.some((d) => d !== 1)) return;
  if (taps && g.nodes[taps.id].type.shape.length !== 5) return;
  const pad = spatialPad(g, win.inputs[0], r.op === "max" ? -Infinity : 0);
  const a = win.attrs;
  const attrs = { kernel_shape: [...a.kernel], strides: [...a.stride], pads: pad.pads };
  return {
    op: { kind: r.op === "max" ? "max_pool" : "avg_pool", kernel: a.kernel, stride: a.stride, pads: pad.pads },
    covered: [back.id, r.id, ...(taps ? [taps.id] : []), win.id, ...pad.covered],
    inputs: [pad.x],
    emit: (cx, ins, out) => (r.op === "max" ? cx.add("MaxPool", ins, [out], attrs) : cx.add("AveragePool", ins, [out], { ...attrs, count_include_pad: 1 })),
  };
};

/** x - max(x, axis) (the shift stop_gradient may wrap): returns x and the axis. */
function shifted(g: Graph, id: number): { x: number; axis: number; covered: number[] } | undefined {
  const s = op(g, id, "sub");
  if (!s) return;
  let mId = s.inputs[1];
  const covered = [s.id];
  const sg = op(g, mId, "stop_gradient");
  if (sg) {
    covered.push(sg.id);
    mId = sg.inputs[0];
  }
  const m = op(g, mId, "max");
  if (!m || m.inputs[0] !== s.inputs[0] || m.attrs.axes.length !== 1 || !m.attrs.keepdims) return;
  covered.push(m.id);
  return { x: s.inputs[0], axis: m.attrs.axes[0], covered };
}

/** div(e, sum(e, axis)) with e = exp(x - max(x, axis)) -> Softmax. */
const softmax: Matcher = (g, root) => {
  const d = op(g, root.id, "div");
  const e = d && op(g, d.inputs[0], "exp");
  const s = d && op(g, d.inputs[1], "sum");
  if (!d || !e || !s || s.inputs[0] !== e.id || s.attrs.axes.length !== 1 || !s.attrs.keepdims) return;
  const sh = shifted(g, e.inputs[0]);
  if (!sh || sh.axis !== s.attrs.axes[0]) return;
  return { op: { kind: "softmax", axis: sh.axis }, covered: [d.id, e.id, s.id, ...sh.covered], inputs: [sh.x], emit: (cx, ins, out) => cx.add("Softmax", ins, [out], { axis: sh.axis }) };
};

/** sh - log(sum(exp(sh), axis)) with sh = x - max(x, axis) -> LogSoftmax. */
const logSoftmax: Matcher = (g, root) => {
  const d = op(g, root.id, "sub");
  const l = d && op(g, d.inputs[1], "log");
  const s = l && op(g, l.inputs[0], "sum");
  const e = s && op(g, s.inputs[0], "exp");
  if (!d || !l || !s || !e || e.inputs[0] !== d.inputs[0] || s.attrs.axes.length !== 1 || !s.attrs.keepdims) return;
  const sh = shifted(g, d.inputs[0]);
  if (!sh || sh.axis !== s.attrs.axes[0]) return;
  return { op: { kind: "log_softmax", axis: sh.axis }, covered: [d.id, l.id, s.id, e.id, ...sh.covered], inputs: [sh.x], emit: (cx, ins, out) => cx.add("LogSoftmax", ins, [out], { axis: sh.axis }) };
};

/** (x - mean(x)) * rsqrt(mean((x - mean(x))^2) + eps) [* gamma] [+ beta] over the last axis -> LayerNormalization. */
const layerNorm: Matcher = (g, root) => {
  let at = root;
  const covered: number[] = [];
  let beta: number | undefined, gamma: number | undefined;
  const lastAxis = root.type.shape.length - 1;
  const vec = (id: number) => g.nodes[id].type.shape.length === 1 && g.nodes[id].type.shape[0] === root.type.shape[lastAxis];
  if (at.op === "add" && vec(at.inputs[1])) {
    beta = at.inputs[1];
    covered.push(at.id);
    at = g.nodes[at.inputs[0]];
  }
  if (at.op === "mul" && vec(at.inputs[1]) && g.nodes[at.inputs[0]].op === "mul") {
    gamma = at.inputs[1];
    covered.push(at.id);
    at = g.nodes[at.inputs[0]];
  }
  const norm = op(g, at.id, "mul");
  const xc = norm && op(g, norm.inputs[0], "sub");
  const inv = norm && op(g, norm.inputs[1], "rsqrt");
  const mu = xc && op(g, xc.inputs[1], "mean");
  const veps = inv && op(g, inv.inputs[0], "add");
  const variance = veps && op(g, veps.inputs[0], "mean");
  const sq = variance && op(g, variance.inputs[0], "mul");
  const eps = veps && op(g, veps.inputs[1], "const");
  if (!norm || !xc || !inv || !mu || !veps || !variance || !sq || !eps) return;
  const x = xc.inputs[0];
  const last = (a: AttrsOf["mean"]) => a.axes.length === 1 && a.axes[0] === lastAxis && a.keepdims;
  if (mu.inputs[0] !== x || !last(mu.attrs) || !last(variance.attrs) || sq.inputs[0] !== xc.id || sq.inputs[1] !== xc.id) return;
  covered.push(norm.id, xc.id, inv.id, mu.id, veps.id, variance.id, sq.id, eps.id);
  const C = root.type.shape[lastAxis] as number;
  if (typeof root.type.shape[lastAxis] !== "number") return;
  return {
    op: { kind: "layer_norm", gamma: gamma !== undefined, beta: beta !== undefined, eps: eps.attrs.value, size: C },
    covered,
    inputs: [x, ...(gamma === undefined ? [] : [gamma]), ...(beta === undefined ? [] : [beta])],
    emit: (cx, ins, out) => {
      const dt = root.type.dtype;
      const scale = gamma === undefined ? cx.constant(dt, [C], new Array(C).fill(1)) : ins[1];
      const bias = beta === undefined ? [] : [ins[ins.length - 1]];
      cx.add("LayerNormalization", [ins[0], scale, ...bias], [out], { axis: -1, epsilon: eps.attrs.value });
    },
  };
};

const MATCHERS: Matcher[] = [conv, pool, softmax, logSoftmax, layerNorm];

/**
 * The chains to raise, by root id. Later roots are tried first so that a chain is raised whole before one of its
 * inner values could claim a shorter one; a chain whose inner values are used elsewhere stays primitive.
 */
export function raisePatterns(g: Graph, uses: number[]): Map<number, Raised> {
  const out = new Map<number, Raised>();
  const claimed = new Set<number>();
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    if (claimed.has(i)) continue;
    for (const m of MATCHERS) {
      const r = m(g, g.nodes[i]);
      if (!r) continue;
      const inner = new Set(r.covered.filter((c) => c !== i));
      const consumers = new Map<number, number>();
      for (const n of g.nodes) if (r.covered.includes(n.id)) for (const x of n.inputs) if (inner.has(x)) consumers.set(x, (consumers.get(x) ?? 0) + 1);
      const private_ = [...inner].every((c) => (consumers.get(c) ?? 0) === uses[c] && !claimed.has(c));
      if (!private_) continue;
      for (const c of r.covered) claimed.add(c);
      out.set(i, r);
      break;
    }
  }
  return out;
}
