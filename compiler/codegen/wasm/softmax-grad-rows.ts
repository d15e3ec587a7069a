// Codegen stage (wasm): softmax / log_softmax backward rows (kernel.ts "softmax_grad_rows"), one row at a time so
// the row stays in L1 between its two passes: the row sum of the `sum` expression (16 columns a trip in four f32x4
// accumulators, then 4, then a scalar tail), the per-row value, then out written 4 columns a trip and a scalar
// tail. The expressions go through the elementwise renderer, so each op is the same code the unfused kernels ran,
// except that a division by a value of the row (softmax's g / s and e / s) is a multiply by its reciprocal, taken
// once per row (within 1 ulp of the divide, as the forward's row kernel scales by 1 / sum: three divides per element
// made this kernel no faster than the two it replaces), and the order of the sum's additions. A tile input (an
// attention's mask, the same [rows, cols] for every outer index) is walked row by row and restarted every `rows` rows.
import type { EwExpr, ElementwiseKernel, SoftmaxGradRowsKernel } from "../kernel.js";
import type { AttrsOf } from "../../ops/types.js";
import type { E, FnBuilder, Var } from "./context.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";

type Mode = "scalar" | "vector";

/** Params (in_0, ..., in_{n-1}, out, outer, rows, cols). */
export function renderSoftmaxGradRows(fb: FnBuilder, k: SoftmaxGradRowsKernel): E {
  const m = fb.m;
  const n = k.inputs.length;
  // One value per row or per kernel: loaded per row like a row input.
  const rowInputs = k.inputs.map((i) => i.layout === "row" || i.layout === "one");
  const tile = k.inputs.map((i) => i.layout === "tile");
  const bool = k.inputs.map((i) => i.dtype === "bool");
  // Divisors one per row (row inputs, or the row value n): input n + 1 + d holds 1 / divisors[d].
  const divisors: number[] = [];
  const perRow = (i: number) => i === n || rowInputs[i] === true;
  const sumExpr = reciprocals(k.sum, perRow, divisors, n);
  const outExpr = reciprocals(k.out, perRow, divisors, n);
  // The row value (input n) and the reciprocals are one per row, like row inputs.
  const one = { dtype: "f32" as const, bcast: [false, true] };
  // Tiles are marked broadcast too, which only keeps a bool tile from turning the vector loops off: element() loads
  // 4 of its bytes as 0/1 lanes.
  const ins = [...k.inputs.map((i, j) => ({ dtype: i.dtype, bcast: [tile[j]!, rowInputs[j]! || tile[j]!] })), one, ...divisors.map(() => one)];
  const kernel = (expr: EwExpr): ElementwiseKernel => ({ kind: "elementwise", rank: 2, inputs: ins, out: "f32", expr });
  const sumR = new ExprRenderer(fb, kernel(sumExpr));
  const rowR = new ExprRenderer(fb, kernel(k.row));
  const outR = new ExprRenderer(fb, kernel(outExpr));
  const recS = divisors.map(() => fb.local(fb.t.f32)), recV = divisors.map(() => fb.local(fb.t.v128));
  /** The reciprocals of the divisors `which` picks, as scalars and splatted. */
  const takeReciprocals = (which: (i: number) => boolean): E[] => divisors.flatMap((i, d) => which(i) ? [
    recS[d]!.set(m.f32.div(m.f32.const(1), i === n ? rowVal.get() : rs[i]!.get())),
    recV[d]!.set(m.f32x4.splat(recS[d]!.get())),
  ] : []);
  const vec = sumR.vectorizable && outR.vectorizable;
  const [outerP, rowsP, colsP] = [fb.param(n + 1), fb.param(n + 2), fb.param(n + 3)];
  const ptr = rowInputs.map(() => fb.i32());
  const q = fb.i32(), r = fb.i32(), o = fb.i32(), rowBytes = fb.i32(), B16 = fb.i32(), B4 = fb.i32(), total = fb.i32(), rr = fb.i32();
  const used = (i: number) => sumR.inputUses[i]! + rowR.inputUses[i]! + outR.inputUses[i]! > 0 || divisors.includes(i);
  // Row inputs: loaded once per row, as a scalar and splatted.
  const rs = rowInputs.map((row, i) => (row && used(i) ? fb.local(fb.t.f32) : undefined));
  const rv = rowInputs.map((row, i) => (row && used(i) && vec ? fb.local(fb.t.v128) : undefined));
  const rowVal = fb.local(fb.t.f32), rowValV = fb.local(fb.t.v128), s = fb.local(fb.t.f32);

  /** One element (or 4 lanes) of `ex` at byte offset o + off; inputs read more than once are loaded once. */
  const element = (ex: ExprRenderer, mode: Mode, off: number, rowValue: () => E): { stmts: E[]; value: E } => {
    const pre: E[] = [];
    const get = rowInputs.map((row, i) => {
      if (row) return () => (mode === "vector" ? rv[i]! : rs[i]!).get();
      // o counts f32 bytes: a bool tile's element is at o / 4, as 0/1 (one byte, or 4 widened to i32x4 lanes).
      const addr = m.i32.add(ptr[i]!.get(), bool[i] ? m.i32.shr_u(o.get(), m.i32.const(2)) : o.get());
      const load = (): E => bool[i]
        ? (mode === "vector" ? m.i32x4.extend_low_i16x8_u(m.i16x8.extend_low_i8x16_u(m.v128.load32_zero(off / 4, 1, addr))) : m.i32.load8_u(off / 4, 1, addr))
        : (mode === "vector" ? m.v128.load(off, 4, addr) : m.f32.load(off, 4, addr));
      if (ex.inputUses[i]! <= 1) return load;
      const v = fb.local(mode === "vector" ? fb.t.v128 : bool[i] ? fb.t.i32 : fb.t.f32);
      pre.push(v.set(load()));
      return () => v.get();
    });
    const el = ex.element(mode, (i) => (i === n ? rowValue() : i > n ? (mode === "vector" ? recV : recS)[i - n - 1]!.get() : get[i]!()));
    return { stmts: [...pre, ...el.stmts], value: el.value };
  };

  // Pass 1: the row sum.
  const accs = [0, 1, 2, 3].map(() => fb.local(fb.t.v128)) as Var[];
  const es = fb.local(fb.t.f32);
  const noRow = () => { throw new Error("internal: the sum expression reads no row value"); };
  const sumStep = (u: number): E[] => {
    const el = element(sumR, "vector", 16 * u, noRow);
    return [...el.stmts, accs[u]!.set(m.f32x4.add(accs[u]!.get(), el.value))];
  };
  const lane = (v: E, i: number) => m.f32x4.extract_lane(v, i);
  const tail1 = element(sumR, "scalar", 0, noRow);
  const sumPass: E[] = [
    s.set(m.f32.const(0)),
    ...(vec ? [
      ...accs.map((a) => a.set(fb.splatF32(0))),
      forRange(fb, { i: o, from: m.i32.const(0), to: () => B16.get(), step: 64, body: [0, 1, 2, 3].flatMap(sumStep) }),
      forRange(fb, { i: o, to: () => B4.get(), step: 16, body: sumStep(0) }),
      accs[0]!.set(m.f32x4.add(m.f32x4.add(accs[0]!.get(), accs[1]!.get()), m.f32x4.add(accs[2]!.get(), accs[3]!.get()))),
      s.set(m.f32.add(m.f32.add(lane(accs[0]!.get(), 0), lane(accs[0]!.get(), 1)), m.f32.add(lane(accs[0]!.get(), 2), lane(accs[0]!.get(), 3)))),
    ] : [o.set(m.i32.const(0))]),
    forRange(fb, { i: o, to: () => rowBytes.get(), step: 4, body: [...tail1.stmts, es.set(tail1.value), s.set(m.f32.add(s.get(), es.get()))] }),
  ];

  // The per-row value, then pass 2: out, 16 columns a trip, then 4, then the scalar tail.
  const rv1 = rowR.element("scalar", (i) => (i === n ? s.get() : rs[i]!.get()));
  const outStep = (u: number): E[] => {
    const el = element(outR, "vector", 16 * u, () => rowValV.get());
    return [...el.stmts, m.v128.store(16 * u, 4, m.i32.add(q.get(), o.get()), el.value)];
  };
  const tail2 = element(outR, "scalar", 0, () => rowVal.get());
  const outPass: E[] = [
    ...rv1.stmts,
    rowVal.set(rv1.value),
    ...takeReciprocals((i) => i === n),
    ...(vec ? [
      rowValV.set(m.f32x4.splat(rowVal.get())),
      forRange(fb, { i: o, from: m.i32.const(0), to: () => B16.get(), step: 64, body: [0, 1, 2, 3].flatMap(outStep) }),
      forRange(fb, { i: o, to: () => B4.get(), step: 16, body: outStep(0) }),
    ] : [o.set(m.i32.const(0))]),
    forRange(fb, { i: o, to: () => rowBytes.get(), step: 4, body: [...tail2.stmts, m.f32.store(0, 4, m.i32.add(q.get(), o.get()), tail2.value)] }),
  ];

  const rowLoads = rowInputs.flatMap((_, i) => [
    ...(rs[i] ? [rs[i]!.set(m.f32.load(0, 4, ptr[i]!.get()))] : []),
    ...(rv[i] ? [rv[i]!.set(m.f32x4.splat(rs[i]!.get()))] : []),
  ]);
  // A tile's pointer walks its rows and starts over every `rows` rows (each outer index).
  const tileRow = (i: number) => (bool[i] ? colsP.get() : rowBytes.get());
  const advance: E[] = [
    ...ptr.flatMap((p, i) => (k.inputs[i]!.layout === "one" ? [] : [fb.bump(p, k.inputs[i]!.layout === "row" ? m.i32.const(4) : tile[i] ? tileRow(i) : rowBytes.get())])),
    fb.bump(q, rowBytes.get()),
    ...(tile.some((t) => t) ? [
      fb.inc(rr, 1),
      m.if(m.i32.eq(rr.get(), rowsP.get()), fb.seq([rr.set(m.i32.const(0)), ...ptr.flatMap((p, i) => (tile[i] ? [p.set(fb.param(i).get())] : []))])),
    ] : []),
  ];
  return fb.seq([
    rowBytes.set(m.i32.shl(colsP.get(), m.i32.const(2))),
    B16.set(m.i32.and(rowBytes.get(), m.i32.const(-64))),
    B4.set(m.i32.and(rowBytes.get(), m.i32.const(-16))),
    total.set(m.i32.mul(outerP.get(), rowsP.get())),
    rr.set(m.i32.const(0)),
    ...ptr.map((p, i) => p.set(fb.param(i).get())),
    q.set(fb.param(n).get()),
    forRange(fb, { i: r, from: m.i32.const(0), to: () => total.get(), body: [...rowLoads, ...takeReciprocals((i) => i < n), ...sumPass, ...outPass, ...advance] }),
  ]);
}

/**
 * `e` with each div(a, x), x an input one per row, as mul(a, input n + 1 + d), divisors[d] = x (appended as met);
 * a DAG stays one (memoised by node).
 */
function reciprocals(e: EwExpr, perRow: (i: number) => boolean, divisors: number[], n: number, memo = new Map<EwExpr, EwExpr>()): EwExpr {
  if (e.t !== "op") return e;
  const known = memo.get(e);
  if (known) return known;
  const [a, b] = e.args;
  let r: EwExpr;
  if (e.op === "div" && e.dtype === "f32" && b?.t === "in" && perRow(b.index)) {
    if (!divisors.includes(b.index)) divisors.push(b.index);
    r = { t: "op", op: "mul", attrs: {} as AttrsOf["mul"], dtype: "f32", args: [reciprocals(a!, perRow, divisors, n, memo), { t: "in", index: n + 1 + divisors.indexOf(b.index) }] };
  } else {
    r = { ...e, args: e.args.map((x) => reciprocals(x, perRow, divisors, n, memo)) };
  }
  memo.set(e, r);
  return r;
}
