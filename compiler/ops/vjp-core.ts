// Op registry, the vocabulary of gradient rules: what a VJP rule can emit, the rule type, and the two helpers
// every rule family uses (the adjoint of broadcasting, zeros). vjp.ts and vjp-math.ts both build on it.
import type { Node } from "../ir/graph.js";
import type { DType, Shape, TensorType } from "../ir/types.js";
import type { AttrsOf, PrimOp } from "./types.js";

/** What a rule can do: emit checked primitives (a rule error here is a compiler bug) and read types. */
export interface GradEmitter {
  emit<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P]): number;
  constant(value: number, dtype: DType): number;
  type(id: number): TensorType;
  /** The node behind an id (a rule may recognise the pattern that produced its cotangent). */
  node(id: number): Node;
  /** Whether the precision pass will run this node's matmuls in 16 bits (its autocast region, or the module's policy). */
  lowPrecision(n: Node): boolean;
}

/** Given the node and the cotangent of its output, the cotangent of each input (undefined: none needed). */
export type VjpRule<P extends PrimOp = PrimOp> = (e: GradEmitter, n: Node<P>, ct: number) => (number | undefined)[];

/** Sums `g` (shaped like a broadcast result) back down to `shape`: the adjoint of numpy broadcasting. */
export function unbroadcast(e: GradEmitter, g: number, shape: Shape): number {
  const gs = e.type(g).shape;
  if (gs.length === shape.length && gs.every((d, k) => d === shape[k])) return g;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  gs.forEach((d, k) => {
    if (k < lead || (shape[k - lead] === 1 && d !== 1)) axes.push(k);
  });
  const summed = axes.length ? e.emit("sum", [g], { axes, keepdims: true }) : g;
  return e.emit("reshape", [summed], { shape });
}

export function zerosLike(e: GradEmitter, x: number): number {
  const t = e.type(x);
  return e.emit("broadcast_to", [e.constant(0, t.dtype)], { shape: t.shape });
}
