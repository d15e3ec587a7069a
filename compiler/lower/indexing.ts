// Lowering stage, indexing expressions: `x[i]`, `x[a:b]`, `x[:, 0]`, `x[-1]`, `x[::2]` with compile-time
// integers become slices (and one reshape dropping the integer-indexed axes); an i32 tensor index `table[ids]`,
// or an integer into a symbolic axis (`x[:, t]` in a loop over T), becomes a take (composites-index.ts);
// `blocks[i]` picks a submodule. Out-of-range static indices are K407.

import type { Expr, IndexExpr, IndexItem } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import { formatType, isFloat, type Dim } from "../ir/types.js";
import { addDim } from "../ir/dim-expr.js";
import { sliceAttrs } from "../ops/vjp.js";
import { take } from "../ops/composites-index.js";
import type { Lowerer } from "./lowerer.js";
import { pickModule } from "./submodules.js";
import { POISON, tensor, type Val } from "./values.js";

export function lowerIndex(L: Lowerer, e: IndexExpr): Val {
  const obj = L.expr(e.object);
  if (obj.kind === "error") return POISON;
  if (obj.kind === "modules") {
    const [it, ...more] = e.items;
    if (more.length || it?.kind !== "at") {
      L.diags.error("K501", `submodule array '${obj.name}' takes one index`, e.span, `e.g. ${obj.name}[0]`);
      return POISON;
    }
    return pickModule(L, obj, L.expr(it.index), it.span);
  }
  const x0 = L.materialize(obj, e.object.span);
  if (x0.kind !== "tensor") return POISON;
  let x = x0.id;
  const rank = L.type(x).shape.length;
  if (e.items.length > rank) {
    L.diags.error("K403", `${e.items.length} indices for ${formatType(L.type(x))}, which has ${rank} axes`, e.span, "index at most one position per axis");
    return POISON;
  }
  const drop: number[] = [];
  let axis = 0;
  for (const it of e.items) {
    const r = it.kind === "range" ? range(L, x, axis, it) : at(L, x, axis, it);
    if (r === undefined) return POISON;
    x = r.id;
    if (r.drop) drop.push(axis);
    axis += r.width;
  }
  if (!drop.length) return tensor(x);
  const shape = L.type(x).shape.filter((_, k) => !drop.includes(k));
  L.span = e.span;
  return L.emitVal("reshape", [tensor(x)], { shape });
}

/**
 * A compile-time integer (a literal, a negated literal, an unrolled loop's variable, a dim bound to a known size
 * where a function is inlined: `pos[0:T]` in a forward called with T = 12), or undefined.
 */
function constInt(v: Val): number | undefined {
  if (v.kind === "dim" && typeof v.dim === "number") return v.dim;
  return v.kind === "literal" && Number.isInteger(v.value) ? v.value : undefined;
}

function sizeOf(L: Lowerer, x: number, axis: number, span: Span): number | undefined {
  const d: Dim = L.type(x).shape[axis]!;
  if (typeof d === "number") return d;
  L.diags.error("K407", `cannot use a negative index or a slice on symbolic dimension ${d} of ${formatType(L.type(x))}`, span, "index it with a non-negative integer or an i32 tensor, or keep it whole with ':'");
  return undefined;
}

/** x[i] on one axis: an integer keeps a size-1 slice (dropped afterwards); an i32 tensor takes rows. */
function at(L: Lowerer, x: number, axis: number, it: Extract<IndexItem, { kind: "at" }>): { id: number; drop: boolean; width: number } | undefined {
  const v = L.expr(it.index);
  L.span = it.span;
  if (v.kind === "error") return undefined;
  if (v.kind === "tensor") {
    const t = L.type(v.id);
    if (t.dtype !== "i32") return void L.diags.error("K301", `a tensor index must be i32, got ${formatType(t)}`, it.span, "cast(ids, i32)");
    if (!isFloat(L.type(x).dtype)) return void L.diags.error("K301", `indexing with a tensor picks from a float tensor, got ${formatType(L.type(x))}`, it.span);
    const n = L.type(x).shape[axis]!;
    if (typeof n === "number") L.b.boundIndices(v.id, n);
    const id = take(L, x, v.id, axis);
    return id === undefined ? undefined : { id, drop: false, width: t.shape.length };
  }
  const i = constInt(v);
  if (i === undefined) return void L.diags.error("K304", "an index must be an integer constant or an i32 tensor", it.span);
  // A symbolic axis (x[:, t] in a loop over T): a gathered position, since a slice needs a known size. Iterations
  // past the run-time length are guarded off, so their positions are never read.
  if (typeof L.type(x).shape[axis] === "string" && i >= 0) {
    const id = take(L, x, L.constant(i, "i32"), axis);
    return id === undefined ? undefined : { id, drop: false, width: 0 };
  }
  const n = sizeOf(L, x, axis, it.span);
  if (n === undefined) return undefined;
  const k = i < 0 ? i + n : i;
  if (k < 0 || k >= n) {
    return void L.diags.error("K407", `index ${i} is out of range for axis ${axis} of ${formatType(L.type(x))}`, it.span, `indices run from 0 to ${n - 1} (or -${n} to -1)`);
  }
  const id = L.emit("slice", [x], sliceAttrs(axis, k, k + 1));
  return id === undefined ? undefined : { id, drop: true, width: 1 };
}

