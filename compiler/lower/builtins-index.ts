// Lowering stage, the indexing and shape builtins: take, embedding, take_along_axis / gather, attention with a
// causal mask, and zeros / ones / full with (symbolic) shapes. Checks arguments, then emits the composites of
// compiler/ops/composites-index.ts.

import { formatType, isFloat, type Dim } from "../ir/types.js";
import { normalizeAxis } from "../ops/shape-utils.js";
import * as X from "../ops/composites-index.js";
import type { Lowerer } from "./lowerer.js";
import { POISON, type ArgVal, type Val } from "./values.js";
import { boolArg, constErr, intArg, numberArg, tensorArg, wrap, type Args, type Builtin } from "./builtin-args.js";

function fail(L: Lowerer, a: ArgVal, code: "K301" | "K304" | "K403" | "K409", message: string, hint?: string): Val {
  L.diags.error(code, message, a.span, hint);
  return POISON;
}

function axisOf(L: Lowerer, a: ArgVal | undefined, rank: number, dflt: number): number | undefined {
  if (!a) return dflt;
  const raw = intArg(L, a);
  if (raw === undefined) return undefined;
  const n = normalizeAxis(raw, rank);
  if (typeof n === "number") return n;
  L.diags.error(n.error, n.message, a.span, n.hint);
  return undefined;
}

/** Checks what every one_hot-based pick needs: i32 indices and a float source with a known size along `axis`. */
function pickArgs(L: Lowerer, what: string, xa: ArgVal, ia: ArgVal, axisArg: ArgVal | undefined, dflt: number | "last", symbolic = false): { x: number; ids: number; axis: number } | undefined {
  const x = tensorArg(L, xa);
  const ids = tensorArg(L, ia);
  if (x === undefined || ids === undefined) return undefined;
  const xt = L.type(x), it = L.type(ids);
  if (it.dtype !== "i32") return void fail(L, ia, "K301", `${what} needs i32 indices, got ${formatType(it)}`, "use cast(ids, i32)");
  if (!isFloat(xt.dtype)) return void fail(L, xa, "K301", `${what} picks from a float tensor, got ${formatType(xt)}`);
  if (xt.shape.length === 0) return void fail(L, xa, "K403", `${what} needs a tensor of rank >= 1, got ${formatType(xt)}`);
  const axis = axisOf(L, axisArg, xt.shape.length, dflt === "last" ? xt.shape.length - 1 : dflt);
  if (axis === undefined) return undefined;
  const n = xt.shape[axis]!;
  if (typeof n !== "number" && !symbolic) return void fail(L, xa, "K304", `${what} needs a known size along axis ${axis}, got ${formatType(xt)}`);
  if (typeof n === "number") L.b.boundIndices(ids, n);
  return { x, ids, axis };
}

/** A shape list of positive integers and dims (products of dims included: [B * T, D]). */
export function dimListArg(L: Lowerer, a: ArgVal): Dim[] | undefined {
  if (a.val.kind !== "list") return void constErr(L, a, "a shape list, e.g. [B, 16]");
  const dims: Dim[] = [];
  for (const it of a.val.items) {
    if (it.val.kind === "dim") dims.push(it.val.dim);
    else if (it.val.kind === "literal" && Number.isInteger(it.val.value) && it.val.value >= 1) dims.push(it.val.value);
    else return void constErr(L, it, "a positive integer or a dimension name of this function's signature");
  }
  return dims;
}

/** zeros/ones/full: a scalar constant broadcast to the shape (no buffer of its own until a kernel reads it). */
function filled(value: number | "arg"): Builtin {
  return {
    params: value === "arg" ? ["shape", "value", "dtype?"] : ["shape", "dtype?"],
    run(L, a) {
      const shape = dimListArg(L, a.shape!);
      const v = value === "arg" ? numberArg(L, a.value!) : value;
      if (!shape || v === undefined) return POISON;
      const dtype = a.dtype?.val;
      if (dtype && dtype.kind !== "dtype") return constErr(L, a.dtype!, "a dtype such as f32 or i32");
      const dt = dtype?.kind === "dtype" ? dtype.dtype : "f32";
      const c = L.materialize({ kind: "literal", value: v, isInt: Number.isInteger(v) }, a.shape!.span, dt);
      return c.kind === "tensor" ? L.emitVal("broadcast_to", [c], { shape }) : POISON;
    },
  };
}

export const INDEX_BUILTINS: Record<string, Builtin> = {
  take: {
    params: ["x", "ids", "axis?"],
    run(L, a) {
      const p = pickArgs(L, "take", a.x!, a.ids!, a.axis, 0, true);
      return p ? wrap(X.take(L, p.x, p.ids, p.axis)) : POISON;
    },
  },
  embedding: {
    params: ["ids", "table"],
    run(L, a) {
      const t = tensorArg(L, a.table!);
      if (t !== undefined && L.type(t).shape.length !== 2) return fail(L, a.table!, "K409", `embedding needs a table [V, D], got ${formatType(L.type(t))}`);
      const p = pickArgs(L, "embedding", a.table!, a.ids!, undefined, 0, true);
      return p ? wrap(X.embedding(L, p.ids, p.x)) : POISON;
    },
  },
  take_along_axis: { params: ["x", "idx", "axis?"], run: (L, a) => along(L, a, "take_along_axis") },
  gather: { params: ["x", "idx", "axis?"], run: (L, a) => along(L, a, "gather") },
  scaled_dot_product_attention: {
    params: ["q", "k", "v", "causal?", "scale?"],
    run(L, a) {
      const [q, k, v] = [tensorArg(L, a.q!), tensorArg(L, a.k!), tensorArg(L, a.v!)];
      const causal = a.causal ? boolArg(L, a.causal) : false;
      if (q === undefined || k === undefined || v === undefined || causal === undefined) return POISON;
      const qs = L.type(q).shape, ks = L.type(k).shape;
      if (qs.length < 2 || ks.length < 2) return fail(L, a.q!, "K409", `attention needs q [..., T, d] and k [..., S, d], got ${formatType(L.type(q))} and ${formatType(L.type(k))}`);
      const d = qs[qs.length - 1];
      if (typeof d !== "number") return fail(L, a.q!, "K304", `attention needs a known head size, got ${formatType(L.type(q))}`);
      const scale = a.scale ? numberArg(L, a.scale) : 1 / Math.sqrt(d);
      return scale === undefined ? POISON : wrap(X.attention(L, q, k, v, causal, scale));
    },
  },
  zeros: filled(0),
  ones: filled(1),
  full: filled("arg"),
};

function along(L: Lowerer, a: Args, what: string): Val {
  const p = pickArgs(L, what, a.x!, a.idx!, a.axis, "last");
  if (!p) return POISON;
  const xr = L.type(p.x).shape.length, ir = L.type(p.ids).shape.length;
  if (xr !== ir) return fail(L, a.idx!, "K409", `${what} needs indices of x's rank ${xr}, got ${formatType(L.type(p.ids))}`);
  return wrap(X.takeAlongAxis(L, p.x, p.ids, p.axis));
}
