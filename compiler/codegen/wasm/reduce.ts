// Codegen stage (wasm): reduce kernels (sum, mean, max, min over any set of axes) in one pass over the
// input in memory order, accumulating into the output initialised to the op's identity. A reduced inner
// axis is summed in four independent f32x4/i32x4 accumulators; a kept inner axis updates the output row
// four lanes at a time.
import type { ReduceKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { unsupportedDType } from "./context.js";
import { forRange, groupAxes, nest, product } from "./loops.js";

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

/** Params (in, out, ext_0, ..., ext_{rank-1}); out is contiguous over the kept axes. */
export function renderReduce(fb: FnBuilder, k: ReduceKernel): E {
  const m = fb.m;
  if (k.dtype !== "f32" && k.dtype !== "i32") {
    if (k.dtype === "f16" || k.dtype === "bf16" || k.dtype === "f64") throw unsupportedDType(k.dtype);
    throw new Error(`wasm backend: reduce ${k.op} over ${k.dtype} is not supported`);
  }
  if (k.op === "mean" && k.dtype !== "f32") throw new Error(`wasm backend: mean needs f32, got ${k.dtype}`);
  if (k.reduced.length !== k.rank) throw new Error(`wasm backend: reduce has ${k.reduced.length} flags for rank ${k.rank}`);
  const f = k.dtype === "f32";
  const op = combiner(fb, k);
  const load = (p: E, off = 0): E => (f ? m.f32.load(off, 4, p) : m.i32.load(off, 4, p));
  const store = (p: E, v: E): E => (f ? m.f32.store(0, 4, p, v) : m.i32.store(0, 4, p, v));
  const vload = (p: E, off = 0): E => m.v128.load(off, 4, p);
  const sconst = (c: number): E => (f ? m.f32.const(c) : m.i32.const(c));
  const vconst = (c: number): E => (f ? fb.splatF32(c) : fb.splatI32(c));
  const lane = (v: E, i: number): E => (f ? m.f32x4.extract_lane(v, i) : m.i32x4.extract_lane(v, i));
  const vt = f ? fb.t.f32 : fb.t.i32;

  // Adjacent reduced (or kept) axes are contiguous together: walk them as one axis.
  const groups = k.rank === 0 ? [{ axes: [] as number[], key: "k" }] : groupAxes(k.rank, (a) => (k.reduced[a] ? "r" : "k"));
  const G = groups.length;
  const pro: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((a) => fb.param(2 + a).get()));
    pro.push(p.set);
    return p.v;
  });
  const kept = groups.map((g, i) => (g.key === "k" ? i : -1)).filter((i) => i >= 0);
  const outN = product(fb, kept.map((g) => exts[g]!.get()));
  pro.push(outN.set);

  // Output initialisation to the identity (so empty reductions come out as 0 / -inf / +inf).
  const i = fb.i32();
  const q = fb.i32();
  const outN4 = fb.i32();
  pro.push(q.set(fb.param(1).get()), outN4.set(m.i32.and(outN.v.get(), m.i32.const(-4))));
  pro.push(forRange(fb, { i, from: m.i32.const(0), to: () => outN4.get(), step: 4, body: [m.v128.store(0, 4, q.get(), vconst(op.identity)), fb.inc(q, 16)] }));
  pro.push(forRange(fb, { i, to: () => outN.v.get(), body: [store(q.get(), sconst(op.identity)), fb.inc(q, 4)] }));

  // Byte strides of the output over outer groups: 0 (null) along reduced ones.
  const outStrides: (Var | null)[] = new Array<Var | null>(G - 1).fill(null);
  const acc = fb.i32();
  pro.push(acc.set(m.i32.const(4)));
  for (let g = G - 1; g >= 1; g--) {
    if (groups[g]!.key === "k") pro.push(acc.set(m.i32.mul(acc.get(), exts[g]!.get())));
    if (groups[g - 1]!.key === "k") {
      const v = fb.i32();
      pro.push(v.set(acc.get()));
      outStrides[g - 1] = v;
    }
  }
  const pIn = fb.i32();
  pro.push(pIn.set(fb.param(0).get()));
  const L = exts[G - 1]!;
  const innerReduced = groups[G - 1]!.key === "r";

  const inner = ([o]: readonly Var[]): E => {
    const j = fb.i32();
    const stmts: E[] = [];
    if (innerReduced) {
      const accs = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
      const L16 = fb.i32();
      const L4 = fb.i32();
      const s = fb.local(vt);
      stmts.push(...accs.map((a) => a.set(vconst(op.identity))));
      stmts.push(L16.set(m.i32.and(L.get(), m.i32.const(-16))), L4.set(m.i32.and(L.get(), m.i32.const(-4))));
      stmts.push(forRange(fb, {
        i: j, from: m.i32.const(0), to: () => L16.get(), step: 16,
        body: [...accs.map((a, n) => a.set(op.vector(a.get(), vload(pIn.get(), 16 * n)))), fb.inc(pIn, 64)],
      }));
      stmts.push(forRange(fb, { i: j, to: () => L4.get(), step: 4, body: [accs[0]!.set(op.vector(accs[0]!.get(), vload(pIn.get()))), fb.inc(pIn, 16)] }));
      const [a0, a1, a2, a3] = accs as [Var, Var, Var, Var];
      stmts.push(a0.set(op.vector(op.vector(a0.get(), a1.get()), op.vector(a2.get(), a3.get()))));
      stmts.push(s.set(op.scalar(op.scalar(lane(a0.get(), 0), lane(a0.get(), 1)), op.scalar(lane(a0.get(), 2), lane(a0.get(), 3)))));
      stmts.push(forRange(fb, { i: j, to: () => L.get(), body: [s.set(op.scalar(s.get(), load(pIn.get()))), fb.inc(pIn, 4)] }));
      stmts.push(store(o!.get(), op.scalar(load(o!.get()), s.get())));
    } else {
      const L4 = fb.i32();
      stmts.push(L4.set(m.i32.and(L.get(), m.i32.const(-4))));
      stmts.push(forRange(fb, {
        i: j, from: m.i32.const(0), to: () => L4.get(), step: 4,
        body: [m.v128.store(0, 4, o!.get(), op.vector(vload(o!.get()), vload(pIn.get()))), fb.inc(o!, 16), fb.inc(pIn, 16)],
      }));
      stmts.push(forRange(fb, { i: j, to: () => L.get(), body: [store(o!.get(), op.scalar(load(o!.get()), load(pIn.get()))), fb.inc(o!, 4), fb.inc(pIn, 4)] }));
    }
    return fb.seq(stmts);
  };

  // An empty input leaves the identity; mean still divides (0/0 = NaN).
  const skip = fb.label("empty");
  let anyEmpty = m.i32.const(0);
  for (const e of exts) anyEmpty = m.i32.or(anyEmpty, m.i32.eqz(e.get()));
  const walk = m.block(skip, [m.br(skip, anyEmpty), nest(fb, exts.slice(0, G - 1), [{ start: fb.param(1).get(), strides: outStrides }], inner)]);
  const tail: E[] = [];
  if (k.op === "mean") {
    const count = fb.local(fb.t.f32);
    let c = m.f32.const(1);
    groups.forEach((g, n) => { if (g.key === "r") c = m.f32.mul(c, m.f32.convert_u.i32(exts[n]!.get())); });
    tail.push(count.set(c), q.set(fb.param(1).get()));
    tail.push(forRange(fb, { i, from: m.i32.const(0), to: () => outN.v.get(), body: [m.f32.store(0, 4, q.get(), m.f32.div(m.f32.load(0, 4, q.get()), count.get())), fb.inc(q, 4)] }));
  }
  return fb.seq([...pro, walk, ...tail]);
}