/**
 * x[a:T] of a known axis to a symbolic end (a position table cut to the sequence length, `pos[0:T]`): unit step
 * from a known start; the call checks that T fits the axis (compiler/ir/dim-limits.ts), K407 for the rest.
 */
function toDim(L: Lowerer, x: number, axis: number, it: Extract<IndexItem, { kind: "range" }>, end: string, s: number | null | undefined, st: number | null | undefined): { id: number; drop: boolean; width: number } | undefined {
  if (s === undefined || st === undefined) return undefined;
  const n = L.type(x).shape[axis]!;
  if (typeof n !== "number" || (s ?? 0) < 0 || (s ?? 0) >= n || (st ?? 1) !== 1) {
    const why = typeof n !== "number" ? `axis ${axis} is symbolic (${n}); slice it from a start to its end or before it by a constant` : `start at a constant in 0..${n - 1} and use step 1`;
    return void L.diags.error("K407", `cannot take [${s ?? ""}:${end}${st !== null ? ":" + st : ""}] of axis ${axis} of ${formatType(L.type(x))}`, it.span, why);
  }
  L.span = it.span;
  const id = L.emit("slice", [x], sliceAttrs(axis, s ?? 0, end));
  return id === undefined ? undefined : { id, drop: false, width: 1 };
}

/** x[a:b:s] on one axis, Python's defaults and negative positions; an empty or out-of-range slice is K407. */
function range(L: Lowerer, x: number, axis: number, it: Extract<IndexItem, { kind: "range" }>): { id: number; drop: boolean; width: number } | undefined {
  const bound = (e: Expr | undefined): number | null | undefined => {
    if (!e) return null;
    const b = constInt(L.expr(e));
    if (b === undefined) L.diags.error("K304", "slice bounds must be integer constants", e.span);
    return b;
  };
  const endDim = it.end ? L.expr(it.end) : undefined;
  if (endDim?.kind === "dim" && typeof endDim.dim === "string") return toDim(L, x, axis, it, endDim.dim, bound(it.start), bound(it.step));
  const [s, e, st] = [bound(it.start), bound(it.end), bound(it.step)];
  if (s === undefined || e === undefined || st === undefined) return undefined;
  if (s === null && e === null && (st === null || st === 1)) return { id: x, drop: false, width: 1 };
  const d = L.type(x).shape[axis]!;
  if (typeof d === "string") {
    // A symbolic axis T: from a known start to T minus a known count (x[:, 1:], x[:, :-1]), unit step.
    const end = e === null ? d : e < 0 ? addDim(d, e) : undefined;
    if (end === undefined || (s ?? 0) < 0 || (st ?? 1) !== 1) {
      return void L.diags.error("K407", `cannot take [${it.start ? s : ""}:${it.end ? e : ""}${it.step ? ":" + st : ""}] of symbolic dimension ${d} of ${formatType(L.type(x))}`, it.span, `start at a non-negative constant and end at ${d} or before it by a constant (x[:, 1:], x[:, :-1]), with step 1`);
    }
    L.span = it.span;
    const id = L.emit("slice", [x], sliceAttrs(axis, s ?? 0, end));
    return id === undefined ? undefined : { id, drop: false, width: 1 };
  }
  const n = sizeOf(L, x, axis, it.span);
  if (n === undefined) return undefined;
  const step = st ?? 1;
  if (step < 1) return void L.diags.error("K407", `slice step ${step} must be a positive integer`, it.span);
  const pos = (b: number, what: string): number | undefined => {
    const k = b < 0 ? b + n : b;
    if (k < 0 || k > n) L.diags.error("K407", `slice ${what} ${b} is out of range for axis ${axis} of ${formatType(L.type(x))}`, it.span, `positions run from -${n} to ${n}`);
    return k < 0 || k > n ? undefined : k;
  };
  const a = s === null ? 0 : pos(s, "start");
  const b = e === null ? n : pos(e, "end");
  if (a === undefined || b === undefined) return undefined;
  if (a >= b) return void L.diags.error("K407", `slice ${a}:${b} of axis ${axis} is empty`, it.span, "tensors cannot have a zero-sized axis");
  L.span = it.span;
  const id = L.emit("slice", [x], sliceAttrs(axis, a, b, step));
  return id === undefined ? undefined : { id, drop: false, width: 1 };
}
