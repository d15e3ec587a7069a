// Codegen stage (wasm): reduce kernels (sum, mean, max, min over any set of axes) in one pass over the
// input in memory order, accumulating into the output initialised to the op's identity; a fused prologue
// computes each value reduced from several (broadcast) inputs on the fly. A reduced inner
// axis is summed in four independent f32x4/i32x4 accumulators; a kept inner axis updates the output row
// four lanes at a time. A short reduced inner axis (pooling windows) puts four output rows in the lanes instead
// (reduce-short.ts).
import type { EwExpr, ReduceKernel } from "../kernel.js";
import { dtypeBytes } from "../../ir/types.js";
import type { E, FnBuilder, Var } from "./context.js";
import { unsupportedDType } from "./context.js";
import { isFloatValue, loadLanes, loadValue, valueType } from "./access.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange, groupAxes, nest, product } from "./loops.js";
import { FiniteMask, flagParams } from "./finite.js";
import { SHORT_REDUCE_MAX, shortRows, shortRowsExpr, type ShortInput } from "./reduce-short.js";

interface Combine {
  scalar(a: E, b: E): E;
  vector(a: E, b: E): E;
  identity: number;
}

function combiner(fb: FnBuilder, k: ReduceKernel): Combine {
  const m = fb.m;
  const f = k.dtype === "f32";
  const i32Pick = (gt: boolean) => (a: E, b: E): E =>
    fb.bind(fb.t.i32, a, (x) => fb.bind(fb.t.i32, b, (y) => m.select(gt ? m.i32.gt_s(x(), y()) : m.i32.lt_s(x(), y()), x(), y())));
  switch (k.op) {
    case "sum": case "mean":
      return f ? { scalar: (a, b) => m.f32.add(a, b), vector: (a, b) => m.f32x4.add(a, b), identity: 0 }
        : { scalar: (a, b) => m.i32.add(a, b), vector: (a, b) => m.i32x4.add(a, b), identity: 0 };
    case "max":
      return f ? { scalar: (a, b) => m.f32.max(a, b), vector: (a, b) => m.f32x4.max(a, b), identity: -Infinity }
        : { scalar: i32Pick(true), vector: (a, b) => m.i32x4.max_s(a, b), identity: -0x80000000 };
    case "min":
      return f ? { scalar: (a, b) => m.f32.min(a, b), vector: (a, b) => m.f32x4.min(a, b), identity: Infinity }
        : { scalar: i32Pick(false), vector: (a, b) => m.i32x4.min_s(a, b), identity: 0x7fffffff };
  }
}

/**
 * Params (in_0, ..., in_{n-1}, out, [stored,] [flag,] ext_0, ..., ext_{rank-1}); out is contiguous over the kept axes. Without a
 * prologue the one input is the value reduced; with one, the value is its expression over the (broadcast)
 * inputs, rendered by the elementwise ExprRenderer in the same vector or scalar form as the accumulation.
 */
