// Op registry, indexing composites: take (x[ids] along an axis, embedding) from the gather primitive, whose
// gradient is scatter_add (only the rows used), take_along_axis (torch.gather) from one_hot = eq(ids, iota), mul
// and sum, and scaled dot-product attention with a causal mask from iotas and where.

import type { Shape } from "../ir/types.js";
import { oneHot, softmax, type PrimEmitter } from "./composites.js";

type Id = number | undefined;

/** Moves axis `from` to position `to` (a permute; nothing when they are equal). */
function moveAxis(e: PrimEmitter, x: Id, from: number, to: number): Id {
  if (x === undefined || from === to) return x;
  const perm = [...Array(e.type(x).shape.length).keys()];
  perm.splice(from, 1);
  perm.splice(to, 0, from);
  return e.emit("permute", [x], { perm });
}

/** one_hot(ids, n) in `x`'s float dtype. */
function hotAs(e: PrimEmitter, ids: number, n: number, x: number): Id {
  const oh = oneHot(e, ids, n);
  const dt = e.type(x).dtype;
  return oh === undefined || dt === "f32" ? oh : e.emit("cast", [oh], { to: dt });
}

/**
 * numpy's take / torch.index_select generalised to index tensors: out = x[:, ..., ids, ...] with the indexed
 * axis replaced by ids' shape: the axis moved to the front, the `gather` primitive, the ids' axes moved back.
 */
export function take(e: PrimEmitter, x: number, ids: number, axis: number): Id {
  const front = moveAxis(e, x, axis, 0);
  const picked = front === undefined ? undefined : e.emit("gather", [front, ids], {});
  const k = e.type(ids).shape.length;
  // [ids..., before..., after...] -> [before..., ids..., after...]
  if (picked === undefined || axis === 0 || k === 0) return picked;
  const r = e.type(x).shape.length - 1;
  const perm = [...[...Array(axis).keys()].map((i) => k + i), ...[...Array(k).keys()], ...[...Array(r - axis).keys()].map((i) => k + axis + i)];
  return e.emit("permute", [picked], { perm });
}

/** embedding(ids, table): table[ids] for table [V, D], rows picked along axis 0. */
export function embedding(e: PrimEmitter, ids: number, table: number): Id {
  return take(e, table, ids, 0);
}

/**
 * numpy's take_along_axis, torch.gather(x, axis, idx): out[..., j, ...] = x[..., idx[..., j, ...], ...]; idx has
 * x's rank, its other axes broadcast against x's. Computed as sum(one_hot(idx) * x) over x's axis.
 */
export function takeAlongAxis(e: PrimEmitter, x: number, idx: number, axis: number): Id {
  const r = e.type(x).shape.length;
  const n = e.type(x).shape[axis] as number;
  const xl = moveAxis(e, x, axis, r - 1);
  const il = moveAxis(e, idx, axis, r - 1);
  if (xl === undefined || il === undefined) return undefined;
  const oh = hotAs(e, il, n, x); // [..., k, n]
  const xs = e.type(xl).shape;
  const xe = e.emit("reshape", [xl], { shape: [...xs.slice(0, -1), 1, xs[r - 1]!] as Shape });
  const prod = oh === undefined || xe === undefined ? undefined : e.emit("mul", [oh, xe], {});
  const picked = prod === undefined ? undefined : e.emit("sum", [prod], { axes: [r], keepdims: false });
  return moveAxis(e, picked, r - 1, axis);
}

/**
 * softmax(q @ k^T * scale [+ causal mask]) @ v, q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (PyTorch's
 * F.scaled_dot_product_attention; scale defaults to 1 / sqrt(d)). The causal mask keeps key j for query i when
 * j <= i, built from two iotas; masked scores are -1e9 (exp underflows to 0, as -inf does in PyTorch).
 */
export function attention(e: PrimEmitter, q: number, k: number, v: number, causal: boolean, scale: number): Id {
  const kr = e.type(k).shape.length;
  const perm = [...Array(kr).keys()];
  [perm[kr - 2], perm[kr - 1]] = [perm[kr - 1]!, perm[kr - 2]!];
  const kt = e.emit("permute", [k], { perm });
  const raw = kt === undefined ? undefined : e.emit("matmul", [q, kt], {});
  const dt = raw === undefined ? "f32" : e.type(raw).dtype;
  let s = raw === undefined ? undefined : e.emit("mul", [raw, e.constant(scale, dt)], {});
  if (causal && s !== undefined) {
    const ss = e.type(s).shape;
    const [tq, tk] = [ss[ss.length - 2]!, ss[ss.length - 1]!];
    const qi = e.emit("iota", [], { n: tq, dtype: "i32" });
    const kj = e.emit("iota", [], { n: tk, dtype: "i32" });
    const col = qi === undefined ? undefined : e.emit("reshape", [qi], { shape: [tq, 1] });
    const keep = col === undefined || kj === undefined ? undefined : e.emit("ge", [col, kj], {});
    s = keep === undefined ? undefined : e.emit("where", [keep, s, e.constant(-1e9, dt)], {});
  }
  const p = s === undefined ? undefined : softmax(e, s, e.type(s).shape.length - 1);
  return p === undefined ? undefined : e.emit("matmul", [p, v], {});
}
