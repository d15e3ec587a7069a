// Builds the small ONNX models of the benchmarks (bench/systems/ort.js, bench/quant.js) in memory, through the
// exporter's schema module (onnx-proto + protobufjs: compiler/export/onnx/proto.ts), not a hand-written encoder.

import { ElemType, encodeModel, node, tensor, valueInfo } from "../dist/compiler/export/onnx/proto.js";

export const ELEM = { float32: ElemType.FLOAT, uint8: ElemType.UINT8, int8: ElemType.INT8, int32: ElemType.INT32 };

/** [name, shape] (float32) or [name, type, shape] -> a ValueInfoProto. */
function info(v) {
  const [name, type, shape] = v.length === 2 ? [v[0], "float32", v[1]] : v;
  return valueInfo(name, ELEM[type], shape);
}

/**
 * An ONNX model (opset 17) as bytes. inputs/outputs: [name, shape] (float32) or [name, type, shape]; nodes:
 * { op, inputs, outputs, attrs: { name: number | number[] } }; initializers: { name, type?, shape, data } (a
 * typed array stored as raw_data; constant weights, which ORT may prepack).
 */
export function onnxModel({ inputs, outputs, nodes, initializers = [] }) {
  return encodeModel({
    producer: "kiln-bench",
    graph: {
      name: "g",
      node: nodes.map((n, i) => node(n.op, n.inputs, n.outputs, `n${i}`, n.attrs ?? {})),
      initializer: initializers.map((t) => tensor(t.name, ELEM[t.type ?? "float32"], t.shape, t.data)),
      input: inputs.map(info),
      output: outputs.map(info),
    },
  });
}
