// ONNX export, the writer: one IR function (pre-fusion, after autodiff and simplify) -> one ONNX ModelProto.
// Inputs keep their names and named dims, params become initializers under their qualified names, the raised
// patterns and the op table write the nodes; any op without a mapping is an error at its source line.

import { ioType, useCounts, type Graph, type IRModule, type Node } from "../../ir/graph.js";
import { KilnError } from "../../../runtime/errors.js";
import type { Tensor } from "../../../runtime/tensor.js";
import { OnnxGraphContext, exportError } from "./context.js";
import { DimUnreadable } from "../dim-expr.js";
import { ONNX_OPS, Unmappable, type NoMapping } from "./ops.js";
import { raisePatterns } from "../patterns.js";
import { ELEM_OF, encodeModel, tensor, valueInfo } from "./proto.js";
import { COMPILER_VERSION } from "../../version.js";

/** An int8 weight from `kiln quantize --out`: q [K, N] (or [N, K] when transposed), one scale per output channel. */
export interface QuantizedParam {
  q: Tensor;
  scale: Tensor;
}

export interface OnnxWeights {
  tensors: Map<string, Tensor>;
  quantized: Map<string, QuantizedParam>;
}

/** Kiln-only features a function may use: data-dependent control flow and parameter updates. */
function checkPortable(g: Graph): void {
  const guarded = g.nodes.find((n) => n.guard?.length);
  if (guarded) throw exportError(g, guarded, "it branches or loops on a run-time value (an `if` or loop whose condition is computed); ONNX graphs here are straight-line", "export a function without data-dependent control flow");
  if (g.updates?.length) {
    const first = g.nodes[g.updates[0].node];
    throw exportError(g, first, `it is a training step (it updates ${g.updates.length} params and optimizer state); ONNX models here are inference graphs`, "export the model's forward functions, or use --format torch to train elsewhere");
  }
}

/**
 * int8 matmul as Kiln's dynamic kernel computes it: each row of x quantized to u8 over its own range (ONNX
 * DynamicQuantizeLinear's arithmetic, per row rather than per tensor: QuantizeLinear with a per-row scale and
 * zero point), MatMulInteger against the int8 weight, the zero points taken off exactly in int32 as
 * zp[m] * colsum[n] (onnxruntime's MatMulInteger takes only one zero point for A), then scaled by the row's
 * scale times the weight's per-channel scale.
 */
function quantizedMatmul(cx: OnnxGraphContext, n: Node, x: string, name: string, q8: QuantizedParam, out: string): void {
  const xs = cx.g.nodes[n.inputs[0]].type.shape;
  const K = xs[xs.length - 1] as number;
  const rows = xs.length === 2 ? x : cx.tmp("Reshape", [x, cx.i64([-1, K])]);
  const f = (v: number) => cx.constant("f32", [], [v]);
  const lo = cx.tmp("Min", [cx.tmp("ReduceMin", [rows], { axes: [1], keepdims: 1 }), f(0)]);
  const hi = cx.tmp("Max", [cx.tmp("ReduceMax", [rows], { axes: [1], keepdims: 1 }), f(0)]);
  const raw = cx.tmp("Div", [cx.tmp("Sub", [hi, lo]), f(255)]);
  // An all-zero row gets scale 1 (as Kiln's rangeToQuant), not a division by zero.
  const scale = cx.tmp("Where", [cx.tmp("Equal", [raw, f(0)]), f(1), raw]);
  const zp = cx.tmp("Cast", [cx.tmp("Clip", [cx.tmp("Round", [cx.tmp("Div", [cx.tmp("Neg", [lo]), scale])]), f(0), f(255)])], { to: ELEM_OF.u8 });
  const zp1 = cx.tmp("Reshape", [zp, cx.i64([-1])]);
  const q = cx.tmp("QuantizeLinear", [rows, cx.tmp("Reshape", [scale, cx.i64([-1])]), zp1], { axis: 0 });
  const [Kw, N] = q8.q.shape;
  const colsum = new Int32Array(N);
  const qd = q8.q.data as Int8Array;
  for (let k = 0; k < Kw; k++) for (let j = 0; j < N; j++) colsum[j] += qd[k * N + j];
  const shift = cx.tmp("Mul", [cx.tmp("Cast", [zp], { to: ELEM_OF.i32 }), cx.constant("i32", [N], colsum)]);
  const acc = cx.tmp("Cast", [cx.tmp("Sub", [cx.tmp("MatMulInteger", [q, `${name}.q`]), shift])], { to: ELEM_OF.f32 });
  const y = cx.tmp("Mul", [cx.tmp("Mul", [acc, scale]), `${name}.scale`]);
  if (xs.length === 2) cx.add("Identity", [y], [out]);
  else cx.add("Reshape", [y, cx.shape(n.type.shape, true)], [out]);
}

