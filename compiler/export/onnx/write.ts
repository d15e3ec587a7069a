// ONNX export, the writer: one IR function (pre-fusion, after autodiff and simplify) -> one ONNX ModelProto.
// Inputs keep their names and named dims, params become initializers under their qualified names, the raised
// patterns and the op table write the nodes; any op without a mapping is an error at its source line.

import { ioType, useCounts, type Graph, type IRModule } from "../../ir/graph.js";
import { KilnError } from "../../../runtime/errors.js";
import type { Tensor } from "../../../runtime/tensor.js";
import { OnnxGraphContext, exportError } from "./context.js";
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

/** int8 matmul: y = (DynamicQuantizeLinear(x) ·int Wq) * (x_scale * w_scale[n]), zero points applied by MatMulInteger. */
function quantizedMatmul(cx: OnnxGraphContext, x: string, q: QuantizedParam, name: string, out: string): void {
  const [xq, xs, xz] = [cx.fresh("xq"), cx.fresh("x_scale"), cx.fresh("x_zero")];
  cx.add("DynamicQuantizeLinear", [x], [xq, xs, xz]);
  const acc = cx.tmp("MatMulInteger", [xq, `${name}.q`, xz]);
  const scale = cx.tmp("Mul", [xs, `${name}.scale`]);
  cx.add("Mul", [cx.tmp("Cast", [acc], { to: ELEM_OF.f32 }), scale], [out]);
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
        quantizedMatmul(cx, cx.name(n.inputs[0]), w.quantized.get(pname)!, pname, out);
      } else {
        const m = ONNX_OPS[n.op];
        if (typeof m !== "function") throw new Unmappable(`${n.op}: ${(m as NoMapping).unsupported}`, (m as NoMapping).hint);
        alias = (m as (cx: OnnxGraphContext, n: unknown, ins: string[], out: string) => void | string)(cx, n, n.inputs.map((i) => cx.name(i)), out);
      }
    } catch (e) {
      if (e instanceof Unmappable) throw exportError(g, n, e.message, e.hint);
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
      const transposed = qp.q.shape[0] !== p.type.shape[0];
      if (transposed) throw new KilnError(`kiln: cannot export int8 '${p.name}': its quantized layout is transposed ([N, K]); export the f32 weights instead`);
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
