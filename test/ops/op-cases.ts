// The per-op case table shared by the backend suites (wasm in ops-wasm-vs-reference.test.ts, WebGPU in
// test/webgpu/): every kernel op of the registry on awkward shapes — size 1, odd sizes that are not multiples of
// the SIMD width or the workgroup size, broadcasting on each axis, ranks 0-4 — with its input generators.
import { GraphBuilder, type IRModule } from "../../compiler/ir/graph.js";
import type { DType, Shape } from "../../compiler/ir/types.js";
import { OPS } from "../../compiler/ops/registry.js";
import { expand } from "../../compiler/passes/expand.js";
import { ALL_OPS, META_OPS, SOURCE_OPS, isRuleError, type AttrsOf, type MetaOp, type PrimOp, type SourceOp } from "../../compiler/ops/types.js";
import { Rng } from "../../runtime/rng.js";
import type { Input } from "../helpers/backend.js";

/**
 * "spiky": normal values with one Inf, -Inf or NaN at a seeded position (all_finite's false case); "above-1":
 * uniform in (-1, 1), log1p's domain near its pole; "negative": the mirror of "positive".
 */
export type Gen = "normal" | "positive" | "negative" | "above-1" | "int" | "bool" | "small" | "spiky";
export interface Case {
  ins: { dtype: DType; shape: number[]; gen?: Gen }[];
  attrs?: object;
  rtol?: number;
  atol?: number;
}

const f = (...shape: number[]) => ({ dtype: "f32" as DType, shape });
const fp = (...shape: number[]) => ({ dtype: "f32" as DType, shape, gen: "positive" as Gen });
const i = (...shape: number[]) => ({ dtype: "i32" as DType, shape, gen: "int" as Gen });
const b = (...shape: number[]) => ({ dtype: "bool" as DType, shape, gen: "bool" as Gen });

const UNARY_SHAPES = [[], [1], [3], [4], [5], [17], [255], [257], [2, 3, 5], [2, 1, 3, 4]];
const BINARY_SHAPES: [number[], number[]][] = [
  [[], []], [[1], [1]], [[7], [7]], [[257], [257]], [[3, 5], [5]], [[3, 5], [3, 1]], [[1, 5], [3, 1]],
  [[2, 3, 4], [3, 1]], [[2, 1, 4], [1, 3, 1]], [[17], []], [[], [9]], [[2, 3, 4, 5], [2, 1, 4, 1]],
];

function unaryCases(gen: Gen = "normal", rtol = 2e-6): Case[] {
  return UNARY_SHAPES.map((s) => ({ ins: [{ dtype: "f32", shape: s, gen }], rtol }));
}
function binaryCases(dtype: DType, gen: Gen = "normal", gen2?: Gen): Case[] {
  return BINARY_SHAPES.map(([s, t]) => ({ ins: [{ dtype, shape: s, gen }, { dtype, shape: t, gen: gen2 ?? gen }] }));
}
const reduceCases = (dtype: DType): Case[] =>
  [
    [[5], [0]], [[257], [0]], [[3, 5], [0]], [[3, 5], [1]], [[3, 5], [0, 1]], [[2, 3, 4], [1]], [[2, 3, 4], [0, 2]],
    [[4, 1, 17], [2]], [[4, 1, 17], [1]], [[2, 3, 4, 5], [1, 3]], [[1], [0]], [[6, 7], [1]],
  ].map(([s, axes]) => ({ ins: [{ dtype, shape: s, gen: dtype === "i32" ? "int" : "normal" }], attrs: { axes, keepdims: s.length === 3 }, rtol: 1e-5, atol: 1e-5 }));

export type KernelOp = Exclude<PrimOp, SourceOp | MetaOp>;

/** Ops that run as kernels (not graph leaves, not autodiff markers): the ones every backend must cover. */
export const KERNEL_OPS: readonly KernelOp[] = ALL_OPS.filter((p): p is KernelOp => !(SOURCE_OPS as readonly string[]).includes(p) && !(META_OPS as readonly string[]).includes(p));

