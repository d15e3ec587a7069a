// ONNX import, the tensor ops: indexing (Gather, Slice, Split), joining (Concat), broadcasting (Expand, Where),
// comparisons, casts and the math ops without a layer of their own. Each folds when its operands are import-time
// constants (shape arithmetic, masks built from buffers) and otherwise maps onto Kiln builtins.

import { binary, constAt, constOf, dtypeOf, foldable, ints, isConst, list, num, prod, req, reshapeTo, shapeOf, sliceExpr, unary, axisOf, broadcast, type OpCtx, type Range, type Rule } from "./ops-util.js";
import { literal, readTensor, type ConstVal, type Dim, type Val } from "./values.js";

/** A constant's elements in row-major order, indexed by an N-D coordinate. */
function strides(dims: number[]): number[] {
  const s = dims.map(() => 1);
  for (let k = dims.length - 2; k >= 0; k--) s[k] = s[k + 1]! * dims[k + 1]!;
  return s;
}

/** Folds a gather/slice of a constant: out[coord] = x[map(coord)]. */
function foldIndex(x: ConstVal, outDims: number[], map: (coord: number[]) => number[]): ConstVal {
  const xs = strides(x.dims), os = strides(outDims);
  const data = Array.from({ length: prod(outDims) }, (_, i) => {
    const coord = outDims.map((_, k) => Math.floor(i / os[k]!) % outDims[k]!);
    return x.data[map(coord).reduce((a, c, k) => a + c * xs[k]!, 0)]!;
  });
  return constOf(outDims, data as Dim[], x.bool ? "bool" : x.float ? "f32" : "i32");
}

const Gather: Rule = (c) => {
  const x = req(c, 0), idx = req(c, 1);
  const xs = shapeOf(x), rank = xs.length;
  const axis = axisOf(c, c.attr("axis", 0), rank);
  if (foldable(x) && isConst(idx)) {
    const n = x.dims[axis]!;
    const ids = (idx.data as ArrayLike<Dim>);
    const outDims = [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)];
    const r = idx.dims.length;
    return [foldIndex(x, outDims, (co) => [...co.slice(0, axis), (num(c, ids[idx.dims.length ? co.slice(axis, axis + r).reduce((a, v, k) => a * idx.dims[k]! + v, 0) : 0]!, "an index") + n) % n, ...co.slice(axis + r)])];
  }
  if (isConst(idx)) {
    // Constant indices into a run-time tensor or a weight: a contiguous run is a slice (a position embedding's
    // arange), a single index a slice and a reshape (`x[:, 0]`).
    const size = num(c, xs[axis]!, "the gathered axis");
    const ids = Array.from(idx.data as ArrayLike<Dim>, (d) => (num(c, d, "an index") + size) % size);
    const contiguous = ids.every((v, k) => v === ids[0]! + k);
    if (!ids.length || !contiguous) c.fail(`Gather with the constant indices [${ids.join(", ")}] is imported only for a contiguous run`);
    if (!idx.dims.length) return [c.emit(`${c.expr(x)}[${[...xs.slice(0, axis).map(() => ":"), ids[0]].join(", ")}]`, [...xs.slice(0, axis), ...xs.slice(axis + 1)], dtypeOf(x))];
    const s = sliceExpr(c.expr(x), xs, [{ axis, start: ids[0]!, end: ids[0]! + ids.length, step: 1 }]);
    const picked = s.expr === c.expr(x) ? x : c.emit(s.expr, s.shape, dtypeOf(x));
    return reshapeTo(c, picked, [...xs.slice(0, axis), ...idx.dims, ...xs.slice(axis + 1)]);
  }
  if (idx.kind === "tensor" && idx.iota) {
    // Positions 0..seq of a table (GPT-2's wpe(arange(T))): the slice table[0:seq], checked against the table by
    // the call (a longer sequence is a KilnError, where an embedding lookup would read zeros).
    const { start, end } = idx.iota;
    if (typeof xs[axis] !== "number") c.fail(`Gather of positions ${start}..${end} from the symbolic axis ${axis} ('${xs[axis]}') is not supported`);
    if (start !== 0) c.fail(`Gather of positions ${start}..${end} is imported from position 0 only`);
    const s = sliceExpr(c.expr(x), xs, [{ axis, start, end, step: 1 }]);
    return reshapeTo(c, c.emit(s.expr, s.shape, dtypeOf(x)), [...xs.slice(0, axis), ...idx.shape, ...xs.slice(axis + 1)]);
  }
  if (dtypeOf(idx) !== "i32") c.fail(`Gather's indices must be integers`);
  // Run-time indices: an embedding lookup (take along axis 0 of a table) or take along another axis.
  const ishape = shapeOf(idx);
  const shape = [...xs.slice(0, axis), ...ishape, ...xs.slice(axis + 1)];
  if (axis === 0 && rank === 2 && isConst(x)) return [c.emit(`embedding(${c.expr(idx)}, ${c.expr(x, "normal()")})`, shape)];
  return [c.emit(`take(${c.expr(x)}, ${c.expr(idx)}${axis ? `, axis: ${axis}` : ""})`, shape, dtypeOf(x))];
};