export function renderReduce(fb: FnBuilder, k: ReduceKernel): E {
  const m = fb.m;
  if (k.dtype !== "f32" && k.dtype !== "i32") {
    if (k.dtype === "f16" || k.dtype === "bf16" || k.dtype === "f64") throw unsupportedDType(k.dtype);
    throw new Error(`wasm backend: reduce ${k.op} over ${k.dtype} is not supported`);
  }
  if (k.op === "mean" && k.dtype !== "f32") throw new Error(`wasm backend: mean needs f32, got ${k.dtype}`);
  if (k.reduced.length !== k.rank) throw new Error(`wasm backend: reduce has ${k.reduced.length} flags for rank ${k.rank}`);
  const pro = k.prologue ?? { inputs: [{ dtype: k.dtype, bcast: k.reduced.map(() => false) }], expr: { t: "in", index: 0 } as EwExpr };
  pro.inputs.forEach((inp, i) => {
    if (inp.bcast.length !== k.rank) throw new Error(`wasm backend: reduce input ${i} bcast has ${inp.bcast.length} axes, rank is ${k.rank}`);
  });
  const n = pro.inputs.length;
  // The stored copy of the value reduced (prologue.stored): a pointer param after out, walked like an input.
  const stored = k.prologue?.stored === true;
  if (stored && k.dtype !== "f32") throw new Error(`wasm backend: a reduce prologue stores f32 only, got ${k.dtype} (compiler bug)`);
  const ns = stored ? 1 : 0;
  // all_finite's flag (kernel.ts "flag outputs") follows out and stored; FiniteMask throws for an i32 out.
  const fin = k.flag ? new FiniteMask(fb, fb.param(n + 1 + ns), k.dtype) : null;
  const e0 = n + 1 + ns + flagParams(k);
  const ex = new ExprRenderer(fb, { kind: "elementwise", rank: k.rank, inputs: pro.inputs, out: k.dtype, expr: pro.expr });
  const vec = ex.vectorizable;
  const bytes = pro.inputs.map((i) => dtypeBytes(i.dtype));
  const f = k.dtype === "f32";
  const op = combiner(fb, k);
  const load = (p: E, off = 0): E => (f ? m.f32.load(off, 4, p) : m.i32.load(off, 4, p));
  const store = (p: E, v: E): E => (f ? m.f32.store(0, 4, p, v) : m.i32.store(0, 4, p, v));
  const vload = (p: E, off = 0): E => m.v128.load(off, 4, p);
  const sconst = (c: number): E => (f ? m.f32.const(c) : m.i32.const(c));
  const vconst = (c: number): E => (f ? fb.splatF32(c) : fb.splatI32(c));
  const lane = (v: E, i: number): E => (f ? m.f32x4.extract_lane(v, i) : m.i32x4.extract_lane(v, i));
  const vt = f ? fb.t.f32 : fb.t.i32;

  // Adjacent axes reduced (or kept) together and broadcast alike in every input are walked as one axis.
  const keyOf = (a: number) => (k.reduced[a] ? "r" : "k") + pro.inputs.map((i) => (i.bcast[a] ? "1" : "0")).join("");
  const groups = k.rank === 0 ? [{ axes: [] as number[], key: "k" + "0".repeat(n) }] : groupAxes(k.rank, keyOf);
  const G = groups.length;
  const kept = (g: number) => groups[g]!.key[0] === "k";
  const bcastIn = (g: number, i: number) => groups[g]!.key[i + 1] === "1";
  const pro0: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((a) => fb.param(e0 + a).get()));
    pro0.push(p.set);
    return p.v;
  });
  const outN = product(fb, groups.flatMap((_, g) => (kept(g) ? [exts[g]!.get()] : [])));
  pro0.push(outN.set);

  // Output initialisation to the identity (so empty reductions come out as 0 / -inf / +inf).
  const i = fb.i32();
  const q = fb.i32();
  const outN4 = fb.i32();
  pro0.push(q.set(fb.param(n).get()), outN4.set(m.i32.and(outN.v.get(), m.i32.const(-4))));
  pro0.push(forRange(fb, { i, from: m.i32.const(0), to: () => outN4.get(), step: 4, body: [m.v128.store(0, 4, q.get(), vconst(op.identity)), fb.inc(q, 16)] }));
  pro0.push(forRange(fb, { i, to: () => outN.v.get(), body: [store(q.get(), sconst(op.identity)), fb.inc(q, 4)] }));

  // Byte strides over the outer groups of the output (0 = null along reduced ones) and of each input (null
  // where it is broadcast).
  const stridesOf = (elemBytes: number, walks: (g: number) => boolean): (Var | null)[] => {
    const s: (Var | null)[] = new Array<Var | null>(G - 1).fill(null);
    const acc = fb.i32();
    pro0.push(acc.set(m.i32.const(elemBytes)));
    for (let g = G - 1; g >= 1; g--) {
      if (walks(g)) pro0.push(acc.set(m.i32.mul(acc.get(), exts[g]!.get())));
      if (walks(g - 1)) {
        const v = fb.i32();
        pro0.push(v.set(acc.get()));
        s[g - 1] = v;
      }
    }
    return s;
  };
  const outStrides = stridesOf(4, kept);
  const inStrides = pro.inputs.map((_, j) => stridesOf(bytes[j]!, (g) => !bcastIn(g, j)));
  const storeStrides = stored ? stridesOf(4, () => true) : [];
  const L = exts[G - 1]!;
  const innerReduced = !kept(G - 1);
  // Where each output's final value is known. "row": only the inner group is reduced, so the one store per output
  // row is final and is checked there; "mean": the division pass checks; "after": a reduced outer group updates
  // outputs several times (and max's -Inf identity is not final), so out is read back after the walk.
  const checkAt = !fin ? null : k.op === "mean" ? "mean" : innerReduced && groups.slice(0, G - 1).every((_, g) => kept(g)) ? "row" : "after";

  const inner = ([o, ...ptrs]: readonly Var[]): E => {
    const ptr = ptrs.slice(0, n);
    const ps = stored ? ptrs[n]! : null;
    const j = fb.i32();
    const stmts: E[] = [];
    // Inputs broadcast along the inner axis: one load per row, hoisted (and splatted for the vector loop).
    const hoisted = pro.inputs.map((inp, x) => {
      if (!bcastIn(G - 1, x) || ex.inputUses[x] === 0) return null;
      const s = fb.local(valueType(fb.t, inp.dtype));
      stmts.push(s.set(loadValue(fb, inp.dtype, ptr[x]!.get())));
      let v: Var | null = null;
      if (vec) {
        v = fb.local(fb.t.v128);
        stmts.push(v.set(isFloatValue(inp.dtype) ? m.f32x4.splat(s.get()) : m.i32x4.splat(s.get())));
      }
      return { s, v };
    });
    const walked = pro.inputs.map((_, x) => !hoisted[x] && ex.inputUses[x]! > 0);
    const advance = (elems: number): E[] => [
      ...pro.inputs.flatMap((_, x) => (walked[x] ? [fb.inc(ptr[x]!, bytes[x]! * elems)] : [])),
      ...(ps ? [fb.inc(ps, 4 * elems)] : []),
    ];
    // The value reduced at element `at` (vector mode: elements at..at+3) past the current pointers.
    const value = (mode: "scalar" | "vector", at: number): { stmts: E[]; value: E } => {
      const pre: E[] = [];
      const vals = pro.inputs.map((inp, x) => {
        const h = hoisted[x];
        if (h) return () => (mode === "vector" ? h.v! : h.s).get();
        const ld = (): E => (mode === "vector" ? loadLanes(fb, inp.dtype, ptr[x]!.get(), at * bytes[x]!) : loadValue(fb, inp.dtype, ptr[x]!.get(), at * bytes[x]!));
        if (ex.inputUses[x]! <= 1) return ld;
        const v = fb.local(mode === "vector" ? fb.t.v128 : valueType(fb.t, inp.dtype));
        pre.push(v.set(ld()));
        return () => v.get();
      });
      const el = ex.element(mode, (x) => vals[x]!());
      if (!ps) return { stmts: [...pre, ...el.stmts], value: el.value };
      // Stored as well as reduced: computed once into a local.
      const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
      const st = mode === "vector" ? m.v128.store(at * 4, 4, ps.get(), v.get()) : m.f32.store(at * 4, 4, ps.get(), v.get());
      return { stmts: [...pre, ...el.stmts, v.set(el.value), st], value: v.get() };
    };
    if (innerReduced) {
      const s = fb.local(vt);
      if (vec) {
        const accs = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
        const L16 = fb.i32();
        const L4 = fb.i32();
        stmts.push(...accs.map((a) => a.set(vconst(op.identity))));
        stmts.push(L16.set(m.i32.and(L.get(), m.i32.const(-16))), L4.set(m.i32.and(L.get(), m.i32.const(-4))));
        const unrolled = accs.flatMap((a, u) => {
          const el = value("vector", 4 * u);
          return [...el.stmts, a.set(op.vector(a.get(), el.value))];
        });
        // A plain load is latency-bound on the adds: four accumulators. A computed value (a prologue) already
        // has enough independent work per lane; unrolled it ran slower (register pressure around exp).
        if (pro.expr.t === "in") stmts.push(forRange(fb, { i: j, from: m.i32.const(0), to: () => L16.get(), step: 16, body: [...unrolled, ...advance(16)] }));
        else stmts.push(j.set(m.i32.const(0)));
        const el4 = value("vector", 0);
        stmts.push(forRange(fb, { i: j, to: () => L4.get(), step: 4, body: [...el4.stmts, accs[0]!.set(op.vector(accs[0]!.get(), el4.value)), ...advance(4)] }));
        const [a0, a1, a2, a3] = accs as [Var, Var, Var, Var];
        stmts.push(a0.set(op.vector(op.vector(a0.get(), a1.get()), op.vector(a2.get(), a3.get()))));
        stmts.push(s.set(op.scalar(op.scalar(lane(a0.get(), 0), lane(a0.get(), 1)), op.scalar(lane(a0.get(), 2), lane(a0.get(), 3)))));
      } else {
        stmts.push(s.set(sconst(op.identity)), j.set(m.i32.const(0)));
      }
      const el1 = value("scalar", 0);
      stmts.push(forRange(fb, { i: j, to: () => L.get(), body: [...el1.stmts, s.set(op.scalar(s.get(), el1.value)), ...advance(1)] }));
      if (checkAt === "row") {
        const r = fb.local(fb.t.f32);
        stmts.push(r.set(op.scalar(load(o!.get()), s.get())), store(o!.get(), r.get()), fin!.scalar(() => r.get()));
      } else {
        stmts.push(store(o!.get(), op.scalar(load(o!.get()), s.get())));
      }
    } else {
      if (vec) {
        const L4 = fb.i32();
        stmts.push(L4.set(m.i32.and(L.get(), m.i32.const(-4))));
        const el4 = value("vector", 0);
        stmts.push(forRange(fb, {
          i: j, from: m.i32.const(0), to: () => L4.get(), step: 4,
          body: [...el4.stmts, m.v128.store(0, 4, o!.get(), op.vector(vload(o!.get()), el4.value)), fb.inc(o!, 16), ...advance(4)],
        }));
      } else {
        stmts.push(j.set(m.i32.const(0)));
      }
      const el1 = value("scalar", 0);
      stmts.push(forRange(fb, { i: j, to: () => L.get(), body: [...el1.stmts, store(o!.get(), op.scalar(load(o!.get()), el1.value)), fb.inc(o!, 4), ...advance(1)] }));
    }
    return fb.seq(stmts);
  };

  // An empty input leaves the identity; mean still divides (0/0 = NaN).
  const skip = fb.label("empty");
  let anyEmpty = m.i32.const(0);
  for (const e of exts) anyEmpty = m.i32.or(anyEmpty, m.i32.eqz(e.get()));
  const empty = fb.i32();
  if (fin) pro0.push(fin.init(), empty.set(anyEmpty));
  const ptrs = [
    { start: fb.param(n).get(), strides: outStrides },
    ...pro.inputs.map((_, x) => ({ start: fb.param(x).get(), strides: inStrides[x]! })),
    ...(stored ? [{ start: fb.param(n + 1).get(), strides: storeStrides }] : []),
  ];
  let rows = nest(fb, exts.slice(0, G - 1), ptrs, inner);
  // A plain input (no prologue) reduced over a short inner axis whose rows give contiguous outputs: the
  // row-parallel path when the axis is at most SHORT_REDUCE_MAX long (a runtime extent), else the general one.
  // With a flag whose check sits in the general path's row stores, the outputs are read back instead (the same
  // values either way: a flag never changes what a kernel computes).
  if (innerReduced && G >= 2 && kept(G - 2) && !k.prologue) {
    const short = nest(fb, exts.slice(0, G - 2), ptrs.map((p) => ({ start: p.start, strides: p.strides.slice(0, G - 2) })),
      ([o, x]) => shortRows(fb, { f32: f, identity: op.identity, scalar: op.scalar, vector: op.vector }, o!, x!, exts[G - 2]!, L));
    const check = checkAt === "row" ? [fin!.span(fb.param(n).get(), outN.v)] : [];
    rows = m.if(m.i32.le_u(L.get(), m.i32.const(SHORT_REDUCE_MAX)), fb.seq([short, ...check]), rows);
  } else if (innerReduced && G >= 2 && kept(G - 2) && vec && !stored && pro.inputs.every((x) => x.dtype === "f32" || x.dtype === "i32")) {
    // The same with a fused prologue (max-pool backward's first-maximum index): each input gathered, loaded or
    // splatted per its broadcast along the rows and the taps.
    const kinds = pro.inputs.map((_, x): ShortInput["kind"] => {
      const [alongRows, alongTaps] = [bcastIn(G - 2, x), bcastIn(G - 1, x)];
      return alongRows && alongTaps ? "const" : alongTaps ? "row" : alongRows ? "tap" : "gather";
    });
    const short = nest(fb, exts.slice(0, G - 2), ptrs.map((p) => ({ start: p.start, strides: p.strides.slice(0, G - 2) })), ([o, ...xs]) => {
      const ins = pro.inputs.map((inp, x): ShortInput => ({ ptr: xs[x]!, kind: kinds[x]!, used: ex.inputUses[x]! > 0, f32: inp.dtype === "f32" }));
      const value = (mode: "scalar" | "vector", input: (i: number) => E) => ex.element(mode, input);
      return shortRowsExpr(fb, { f32: f, identity: op.identity, scalar: op.scalar, vector: op.vector }, o!, ins, value, exts[G - 2]!, L);
    });
    const check = checkAt === "row" ? [fin!.span(fb.param(n).get(), outN.v)] : [];
    rows = m.if(m.i32.le_u(L.get(), m.i32.const(SHORT_REDUCE_MAX)), fb.seq([short, ...check]), rows);
  }
  const walk = m.block(skip, [m.br(skip, fin ? empty.get() : anyEmpty), rows]);
  const tail: E[] = [];
  if (k.op === "mean") {
    const count = fb.local(fb.t.f32);
    let c = m.f32.const(1);
    groups.forEach((_, g) => { if (!kept(g)) c = m.f32.mul(c, m.f32.convert_u.i32(exts[g]!.get())); });
    tail.push(count.set(c), q.set(fb.param(n).get()));
    const r = fb.local(fb.t.f32);
    const check = checkAt === "mean" ? [fin!.scalar(() => r.get())] : [];
    tail.push(forRange(fb, { i, from: m.i32.const(0), to: () => outN.v.get(), body: [r.set(m.f32.div(m.f32.load(0, 4, q.get()), count.get())), m.f32.store(0, 4, q.get(), r.get()), ...check, fb.inc(q, 4)] }));
  }
  // An empty reduction never reaches the row stores but leaves max's -Inf (min's +Inf): read back then too.
  if (checkAt === "after") tail.push(fin!.span(fb.param(n).get(), outN.v));
  else if (checkAt === "row") tail.push(m.if(empty.get(), fin!.span(fb.param(n).get(), outN.v)));
  if (fin) tail.push(fin.flush());
  return fb.seq([...pro0, walk, ...tail]);
}
