// Builds the small ONNX models of the int8 benchmark (bench/quant.js) as protobuf bytes: like bench/onnx-model.js,
// plus integer element types for inputs and initializers (MatMulInteger, DynamicQuantizeLinear). No ONNX package.

import { Writer } from "./onnx-model.js";
export const ELEM = { float32: 1, uint8: 2, int8: 3, int32: 6 };

/** ValueInfoProto of a tensor: name, element type, shape. */
function valueInfo(w, field, [name, type, shape]) {
  w.msg(field, (v) => v.str(1, name).msg(2, (t) => t.msg(1, (tt) => tt.int(1, ELEM[type]).msg(2, (s) => shape.forEach((d) => s.msg(1, (dim) => dim.int(1, d)))))));
}

/**
 * An ONNX model (opset 17). inputs/outputs: [name, type, shape]; initializers: { name, type, shape, data } (a
 * typed array, stored as raw_data); nodes: { op, inputs, outputs, attrs: { name: integer } }.
 */
export function onnxModel({ inputs, outputs, nodes, initializers = [] }) {
  const w = new Writer();
  w.int(1, 8).str(2, "kiln-bench-quant");
  w.msg(7, (g) => {
    nodes.forEach((n, i) => g.msg(1, (nw) => {
      n.inputs.forEach((x) => nw.str(1, x));
      n.outputs.forEach((x) => nw.str(2, x));
      nw.str(3, `n${i}`).str(4, n.op);
      for (const [name, value] of Object.entries(n.attrs ?? {})) nw.msg(5, (a) => a.str(1, name).int(3, value).int(20, 2));
    }));
    g.str(2, "g");
    for (const t of initializers) {
      g.msg(5, (tw) => {
        t.shape.forEach((d) => tw.int(1, d));
        tw.int(2, ELEM[t.type]).str(8, t.name).bytesField(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      });
    }
    inputs.forEach((x) => valueInfo(g, 11, x));
    outputs.forEach((x) => valueInfo(g, 12, x));
  });
  w.msg(8, (o) => o.str(1, "").int(2, 17));
  return new Uint8Array(w.bytes);
}