/** ONNX Slice's start/end for one axis, clamped as the spec says (ends may be INT64_MAX). */
function clampRange(start: number, end: number, step: number, n: number): [number, number] {
  const norm = (v: number) => (v < 0 ? v + n : v);
  if (step > 0) return [Math.min(Math.max(norm(start), 0), n), Math.min(Math.max(norm(end), 0), n)];
  return [Math.min(Math.max(norm(start), -1), n - 1), Math.min(Math.max(norm(end), -1), n - 1)];
}

const Slice: Rule = (c) => {
  const x = req(c, 0);
  const xs = shapeOf(x), rank = xs.length;
  const starts = ints(c, c.input(1), "Slice's starts").map((d) => num(c, d, "a start"));
  const ends = ints(c, c.input(2), "Slice's ends");
  const axes = c.input(3) ? ints(c, c.input(3), "Slice's axes").map((d) => axisOf(c, num(c, d, "an axis"), rank)) : starts.map((_, k) => k);
  const steps = c.input(4) ? ints(c, c.input(4), "Slice's steps").map((d) => num(c, d, "a step")) : starts.map(() => 1);
  const ranges = axes.map((a, k) => {
    const n = xs[a]!;
    const end = ends[k]!;
    if (typeof n === "string" || typeof end === "string") {
      // A symbolic axis can only be kept whole (torch writes x[:, :n] with n from the shape of x).
      if (starts[k] === 0 && steps[k] === 1 && (end === n || (typeof end === "number" && end >= 2 ** 31 - 1))) return undefined;
      // A known axis cut to a symbolic length from 0 (a position table or a mask buffer cut to the sequence):
      // pos[:, :seq], which the call checks against the axis.
      if (typeof n === "number" && typeof end === "string" && starts[k] === 0 && steps[k] === 1) return { axis: a, start: 0, end, step: 1 } as Range;
      return c.fail(`slicing axis ${a} ('${n}') from ${starts[k]} to ${end}: a symbolic size is imported only as the whole axis, and a known one from 0 to a symbolic end`);
    }
    if (steps[k]! < 1) c.fail(`a negative or zero step (${steps[k]}) is not supported; Kiln slices forwards`);
    const [s, e] = clampRange(starts[k]!, end, steps[k]!, n);
    return { axis: a, start: s, end: Math.max(s, e), step: steps[k]! } as Range;
  }).filter((r): r is Range => r !== undefined);
  if (foldable(x) && ranges.every((r) => typeof r.end === "number")) {
    const outDims = [...x.dims];
    for (const r of ranges) outDims[r.axis] = Math.ceil(((r.end as number) - r.start) / r.step);
    return [foldIndex(x, outDims, (co) => co.map((v, k) => {
      const r = ranges.find((q) => q.axis === k);
      return r ? r.start + v * r.step : v;
    }))];
  }
  const s = sliceExpr(c.expr(x), xs, ranges);
  return [s.expr === c.expr(x) && x.kind === "tensor" ? x : c.emit(s.expr, s.shape, dtypeOf(x))];
};

const Split: Rule = (c) => {
  const x = req(c, 0);
  const xs = shapeOf(x);
  const axis = axisOf(c, c.attr("axis", 0), xs.length);
  const n = num(c, xs[axis]!, "the split axis");
  const outs = (c.node.output ?? []).length;
  const given = c.input(1) ? ints(c, c.input(1), "Split's sizes").map((d) => num(c, d, "a split size")) : c.attr<number[] | undefined>("split", undefined);
  const sizes = given ?? Array.from({ length: outs }, (_, k) => Math.min(Math.ceil(n / outs), n - k * Math.ceil(n / outs)));
  let at = 0;
  return sizes.map((len) => {
    const s = sliceExpr(c.expr(x), xs, [{ axis, start: at, end: (at += len), step: 1 }]);
    return c.emit(s.expr, s.shape, dtypeOf(x));
  });
};