export const CASES: { [P in KernelOp]: Case[] } = {
  neg: [...unaryCases(), { ins: [i(5)] }],
  exp: unaryCases("normal", 3e-6),
  log: unaryCases("positive", 3e-6),
  sqrt: unaryCases("positive"),
  rsqrt: unaryCases("positive"),
  abs: [...unaryCases(), { ins: [i(17)] }],
  tanh: unaryCases("normal", 3e-6),
  sigmoid: unaryCases("normal", 3e-6),
  relu: [...unaryCases(), { ins: [i(9)] }],
  erf: unaryCases("normal", 3e-6),
  sin: unaryCases("normal", 3e-6),
  cos: unaryCases("normal", 3e-6),
  log1p: [...unaryCases("positive", 3e-6), ...[[257], [2, 3, 5]].map((s) => ({ ins: [{ dtype: "f32" as DType, shape: s, gen: "above-1" as Gen }], rtol: 3e-6 }))],
  expm1: unaryCases("normal", 3e-6),
  sign: [...unaryCases(), { ins: [i(9)] }],
  floor: [...unaryCases(), { ins: [i(9)] }],
  ceil: [...unaryCases(), { ins: [i(9)] }],
  round: [...unaryCases(), { ins: [i(9)] }],
  add: [...binaryCases("f32"), ...binaryCases("i32", "int")],
  sub: [...binaryCases("f32"), { ins: [i(3, 5), i(5)] }],
  mul: [...binaryCases("f32"), { ins: [i(3, 5), i(5)] }],
  div: [...binaryCases("f32", "normal", "positive"), { ins: [i(17), i(17)] }],
  pow: [...binaryCases("f32", "positive", "small").map((c) => ({ ...c, rtol: 2e-5 }))],
  maximum: [...binaryCases("f32"), { ins: [i(3, 5), i(5)] }],
  minimum: [...binaryCases("f32"), { ins: [i(3, 5), i(5)] }],
  // Quotients stay small here (|b| >= 0.05 or b in [-3, -0.05]): the WGSL kernel works in f32 (docs/language.md).
  remainder: [...binaryCases("f32", "normal", "positive"), { ins: [f(3, 5), { dtype: "f32", shape: [5], gen: "negative" }] }].map((c) => ({ ...c, atol: 1e-5 })),
  eq: [{ ins: [i(3, 5), i(5)] }, { ins: [f(7), f(7)] }, { ins: [b(4), b(4)] }],
  ne: [{ ins: [i(3, 5), i(3, 1)] }, { ins: [f(1, 5), f(3, 1)] }],
  lt: [{ ins: [i(3, 5), i(5)] }, { ins: [f(257), f()] }],
  le: [{ ins: [i(2, 3, 4), i(3, 1)] }, { ins: [f(17), f(17)] }],
  gt: [{ ins: [i(9), i(9)] }, { ins: [f(3, 5), f(5)] }],
  ge: [{ ins: [i(1), i(1)] }, { ins: [f(2, 1, 4), f(1, 3, 1)] }],
  where: [{ ins: [b(3, 5), f(3, 5), f(5)] }, { ins: [b(3, 1), f(1, 5), f()] }, { ins: [b(17), i(17), i(17)] }, { ins: [b(), f(4), f(4)] }],
  cast: [
    { ins: [f(17)], attrs: { to: "i32" } }, { ins: [i(17)], attrs: { to: "f32" } }, { ins: [b(9)], attrs: { to: "f32" } },
    { ins: [f(9)], attrs: { to: "bool" } }, { ins: [i(5)], attrs: { to: "u8" } }, { ins: [i(5)], attrs: { to: "i8" } }, { ins: [b(3, 5)], attrs: { to: "i32" } },
  ],
  sum: [...reduceCases("f32"), ...reduceCases("i32").slice(0, 4)],
  // An empty reduction: numpy's mean of nothing is NaN on every backend.
  mean: [...reduceCases("f32"), { ins: [f(3, 0)], attrs: { axes: [1], keepdims: false } }],
  max: [...reduceCases("f32"), ...reduceCases("i32").slice(0, 4)],
  min: [...reduceCases("f32"), ...reduceCases("i32").slice(0, 4)],
  matmul: [
    { ins: [f(1, 1), f(1, 1)] }, { ins: [f(3, 5), f(5, 7)] }, { ins: [f(17, 33), f(33, 9)] }, { ins: [f(64, 64), f(64, 64)] },
    { ins: [f(4, 784), f(784, 128)] }, { ins: [f(5), f(5, 3)] }, { ins: [f(3, 5), f(5)] }, { ins: [f(2, 3, 4), f(4, 5)] },
    { ins: [f(2, 3, 4), f(2, 4, 5)] }, { ins: [f(2, 1, 3, 4), f(1, 5, 4, 2)] }, { ins: [f(1, 255), f(255, 1)] }, { ins: [f(6, 257), f(257, 3)] },
  ].map((c) => ({ ...c, rtol: 1e-5, atol: 1e-4 })),
  reshape: [{ ins: [f(3, 5)], attrs: { shape: [15] } }, { ins: [i(2, 6)], attrs: { shape: [3, 2, 2] } }, { ins: [f()], attrs: { shape: [1, 1] } }],
  permute: [
    { ins: [f(3, 5)], attrs: { perm: [1, 0] } }, { ins: [f(2, 3, 4)], attrs: { perm: [2, 0, 1] } }, { ins: [i(2, 3, 4, 5)], attrs: { perm: [0, 3, 1, 2] } },
    { ins: [b(3, 17)], attrs: { perm: [1, 0] } }, { ins: [f(1, 7)], attrs: { perm: [1, 0] } },
  ],
  broadcast_to: [{ ins: [f(5)], attrs: { shape: [3, 5] } }, { ins: [f(3, 1)], attrs: { shape: [3, 4] } }, { ins: [f()], attrs: { shape: [2, 3] } }, { ins: [b(1, 3)], attrs: { shape: [2, 2, 3] } }],
  slice: [
    { ins: [f(10)], attrs: { axis: 0, start: 3, end: 8 } }, { ins: [f(4, 6)], attrs: { axis: 1, start: 1, end: 6 } }, { ins: [i(3, 4, 5)], attrs: { axis: 1, start: 2, end: 3 } },
    { ins: [f(10)], attrs: { axis: 0, start: 1, end: 10, step: 3 } }, { ins: [f(4, 7)], attrs: { axis: 1, start: 0, end: 7, step: 2 } }, { ins: [b(5, 3)], attrs: { axis: 0, start: 1, end: 4, step: 5 } },
  ],
  concat: [
    { ins: [f(3), f(4)], attrs: { axis: 0 } }, { ins: [f(2, 3), f(2, 5), f(2, 1)], attrs: { axis: 1 } }, { ins: [i(2, 3), i(1, 3)], attrs: { axis: 0 } },
    { ins: [f(2, 3, 4), f(2, 1, 4)], attrs: { axis: 1 } }, { ins: [b(2, 3), b(2, 2)], attrs: { axis: 1 } },
  ],
  pad: [
    { ins: [f(3)], attrs: { pads: [[2, 1, 0]], value: 0 } }, { ins: [f(2, 3)], attrs: { pads: [[0, 0, 0], [1, 2, 2]], value: -1.5 } },
    { ins: [i(2, 3, 4)], attrs: { pads: [[1, 0, 1], [0, 0, 0], [2, 2, 3]], value: 7 } }, { ins: [b(5)], attrs: { pads: [[0, 1, 1]], value: 1 } },
    { ins: [f(1, 2, 3, 3)], attrs: { pads: [[0, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 0]], value: -Infinity } }, { ins: [f(1)], attrs: { pads: [[0, 0, 4]], value: 2 } },
  ],
  window: [
    { ins: [f(1, 1, 3, 3)], attrs: { kernel: [2, 2], stride: [1, 1], dilation: [1, 1] } }, { ins: [f(2, 3, 7, 6)], attrs: { kernel: [3, 2], stride: [2, 1], dilation: [1, 2] } },
    { ins: [f(1, 2, 9, 9)], attrs: { kernel: [3, 3], stride: [3, 2], dilation: [2, 2] } }, { ins: [i(2, 1, 4, 5)], attrs: { kernel: [1, 1], stride: [2, 2], dilation: [1, 1] } },
    { ins: [f(3, 5, 1, 17)], attrs: { kernel: [1, 4], stride: [1, 5], dilation: [1, 1] } },
  ],
  // Padding (negative too: the input gradient's crop), strides 1/2/3 and dilation; widths around the SIMD middle.
  depthwise_conv2d: [
    { ins: [f(2, 5, 9, 9), f(5, 1, 3, 3)], attrs: { stride: [1, 1], dilation: [1, 1], pads: [[1, 1], [1, 1]] } },
    { ins: [f(1, 6, 11, 13), f(6, 1, 3, 3)], attrs: { stride: [2, 2], dilation: [1, 1], pads: [[1, 1], [1, 1]] } },
    { ins: [f(3, 3, 8, 10), f(3, 1, 3, 3)], attrs: { stride: [1, 1], dilation: [2, 2], pads: [[2, 1], [0, 2]] } },
    { ins: [f(2, 5, 10, 11), f(5, 1, 3, 2)], attrs: { stride: [3, 1], dilation: [1, 1], pads: [[1, 1], [0, 0]] } },
    { ins: [f(1, 4, 7, 12), f(4, 1, 3, 3)], attrs: { stride: [1, 1], dilation: [1, 1], pads: [[-1, 2], [-1, 1]] } },
  ],
  random_uniform: [{ ins: [], attrs: { stream: 0, shape: [17] } }, { ins: [], attrs: { stream: 3, shape: [2, 3, 5] } }, { ins: [], attrs: { stream: 1, shape: [] } }],
  iota: [{ ins: [], attrs: { n: 1, dtype: "i32" } }, { ins: [], attrs: { n: 17, dtype: "i32" } }],
  // The product of known dims here (symbolic ones: test/ops/mean-symbolic.test.ts); no kernel, a value the runtime writes.
  dim_size: [{ ins: [], attrs: { dims: [3, 5], dtype: "f32" } }, { ins: [], attrs: { dims: [7], dtype: "i32" } }, { ins: [], attrs: { dims: [], dtype: "f32" } }],
  // ids from -4 to 3: negative and too-large ids read zero rows (gather) or are dropped (scatter_add).
  gather: [{ ins: [f(5, 3), i(4)] }, { ins: [f(3), i(2, 3)] }, { ins: [i(4, 2), i(7)] }, { ins: [f(7, 2, 3), i(2, 2)] }, { ins: [f(4, 257), i(5)] }, { ins: [f(2, 3), i()] }],
  scatter_add: [
    { ins: [i(6), f(6, 3)], attrs: { n: 5 } }, { ins: [i(2, 3), f(2, 3)], attrs: { n: 4 } }, { ins: [i(1), f(1, 17)], attrs: { n: 2 } },
    { ins: [i(9), f(9, 2, 3)], attrs: { n: 3 } }, { ins: [i(), f(5)], attrs: { n: 4 } },
  ],
  stop_gradient: [{ ins: [f(3, 5)] }, { ins: [i(4)] }],
  // A host step; without a collective hook (one replica) a copy of x.
  all_reduce: [{ ins: [f(3, 5)] }, { ins: [f()] }, { ins: [f(257)] }],
  all_finite: [
    { ins: [f(1)] }, { ins: [f(257)] }, { ins: [{ dtype: "f32", shape: [257], gen: "spiky" }] }, { ins: [{ dtype: "f32", shape: [3], gen: "spiky" }] },
    { ins: [f(3, 5), { dtype: "f32", shape: [2, 9], gen: "spiky" }] }, { ins: [f(2, 3, 4), f(7)] }, { ins: [f()] },
  ],
  argmax: [
    { ins: [f(10)], attrs: { axis: 0, keepdims: false } }, { ins: [f(3, 17)], attrs: { axis: 1, keepdims: false } },
    { ins: [f(4, 5, 3)], attrs: { axis: 1, keepdims: true } }, { ins: [i(6, 4)], attrs: { axis: 0, keepdims: false } },
  ],
};

