// Codegen stage (wasm): softmax / log_softmax backward rows (kernel.ts "softmax_grad_rows"), one row at a time so
// the row stays in L1 between its two passes: the row sum of the `sum` expression (16 columns a trip in four f32x4
// accumulators, then 4, then a scalar tail), the per-row value, then out written 4 columns a trip and a scalar
// tail. The expressions go through the elementwise renderer, so each op is the same code the unfused kernels ran;
// only the order of the sum's additions differs from the reduce kernel's.
import type { EwExpr, ElementwiseKernel, SoftmaxGradRowsKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";

type Mode = "scalar" | "vector";

/** Params (in_0, ..., in_{n-1}, out, rows, cols). */
export function renderSoftmaxGradRows(fb: FnBuilder, k: SoftmaxGradRowsKernel): E {
  const m = fb.m;
  const n = k.rowInputs.length;
  const ins = k.rowInputs.map((row) => ({ dtype: "f32" as const, bcast: [false, row] }));
  // The row value (input n) is one per row, like a row input.
  const withRow = [...ins, { dtype: "f32" as const, bcast: [false, true] }];
  const kernel = (inputs: ElementwiseKernel["inputs"], expr: EwExpr): ElementwiseKernel => ({ kind: "elementwise", rank: 2, inputs, out: "f32", expr });
  const sumR = new ExprRenderer(fb, kernel(ins, k.sum));
  const rowR = new ExprRenderer(fb, kernel(withRow, k.row));
  const outR = new ExprRenderer(fb, kernel(withRow, k.out));
  const vec = sumR.vectorizable && outR.vectorizable;
  const [rowsP, colsP] = [fb.param(n + 1), fb.param(n + 2)];
  const ptr = k.rowInputs.map(() => fb.i32());
  const q = fb.i32(), r = fb.i32(), o = fb.i32(), rowBytes = fb.i32(), B16 = fb.i32(), B4 = fb.i32();
  const used = (i: number) => sumR.inputUses[i]! + rowR.inputUses[i]! + outR.inputUses[i]! > 0;
  // Row inputs: loaded once per row, as a scalar and splatted.
  const rs = k.rowInputs.map((row, i) => (row && used(i) ? fb.local(fb.t.f32) : undefined));
  const rv = k.rowInputs.map((row, i) => (row && used(i) && vec ? fb.local(fb.t.v128) : undefined));
  const rowVal = fb.local(fb.t.f32), rowValV = fb.local(fb.t.v128), s = fb.local(fb.t.f32);

  /** One element (or 4 lanes) of `ex` at byte offset o + off; inputs read more than once are loaded once. */
  const element = (ex: ExprRenderer, mode: Mode, off: number, rowValue: () => E): { stmts: E[]; value: E } => {
    const pre: E[] = [];
    const get = k.rowInputs.map((row, i) => {
      if (row) return () => (mode === "vector" ? rv[i]! : rs[i]!).get();
      const addr = m.i32.add(ptr[i]!.get(), o.get());
      const load = () => (mode === "vector" ? m.v128.load(off, 4, addr) : m.f32.load(off, 4, addr));
      if (ex.inputUses[i]! <= 1) return load;
      const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
      pre.push(v.set(load()));
      return () => v.get();
    });
    const el = ex.element(mode, (i) => (i === n ? rowValue() : get[i]!()));
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
    ...(vec ? [
      rowValV.set(m.f32x4.splat(rowVal.get())),
      forRange(fb, { i: o, from: m.i32.const(0), to: () => B16.get(), step: 64, body: [0, 1, 2, 3].flatMap(outStep) }),
      forRange(fb, { i: o, to: () => B4.get(), step: 16, body: outStep(0) }),
    ] : [o.set(m.i32.const(0))]),
    forRange(fb, { i: o, to: () => rowBytes.get(), step: 4, body: [...tail2.stmts, m.f32.store(0, 4, m.i32.add(q.get(), o.get()), tail2.value)] }),
  ];

  const rowLoads = k.rowInputs.flatMap((_, i) => [
    ...(rs[i] ? [rs[i]!.set(m.f32.load(0, 4, ptr[i]!.get()))] : []),
    ...(rv[i] ? [rv[i]!.set(m.f32x4.splat(rs[i]!.get()))] : []),
  ]);
  return fb.seq([
    rowBytes.set(m.i32.shl(colsP.get(), m.i32.const(2))),
    B16.set(m.i32.and(rowBytes.get(), m.i32.const(-64))),
    B4.set(m.i32.and(rowBytes.get(), m.i32.const(-16))),
    ...ptr.map((p, i) => p.set(fb.param(i).get())),
    q.set(fb.param(n).get()),
    forRange(fb, {
      i: r, from: m.i32.const(0), to: () => rowsP.get(),
      body: [
        ...rowLoads,
        ...sumPass,
        ...outPass,
        ...ptr.map((p, i) => fb.bump(p, k.rowInputs[i] ? m.i32.const(4) : rowBytes.get())),
        fb.bump(q, rowBytes.get()),
      ],
    }),
  ]);
}
