// ONNX import, values: what the importer knows about each ONNX value (a compile-time constant, possibly holding
// symbolic dims, or a run-time tensor with its Kiln expression and shape), reading TensorProto data, and names.

import type { OnnxNs } from "../../export/onnx/proto.js";
import { onnx } from "../../export/onnx/proto.js";
import { KilnError } from "../../../runtime/errors.js";

import type { Dim } from "./dims.js";

export type { Dim } from "./dims.js";

/** Known at import time: initializers, Constant outputs and the shape arithmetic exporters emit. */
export interface ConstVal {
  kind: "const";
  dims: number[];
  /** Integers may be symbolic (a dim name from Shape of a run-time tensor); floats are plain numbers. */
  data: Dim[] | Float32Array;
  float: boolean;
  /** Truth values (BOOL tensors, folded comparisons): 0 or 1 in `data`. */
  bool?: boolean;
  /** The initializer it came from: such a value becomes a param when a run-time op reads it. */
  init?: string;
}

export interface TensorVal {
  kind: "tensor";
  /** A Kiln expression: a variable, a param or a literal. */
  expr: string;
  shape: Dim[];
  /** Kiln's dtype for it; f32 when absent (ONNX int64/int32 become i32). */
  dtype?: "f32" | "i32" | "bool";
  /**
   * Positions start, start + 1, ... below the symbolic `end` (a Range over the sequence length, maybe unsqueezed):
   * written lazily, so that a Gather of a table at them becomes the slice `table[start:end]`, which the call checks
   * against the table's size, rather than an unchecked lookup.
   */
  iota?: { start: number; end: string };
}

export type Val = ConstVal | TensorVal;

/** An import failure the CLI prints as is: it names the file, the node and what to do. */
export class ImportError extends KilnError {}

const T = onnx.TensorProto.DataType;

/** A TensorProto's values: floats as f32, integers as numbers (int64 read exactly while within 2^53). */
export function readTensor(t: OnnxNs.ITensorProto, where: string): ConstVal {
  const dims = (t.dims ?? []).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const width = ({ [T.FLOAT]: 4, [T.DOUBLE]: 8, [T.INT64]: 8, [T.INT32]: 4, [T.INT8]: 1, [T.UINT8]: 1, [T.BOOL]: 1 } as Record<number, number>)[t.dataType ?? 0];
  if (raw && width && raw.byteLength !== count * width) {
    throw new ImportError(`${where}: tensor '${t.name ?? ""}' has ${raw.byteLength} bytes of data for dims [${dims.join(", ")}] (${count * width} expected); the file is damaged or truncated`);
  }
  switch (t.dataType) {
    case T.FLOAT: {
      const data = new Float32Array(count);
      if (view) for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
      else data.set(t.floatData ?? []);
      return { kind: "const", dims, data, float: true };
    }
    case T.DOUBLE: {
      const src = view ? Array.from({ length: count }, (_, i) => view.getFloat64(i * 8, true)) : (t.doubleData ?? []);
      return { kind: "const", dims, data: Float32Array.from(src), float: true };
    }
    case T.INT64: {
      const data = view ? Array.from({ length: count }, (_, i) => Number(view.getBigInt64(i * 8, true))) : (t.int64Data ?? []).map(Number);
      return { kind: "const", dims, data, float: false };
    }
    case T.INT32: case T.INT8: case T.UINT8: case T.BOOL: {
      const get = (i: number) => (t.dataType === T.INT32 ? view!.getInt32(i * 4, true) : t.dataType === T.INT8 ? view!.getInt8(i) : view!.getUint8(i));
      const data = view ? Array.from({ length: count }, (_, i) => get(i)) : (t.int32Data ?? []).map(Number);
      return { kind: "const", dims, data, float: false, ...(t.dataType === T.BOOL ? { bool: true } : {}) };
    }
    default:
      throw new ImportError(`${where}: tensor '${t.name ?? ""}' has element type ${T[t.dataType ?? 0] ?? t.dataType}, which kiln import does not read yet (floats and integers only)`);
  }
}

const RESERVED = new Set(["fn", "model", "param", "let", "return", "true", "false", "if", "else", "for", "in", "while", "train", "backward", "grad", "value_and_grad"]);

/** Unique Kiln identifiers for ONNX names ("/fc1/Gemm_output_0" -> "fc1_gemm_output_0", "fc1.weight" -> "fc1_weight"). */
export class Names {
  private used = new Set<string>();
  constructor(taken: Iterable<string> = []) {
    for (const t of taken) this.used.add(t);
  }
  /** Marks a name as used (a symbolic dim, which a variable of the same name would shadow). */
  reserve(name: string): void {
    this.used.add(name);
  }
  take(onnxName: string, fallback = "v"): string {
    let s = onnxName.replace(/[^A-Za-z0-9_]+/g, "_").replace(/^_+|_+$/g, "").replace(/_+/g, "_");
    if (!s) s = fallback;
    if (/^[0-9]/.test(s)) s = `${fallback}_${s}`;
    if (RESERVED.has(s)) s = `${s}_`;
    let n = s;
    for (let k = 2; this.used.has(n); k++) n = `${s}_${k}`;
    this.used.add(n);
    return n;
  }
}

/** An exporter's value name as a variable hint: "/fc1/Gemm_output_0" -> "fc1_gemm". */
export function varHint(name: string): string {
  return name.replace(/_output_\d+$/, "").replace(/[^A-Za-z0-9_]+/g, "_").replace(/^_+|_+$/g, "").toLowerCase();
}

/** f32 literal text that reads back as the same f32. */
export function floatText(x: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === Math.fround(x)) return String(Number(s)).replace(/^(-?\d+)$/, "$1.0").replace(/e/, ".0e").replace(/\.(\d+)\.0e/, ".$1e");
  }
  return String(x);
}

/** A Kiln literal for one constant element; infinities (a -inf mask fill) become the largest finite f32, which
 *  softmax and max turn into the same zeros and picks, as Kiln has no infinite literals. */
export function literal(x: number, v: ConstVal): string | undefined {
  if (v.bool) return x ? "true" : "false";
  if (Number.isNaN(x)) return undefined;
  const text = !Number.isFinite(x) ? `${x < 0 ? "-" : ""}3.4028234e38` : v.float ? floatText(x) : String(x);
  return text.startsWith("-") ? `(${text})` : text;
}
