// Export/import, ONNX schema access: the one place that loads the ONNX protobuf schema (onnx-proto, compiled for
// protobufjs) and builds or reads its messages. The exporter, the bench models and an importer share it.

import { createRequire } from "node:module";
import type { onnx as OnnxNs } from "onnx-proto";

// onnx-proto is CommonJS; require keeps its namespace object intact under NodeNext.
const { onnx } = createRequire(import.meta.url)("onnx-proto") as { onnx: typeof OnnxNs };
export { onnx };
export type { OnnxNs };

/** The opset the exporter writes: 17 has LayerNormalization and is the newest Debian's python3-onnx (1.12) checks. */
export const OPSET = 17;
/** IR version 8 is what opset 17 needs and what onnx-proto's schema (ONNX 1.10) describes. */
export const IR_VERSION = 8;

export const ElemType = onnx.TensorProto.DataType;

/** Kiln dtypes as ONNX element types (bool is one byte in both). */
export const ELEM_OF = { f32: ElemType.FLOAT, f16: ElemType.FLOAT16, bf16: ElemType.BFLOAT16, f64: ElemType.DOUBLE, i32: ElemType.INT32, i8: ElemType.INT8, u8: ElemType.UINT8, bool: ElemType.BOOL } as const;

export type AttrValue = number | string | readonly number[] | { int: number } | { ints: readonly number[] } | { tensor: OnnxNs.ITensorProto };

const AT = onnx.AttributeProto.AttributeType;

/** An attribute from a plain value: integers become INT(S), other numbers FLOAT(S); `{ int }` forces INT. */
export function attribute(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  if (typeof v === "string") return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { name, type: AT.INTS, ints: [...v] } : { name, type: AT.FLOATS, floats: [...v] };
  const o = v as { int?: number; ints?: readonly number[]; tensor?: OnnxNs.ITensorProto };
  if (o.tensor) return { name, type: AT.TENSOR, t: o.tensor };
  if (o.ints) return { name, type: AT.INTS, ints: [...o.ints] };
  return { name, type: AT.INT, i: o.int! };
}

export function node(op: string, inputs: readonly string[], outputs: readonly string[], name: string, attrs: Record<string, AttrValue> = {}): OnnxNs.INodeProto {
  return { opType: op, input: [...inputs], output: [...outputs], name, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
}

/** A tensor stored as raw little-endian bytes (what every runtime reads fastest). */
export function tensor(name: string, elemType: number, dims: readonly number[], data: ArrayBufferView): OnnxNs.ITensorProto {
  return { name, dataType: elemType, dims: [...dims], rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
}

/** An input/output's type; a string dim is a named (symbolic) dim. */
export function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): OnnxNs.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) } } } };
}

export interface ModelParts {
  graph: OnnxNs.IGraphProto;
  producer?: string;
  docString?: string;
}

export function encodeModel(m: ModelParts): Uint8Array {
  const model: OnnxNs.IModelProto = { irVersion: IR_VERSION, producerName: m.producer ?? "kiln", graph: m.graph, opsetImport: [{ domain: "", version: OPSET }], ...(m.docString ? { docString: m.docString } : {}) };
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): OnnxNs.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
