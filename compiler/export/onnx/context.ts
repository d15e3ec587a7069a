// ONNX export, per-graph state: value names, the nodes and initializers written so far, and the helpers every
// op mapping shares (int64 constants, run-time shape tensors built from the inputs' named dims).

import type { Graph, Node } from "../../ir/graph.js";
import type { DType, Shape } from "../../ir/types.js";
import { KilnError } from "../../../runtime/errors.js";
import { allocTypedArray } from "../../../runtime/dtype.js";
import { foldDim } from "../dim-expr.js";
import { ELEM_OF, node, tensor, type AttrValue, type OnnxNs } from "./proto.js";

/** An IR op with no ONNX equivalent, reported at the expression that produced it. */
export function exportError(g: Graph, n: Node, what: string, hint: string): KilnError {
  const at = n.span ? `${n.span.file}:${n.span.line}:${n.span.col}: ` : "";
  return new KilnError(`${at}cannot export ${g.name} to ONNX: ${what}\nhint: ${hint}`);
}

export class OnnxGraphContext {
  readonly nodes: OnnxNs.INodeProto[] = [];
  readonly initializers: OnnxNs.ITensorProto[] = [];
  /** The ONNX name of each IR value that has been written. */
  readonly names = new Map<number, string>();
  private counter = 0;
  private readonly consts = new Map<string, string>();
  /** Where each named dim can be read at run time: the first graph input that has it, and the axis. */
  private readonly dimSource = new Map<string, { input: string; axis: number }>();

  constructor(readonly g: Graph) {
    for (const io of g.inputs) {
      g.nodes[io.node].type.shape.forEach((d, axis) => {
        if (typeof d === "string" && !this.dimSource.has(d)) this.dimSource.set(d, { input: io.name, axis });
      });
    }
  }

  name(id: number): string {
    const s = this.names.get(id);
    if (s === undefined) throw new Error(`internal: value %${id} of ${this.g.name} read before it was written`);
    return s;
  }

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  add(op: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, AttrValue> = {}): void {
    this.nodes.push(node(op, inputs, outputs, `${op}_${this.nodes.length}`, attrs));
  }

  /** Adds `op` with one fresh output and returns its name. */
  tmp(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(op.toLowerCase());
    this.add(op, inputs, [out], attrs);
    return out;
  }

  /** A constant int64 vector (axes, shapes, pads), shared between uses. */
  i64(values: readonly number[]): string {
    const key = `i64:${values.join(",")}`;
    let s = this.consts.get(key);
    if (!s) {
      s = `const_i64_${this.consts.size}`;
      this.initializers.push(tensor(s, 7, [values.length], BigInt64Array.from(values, (v) => BigInt(v))));
      this.consts.set(key, s);
    }
    return s;
  }

  /** A constant of a Kiln dtype: a scalar, or `values` with `shape`. */
  constant(dtype: DType, shape: readonly number[], values: ArrayLike<number>): string {
    const data = allocTypedArray(dtype, values.length) as unknown as { [k: number]: number | bigint; length: number };
    for (let i = 0; i < values.length; i++) data[i] = values[i];
    const key = `${dtype}:${shape.join("x")}:${Array.from(values).join(",")}`;
    let s = this.consts.get(key);
    if (!s) {
      s = `const_${dtype}_${this.consts.size}`;
      this.initializers.push(tensor(s, ELEM_OF[dtype], shape, data as unknown as ArrayBufferView));
      this.consts.set(key, s);
    }
    return s;
  }

  /**
   * A 1-D int64 shape tensor for `shape`. Named dims come from the inputs at run time (Shape with start/end);
   * `allowInfer` lets a Reshape write one named dim as -1 instead, which needs no Shape node.
   */
  shape(shape: Shape, allowInfer = false): string {
    const syms = shape.filter((d) => typeof d === "string");
    if (syms.length === 0) return this.i64(shape as number[]);
    if (allowInfer && syms.length === 1) return this.i64(shape.map((d) => (typeof d === "number" ? d : -1)));
    const parts: string[] = [];
    let run: number[] = [];
    for (const d of shape) {
      if (typeof d === "number") {
        run.push(d);
        continue;
      }
      if (run.length) parts.push(this.i64(run));
      run = [];
      parts.push(this.dim(d));
    }
    if (run.length) parts.push(this.i64(run));
    return parts.length === 1 ? parts[0] : this.tmp("Concat", parts, { axis: 0 });
  }

  private readonly dimNames = new Map<string, string>();

  /**
   * The run-time size of named dim `d` as an int64 [1] tensor: an input axis's (Shape with start/end), or a
   * derived dim ("3*B", "(T-1)*B", "(H+1)/2") computed from those by Mul/Add/Sub/Div (compiler/export/dim-expr.ts;
   * ONNX's integer Div truncates, which is the floor here: sizes are positive). DimUnreadable when a symbol is
   * no input's size (the writer reports it at the op).
   */
  dim(d: string): string {
    let s = this.dimNames.get(d);
    if (s) return s;
    const ONNX_OP = { "+": "Add", "-": "Sub", "*": "Mul", "/": "Div" } as const;
    s = foldDim<string>(d, {
      readable: (name) => this.dimSource.has(name),
      read: (name) => {
        const src = this.dimSource.get(name)!;
        let r = this.dimNames.get(name);
        if (!r) this.dimNames.set(name, (r = this.tmp("Shape", [src.input], { start: src.axis, end: src.axis + 1 })));
        return r;
      },
      num: (v) => this.i64([v]),
      op: (op, a, b) => this.tmp(ONNX_OP[op], [a, b]),
    });
    this.dimNames.set(d, s);
    return s;
  }
}