export function gen(rng: Rng, g: Gen | undefined, n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    if (g === "positive") out.push(Math.fround(0.05 + Math.abs(rng.normal(0, 2))));
    else if (g === "negative") out.push(Math.fround(-0.05 - Math.abs(rng.normal(0, 2))));
    else if (g === "above-1") out.push(Math.fround(rng.uniform(-0.999, 1)));
    else if (g === "int") out.push(Math.floor(rng.uniform(-4, 4)));
    else if (g === "bool") out.push(rng.uniform(0, 1) < 0.5 ? 1 : 0);
    else if (g === "small") out.push(Math.fround(rng.uniform(-3, 3)));
    else out.push(Math.fround(rng.normal(0, 2)));
  }
  if (g === "spiky" && n > 0) out[Math.floor(rng.uniform(0, n))] = [Infinity, -Infinity, NaN][Math.floor(rng.uniform(0, 3))]!;
  return out;
}

export function oneOpModule(op: PrimOp, c: Case): IRModule {
  const bld = new GraphBuilder();
  const inputs = c.ins.map((t, k) => ({ name: `x${k}`, node: bld.add("input", [], { name: `x${k}`, index: k }, { dtype: t.dtype, shape: t.shape as Shape }) }));
  const r = OPS[op].infer(c.ins.map((t) => ({ dtype: t.dtype, shape: t.shape })), (c.attrs ?? {}) as never);
  if (isRuleError(r)) throw new Error(`bad test case for ${op}: ${r.message}`);
  const out = bld.add(op, inputs.map((x) => x.node), (c.attrs ?? {}) as AttrsOf[PrimOp], r);
  // Ops without kernels of their own (argmax) are rewritten into primitives as the pipeline would.
  return expand({ source: "ops", params: [], functions: [{ name: "f", nodes: bld.nodes, inputs, outputs: [{ name: "y", node: out }], dims: [] }] });
}

/** Random inputs x0, x1, ... of a case, drawn from `rng`. */
export function caseInputs(rng: Rng, c: Case): Record<string, Input> {
  const inputs: Record<string, Input> = {};
  c.ins.forEach((t, k) => (inputs[`x${k}`] = { dtype: t.dtype, shape: t.shape, data: gen(rng, t.gen, t.shape.reduce((a, x) => a * x, 1)) }));
  return inputs;
}

/** "add(f32[3,5], f32[5])" for messages. */
export function caseName(op: string, c: Case): string {
  return `${op}(${c.ins.map((t) => `${t.dtype}[${t.shape}]`).join(", ")}${c.attrs ? " " + JSON.stringify(c.attrs) : ""})`;
}
