// Pass "simplify", broadcast folding: an add/sub/mul/div reading broadcast_to(a) reads a itself where its other
// operand already gives the result its shape (numpy broadcasting does the rest), so the full-size copy a
// broadcast_to lowers to is never written; and a product with a constant 1 seen through reshapes is the other operand.
// Autodiff emits both: the seed of sum(...) is broadcast_to(reshape(1)) and a row sum's gradient is broadcast back.
// Where no operand has the full shape, the op runs on the small values and the broadcast moves after it.
import { sameShape, type Shape } from "../ir/types.js";
import type { Node } from "../ir/graph.js";
import type { PrimOp } from "../ops/types.js";
import { broadcastShapes } from "../ops/shape-utils.js";

// `where` keeps its broadcast_to: the max-pool gradient kernel (codegen/plan-pool-grad.ts) matches it there.
const FOLDING = new Set<PrimOp>(["add", "sub", "mul", "div"]);

/**
 * n's inputs (ids among `nodes`) with broadcast_to operands replaced by what they broadcast, where that keeps n's
 * shape; or, where every full-size operand was such a broadcast (mean's seed: broadcast_to(1) / N), `sunk`: the
 * smaller shape n then has, so the caller computes n there and broadcasts the result, which the next consumer folds.
 */
export function foldBroadcasts(n: Node, inputs: readonly number[], nodes: readonly Node[]): { inputs: number[]; sunk?: Shape } {
  const out = [...inputs];
  if (!FOLDING.has(n.op) || n.type.shape.length === 0) return { inputs: out };
  const shapeWith = (ids: readonly number[]) => broadcastShapes(ids.map((id) => nodes[id]!.type.shape));
  const unbroadcast = (id: number) => {
    const bc = nodes[id]!;
    return bc.op === "broadcast_to" && !bc.guard?.length ? bc.inputs[0]! : undefined;
  };
  for (let k = 0; k < out.length; k++) {
    const a = unbroadcast(out[k]!);
    if (a === undefined) continue;
    const shape = shapeWith(out.map((id, i) => (i === k ? a : id)));
    if (!("error" in shape) && sameShape(shape as Shape, n.type.shape)) out[k] = a;
  }
  const all = out.map((id) => unbroadcast(id) ?? id);
  const small = shapeWith(all);
  if (all.every((id, i) => id === out[i]) || "error" in small || sameShape(small as Shape, n.type.shape)) return { inputs: out };
  return { inputs: all, sunk: small as Shape };
}

/**
 * reshape(broadcast_to(a)) where a holds one element (mean's gradient, broadcast then reshaped to [N, 1]): the
 * id of a, which the caller broadcasts straight to the reshape's shape, so the next consumer folds it too.
 */
export function splatThrough(n: Node, inputs: readonly number[], nodes: readonly Node[]): number | undefined {
  if (n.op !== "reshape" || n.type.shape.every((d) => d === 1)) return undefined;
  const bc = nodes[inputs[0]!]!;
  if (bc.op !== "broadcast_to" || bc.guard?.length) return undefined;
  const a = nodes[bc.inputs[0]!]!;
  return a.type.shape.every((d) => d === 1) && a.type.shape.length <= n.type.shape.length ? a.id : undefined;
}

/** The value of a constant seen through reshapes and broadcasts, or undefined. */
export function constThrough(x: Node | undefined, nodes: readonly Node[]): number | undefined {
  while (x && (x.op === "reshape" || x.op === "broadcast_to")) x = nodes[x.inputs[0]!];
  return x?.op === "const" ? (x.attrs as { value: number }).value : undefined;
}