export function writeOnnxGraph(ir: IRModule, g: Graph, w: OnnxWeights): Uint8Array {
  checkPortable(g);
  const cx = new OnnxGraphContext(g);
  const uses = useCounts(g);
  const raised = raisePatterns(g, uses);
  const covered = new Set([...raised.values()].flatMap((r) => r.covered));
  const outputName = new Map<number, string>();
  const needIdentity: { from: number; to: string }[] = [];
  for (const o of g.outputs) {
    const src = g.nodes[o.node].op;
    if (outputName.has(o.node) || src === "input" || src === "param" || uses[o.node] > 1) needIdentity.push({ from: o.node, to: o.name });
    else outputName.set(o.node, o.name);
  }
  const usedParams = new Set<string>();
  const quantUsed = new Set<string>();
  for (const n of g.nodes) {
    if (n.op === "input") {
      cx.names.set(n.id, (n.attrs as { name: string }).name);
      continue;
    }
    if (n.op === "param") {
      const name = (n.attrs as { name: string }).name;
      cx.names.set(n.id, name);
      usedParams.add(name);
      continue;
    }
    if (covered.has(n.id) && !raised.has(n.id)) continue;
    const out = outputName.get(n.id) ?? `t${n.id}`;
    const r = raised.get(n.id);
    let alias: string | void = undefined;
    try {
      if (r) r.emit(cx, r.inputs.map((i) => cx.name(i)), out);
      else if (n.op === "matmul" && g.nodes[n.inputs[1]].op === "param" && w.quantized.has((g.nodes[n.inputs[1]].attrs as { name: string }).name)) {
        const pname = (g.nodes[n.inputs[1]].attrs as { name: string }).name;
        quantUsed.add(pname);
        quantizedMatmul(cx, n, cx.name(n.inputs[0]), pname, w.quantized.get(pname)!, out);
      } else {
        const m = ONNX_OPS[n.op];
        if (typeof m !== "function") throw new Unmappable(`${n.op}: ${(m as NoMapping).unsupported}`, (m as NoMapping).hint);
        alias = (m as (cx: OnnxGraphContext, n: unknown, ins: string[], out: string) => void | string)(cx, n, n.inputs.map((i) => cx.name(i)), out);
      }
    } catch (e) {
      if (e instanceof Unmappable) throw exportError(g, n, e.message, e.hint);
      if (e instanceof DimUnreadable) throw exportError(g, n, `${n.op}: ${e.message}`, e.hint);
      throw e;
    }
    if (alias && outputName.has(n.id)) cx.add("Identity", [alias], [out]);
    cx.names.set(n.id, alias && !outputName.has(n.id) ? alias : out);
  }
  for (const { from, to } of needIdentity) cx.add("Identity", [cx.name(from)], [to]);
  const initializers = [];
  for (const p of ir.params) {
    if (!usedParams.has(p.name)) continue;
    const qp = w.quantized.get(p.name);
    if (qp) {
      if (!quantUsed.has(p.name) || usedParamOtherwise(g, p.name)) throw new KilnError(`kiln: cannot export ${g.name} to ONNX with int8 '${p.name}': it is read other than as the right operand of a matmul (x @ ${p.name.split(".").pop()})\nhint: quantize only linear-layer weights (kiln quantize does), or export the f32 weights`);
      initializers.push(tensor(`${p.name}.q`, ELEM_OF.i8, qp.q.shape, qp.q.data), tensor(`${p.name}.scale`, ELEM_OF.f32, qp.scale.shape, qp.scale.data));
      continue;
    }
    const t = w.tensors.get(p.name);
    if (!t) throw new KilnError(`kiln: no weights for '${p.name}', which ${g.name} reads`);
    initializers.push(tensor(p.name, ELEM_OF[t.dtype], t.shape, t.data));
  }
  const graph = {
    name: g.name,
    node: cx.nodes,
    initializer: [...initializers, ...cx.initializers],
    input: g.inputs.map((io) => {
      const t = ioType(g, io);
      return valueInfo(io.name, ELEM_OF[t.dtype], t.shape);
    }),
    output: g.outputs.map((o) => valueInfo(o.name, ELEM_OF[g.nodes[o.node].type.dtype], g.nodes[o.node].type.shape)),
  };
  return encodeModel({ graph, producer: "kiln", docString: `${g.name} from ${ir.source} (kiln ${COMPILER_VERSION})` });
}

/** Whether the function reads param `name` anywhere but as a matmul's right operand. */
function usedParamOtherwise(g: Graph, name: string): boolean {
  const ids = new Set(g.nodes.filter((n) => n.op === "param" && (n.attrs as { name: string }).name === name).map((n) => n.id));
  return g.nodes.some((n) => n.inputs.some((i, k) => ids.has(i) && !(n.op === "matmul" && k === 1)));
}