const Concat: Rule = (c) => {
  const vs = (c.node.input ?? []).map((_, i) => c.input(i)).filter((v): v is Val => v !== undefined && shapeOf(v).every((d) => d !== 0));
  const rank = shapeOf(vs[0]!).length;
  const axis = axisOf(c, c.attr("axis", 0), rank);
  if (vs.every(foldable) && rank === 1) {
    const data = vs.flatMap((v) => Array.from(v.data as ArrayLike<Dim>));
    const float = vs.some((v) => v.float);
    return [constOf([data.length], data, float ? "f32" : "i32")];
  }
  if (vs.length === 1) return [vs[0]!];
  const shape = [...shapeOf(vs[0]!)];
  shape[axis] = vs.slice(1).reduce<Dim>((a, v) => {
    const d = shapeOf(v)[axis]!;
    return typeof a === "number" && typeof d === "number" ? a + d : c.fail(`concatenating along the symbolic axis ${axis} is not supported`);
  }, shape[axis]!);
  return [c.emit(`concat(${vs.map((v) => c.expr(v)).join(", ")}, axis: ${axis})`, shape, dtypeOf(vs[0]!))];
};

const KIND: Record<number, "f32" | "i32" | "bool"> = { 1: "f32", 10: "f32", 11: "f32", 16: "f32", 6: "i32", 7: "i32", 3: "i32", 2: "i32", 5: "i32", 12: "i32", 13: "i32", 9: "bool" };

const Cast: Rule = (c) => {
  const x = req(c, 0);
  const to = KIND[c.attr("to", 1)] ?? c.fail(`Cast to ONNX type ${c.attr("to", 1)} is not supported (floats, integers and bool are)`);
  if (foldable(x)) {
    if (to === "f32" && Array.from(x.data as ArrayLike<Dim>).some((d) => typeof d === "string")) c.fail(`a symbolic dim used as a float (the shape arithmetic computes with [${Array.from(x.data as ArrayLike<Dim>).join(", ")}]) is not folded`);
    const data = Array.from(x.data as ArrayLike<Dim>, (d) => (typeof d !== "number" ? d : to === "bool" ? +(d !== 0) : to === "i32" ? Math.trunc(d) : d));
    return [constOf(x.dims, data, to)];
  }
  const from = dtypeOf(x);
  if (from === to) return [x];
  if (to === "bool") return [c.emit(`${c.expr(x)} != 0`, shapeOf(x), "bool")];
  return [c.emit(`cast(${c.expr(x)}, ${to})`, shapeOf(x), to)];
};

const Expand: Rule = (c) => {
  const x = req(c, 0);
  const shape = broadcast(c, shapeOf(x), ints(c, c.input(1), "Expand's shape"));
  if (foldable(x)) return [foldIndex(x, shape.map((d) => num(c, d, "a folded Expand")), (co) => co.slice(co.length - x.dims.length).map((v, k) => (x.dims[k] === 1 ? 0 : v)))];
  if (shape.length === shapeOf(x).length && shape.every((d, k) => d === shapeOf(x)[k])) return [x];
  return [c.emit(`broadcast_to(${c.expr(x)}, ${list(shape)})`, shape, dtypeOf(x))];
};

const Where: Rule = (c) => {
  const cond = req(c, 0), a = req(c, 1), b = req(c, 2);
  const shape = broadcast(c, broadcast(c, shapeOf(cond), shapeOf(a)), shapeOf(b));
  if (foldable(cond) && foldable(a) && foldable(b)) {
    const s = shape.map((d) => num(c, d, "a folded Where"));
    return [constOf(s, Array.from({ length: prod(s) }, (_, i) => (constAt(cond, s, i) ? constAt(a, s, i) : constAt(b, s, i))), dtypeOf(a))];
  }
  return [c.emit(`where(${c.expr(cond)}, ${c.expr(a)}, ${c.expr(b)})`, shape, dtypeOf(a.kind === "tensor" ? a : b))];
};

