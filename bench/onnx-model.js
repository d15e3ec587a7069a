// Builds small ONNX models in memory for the onnxruntime-web benchmarks: a minimal protobuf writer for the
// ModelProto fields the graphs below need (no ONNX package is installed, and these few fields are stable).

const enc = new TextEncoder();

/** Protobuf wire writer: varints, length-delimited fields, fixed32 floats. */
/** Protobuf writer shared by the ONNX model builders (this file and bench/quant-onnx.js). */
export class Writer {
  constructor() {
    this.bytes = [];
  }
  varint(n) {
    // int64 fields: negative values are written as 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, BigInt(n));
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      this.bytes.push(b);
    } while (v > 0n);
    return this;
  }
  key(field, wire) {
    return this.varint((field << 3) | wire);
  }
  int(field, n) {
    return this.key(field, 0).varint(n);
  }
  float(field, x) {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    this.key(field, 5);
    this.bytes.push(...b);
    return this;
  }
  bytesField(field, data) {
    this.key(field, 2).varint(data.length);
    for (let i = 0; i < data.length; i++) this.bytes.push(data[i]);
    return this;
  }
  str(field, s) {
    return this.bytesField(field, enc.encode(s));
  }
  msg(field, build) {
    const w = new Writer();
    build(w);
    return this.bytesField(field, w.bytes);
  }
}

const FLOAT = 1;

/** A ValueInfoProto: float tensor `name` of `shape`. */
function valueInfo(w, field, name, shape) {
  w.msg(field, (v) =>
    v.str(1, name).msg(2, (t) =>
      t.msg(1, (tt) => tt.int(1, FLOAT).msg(2, (s) => shape.forEach((d) => s.msg(1, (dim) => dim.int(1, d))))),
    ),
  );
}

/**
 * An ONNX model (opset 17) as bytes. `nodes`: { op, inputs, outputs, attrs: { name: number | number[] } };
 * `initializers`: { name, shape, data: Float32Array } (constant weights, which ORT may prepack).
 */
export function onnxModel({ inputs, outputs, nodes, initializers = [] }) {
  const w = new Writer();
  w.int(1, 8); // ir_version
  w.str(2, "kiln-bench");
  w.msg(7, (g) => {
    nodes.forEach((n, i) =>
      g.msg(1, (nw) => {
        n.inputs.forEach((x) => nw.str(1, x));
        n.outputs.forEach((x) => nw.str(2, x));
        nw.str(3, `n${i}`).str(4, n.op);
        for (const [name, value] of Object.entries(n.attrs ?? {})) {
          nw.msg(5, (a) => {
            a.str(1, name);
            if (Array.isArray(value)) {
              value.forEach((x) => a.int(8, x));
              a.int(20, 7); // INTS
            } else if (Number.isInteger(value)) a.int(3, value).int(20, 2); // INT
            else a.float(2, value).int(20, 1); // FLOAT
          });
        }
      }),
    );
    g.str(2, "g");
    for (const t of initializers) {
      g.msg(5, (tw) => {
        t.shape.forEach((d) => tw.int(1, d));
        tw.int(2, FLOAT).str(8, t.name).bytesField(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      });
    }
    inputs.forEach(([name, shape]) => valueInfo(g, 11, name, shape));
    outputs.forEach(([name, shape]) => valueInfo(g, 12, name, shape));
  });
  w.msg(8, (o) => o.str(1, "").int(2, 17)); // opset_import
  return new Uint8Array(w.bytes);
}