const Range: Rule = (c) => {
  const bounds = [0, 1, 2].map((i) => req(c, i));
  if (bounds.every(foldable) && typeof bounds[1]!.data[0] === "string") {
    // Positions over a symbolic length (torch.arange(T) with T from a shape): arange(seq), written lazily.
    const [s, e, d] = bounds.map((v) => v.data[0]!);
    if (s !== 0 || d !== 1 || (bounds[0] as ConstVal).float) c.fail(`Range(${s}, ${e}, ${d}) over a symbolic end is imported from 0 with step 1 (integers)`);
    return [{ kind: "tensor", expr: `arange(${e})`, shape: [e!], dtype: "i32", iota: { start: 0, end: e as string } }];
  }
  const [s, e, d] = [0, 1, 2].map((i) => {
    const v = req(c, i);
    return foldable(v) ? num(c, v.data[0]!, "Range's bound") : c.fail(`Range needs constant bounds`);
  });
  const n = Math.max(0, Math.ceil((e! - s!) / d!));
  const v = req(c, 0) as ConstVal;
  return [constOf([n], Array.from({ length: n }, (_, k) => s! + k * d!), v.float ? "f32" : "i32")];
};

const ConstantOfShape: Rule = (c) => {
  const shape = ints(c, c.input(0), "ConstantOfShape's shape");
  const t = c.attr<Parameters<typeof readTensor>[0] | undefined>("value", undefined);
  const v = t ? readTensor(t, `node '${c.node.name}'`) : constOf([1], [0], "f32");
  const kind = v.bool ? "bool" : v.float ? "f32" : "i32";
  if (shape.every((d) => typeof d === "number")) return [constOf(shape as number[], Array.from({ length: prod(shape as number[]) }, () => v.data[0]!), kind)];
  if (kind !== "f32") c.fail(`ConstantOfShape of a symbolic shape is imported for floats only`);
  // -inf (nn.Transformer's causal mask) is written as the largest finite f32, as constants are (values.ts literal).
  return [c.emit(`full(${list(shape)}, ${literal(Number(v.data[0]), v) ?? c.fail(`the fill value ${v.data[0]} has no Kiln literal`)})`, shape)];
};

const Pow: Rule = (c) => {
  const x = req(c, 0), y = req(c, 1);
  return [c.emit(`${c.expr(x)} ** ${c.expr(y)}`, broadcast(c, shapeOf(x), shapeOf(y)))];
};

/** Trilu: upper (triu) or lower (tril) triangle of the last two axes from diagonal k; folded on constants. */
const Trilu: Rule = (c) => {
  const x = req(c, 0), kv = c.input(1);
  const k = kv ? num(c, ints(c, kv, "Trilu's k")[0]!, "k") : 0;
  const upper = c.attr("upper", 1) === 1;
  const keep = (i: number, j: number) => (upper ? j - i >= k : j - i <= k);
  if (foldable(x)) {
    const n = x.dims[x.dims.length - 1]!, m = x.dims[x.dims.length - 2]!;
    const data = Array.from(x.data as ArrayLike<Dim>, (v, idx) => (keep(Math.floor(idx / n) % m, idx % n) ? v : 0));
    return [constOf(x.dims, data, dtypeOf(x))];
  }
  return [c.emit(`${upper ? "triu" : "tril"}(${c.expr(x)}${k ? `, diagonal: ${k}` : ""})`, shapeOf(x), dtypeOf(x))];
};

/** Max/Min over any number of inputs, pairwise. */
function variadic(fn: string): Rule {
  return (c) => {
    const vs = (c.node.input ?? []).map((_, i) => req(c, i));
    const e = vs.slice(1).reduce((acc, v) => `${fn}(${acc}, ${c.expr(v)})`, c.expr(vs[0]!));
    return [c.emit(e, vs.slice(1).reduce((s, v) => broadcast(c, s, shapeOf(v)), shapeOf(vs[0]!)), dtypeOf(vs[0]!))];
  };
}

export const TENSOR_OPS: Record<string, Rule> = {
  Gather, Slice, Split, Concat, Cast, Expand, Where, Range, ConstantOfShape, Pow, Trilu,
  Equal: binary("=="),
  Less: binary("<"),
  Greater: binary(">"),
  LessOrEqual: binary("<="),
  GreaterOrEqual: binary(">="),
  Max: variadic("maximum"),
  Min: variadic("minimum"),
  Erf: unary("erf"),
  Sin: unary("sin"),
  Cos: unary("cos"),
  Floor: unary("floor"),
  Ceil: unary("ceil"),
  Round: unary("round"),
  Sign: unary("sign"),
  Softplus: unary("softplus"),
};
