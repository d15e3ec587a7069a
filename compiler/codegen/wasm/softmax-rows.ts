// Codegen stage (wasm): softmax / log_softmax rows (kernel.ts "softmax_rows"), one row at a time so the row stays
// in L1 between its passes: the max and min, then exp(x - max) summed (and, for softmax, stored to out or to the
// saved exps), then out scaled by 1 / sum, or out = (x - max) - log(sum). The max / sub,exp,sum / div kernels it
// replaces, except the multiply by the reciprocal (within 1 ulp of the divide) and, for rows within 87.6 of their
// max, math.ts expRow in place of the `exp` op's code (the same bits in the plain build but where the two pick
// different n on an exact tie; the relaxed build's degree-5 polynomial within 2 ulp of e^x, not the same bits).
import { softmaxRowsBuffers, type EwExpr, type SoftmaxRowsKernel } from "../kernel.js";
import type { AttrsOf, PrimOp } from "../../ops/types.js";
import type { E, FnBuilder, Var } from "./context.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";
import { vectorLanes, type Lanes } from "./lanes.js";
import { EXP_ROW_MIN, EXP_ZERO_BELOW, expFast, expRow, Seq } from "./math.js";
import { horizontal } from "./row-horizontal.js";
import type { SimdVariant } from "./matmul-blocking.js";

const op = (name: PrimOp, args: EwExpr[]): EwExpr => ({ t: "op", op: name, attrs: {} as AttrsOf[PrimOp], dtype: "f32", args });

/**
 * Params (in, out, rows, cols); in and out contiguous f32 [rows, cols]. With `saves`: (in, [out,] [exps,] [maxes,]
 * sums, rows, cols) (kernel.ts softmaxRowsBuffers), the exps stored to `exps`, each row's max to `maxes` and its sum
 * to `sums`, out = exps * (1 / sum).
 */
export function renderSoftmaxRows(fb: FnBuilder, k: SoftmaxRowsKernel, simd: SimdVariant = "plain"): E {
  const m = fb.m;
  const hoisted: E[] = [];
  const saves = k.saves !== undefined && k.mode === "softmax";
  const bufs = softmaxRowsBuffers(k);
  const np = bufs.length + 1;
  const param = (b: (typeof bufs)[number]) => (bufs.includes(b) ? fb.param(1 + bufs.indexOf(b)) : undefined);
  const inP = fb.param(0);
  const [outP, expsP, maxP, sumsP] = [param("out"), param("exps"), param("maxes"), param("sums")];
  const hasOut = outP !== undefined;
  const [rowsP, colsP] = [np, np + 1].map((i) => fb.param(i)) as [Var, Var];
  // The exps go to their own buffer (`e`) when saved, else into out (scaled in place in pass 3).
  const e = expsP ? fb.i32() : undefined;
  const sp = sumsP ? fb.i32() : undefined;
  const mp = maxP ? fb.i32() : undefined;
  // exp(x - max) through the elementwise renderer, so it is the `exp` op's own code (math.ts expFast).
  const shifted = op("exp", [op("sub", [{ t: "in", index: 0 }, { t: "in", index: 1 }])]);
  const ex = new ExprRenderer(fb, { kind: "elementwise", rank: 2, inputs: [{ dtype: "f32", bcast: [false, false] }, { dtype: "f32", bcast: [false, true] }], out: "f32", expr: shifted });
  const lg = new ExprRenderer(fb, { kind: "elementwise", rank: 1, inputs: [{ dtype: "f32", bcast: [false] }], out: "f32", expr: op("log", [{ t: "in", index: 0 }]) });
  const r = fb.i32(), j = fb.i32(), p = fb.i32(), q = fb.i32(), rowBytes = fb.i32(), L4 = fb.i32(), L16 = fb.i32();
  const mx = fb.local(fb.t.f32), mxv = fb.local(fb.t.v128), s = fb.local(fb.t.f32), sv = fb.local(fb.t.v128), c = fb.local(fb.t.f32), cv = fb.local(fb.t.v128);
  const accs = [0, 1, 2, 3].map(() => fb.local(fb.t.v128)) as [Var, Var, Var, Var];
  const idx = (base: Var) => m.i32.add(base.get(), m.i32.shl(j.get(), m.i32.const(2)));

  // Pass 1: the row max and min, four f32x4 accumulators each. f32x4.pmax/pmin are one instruction each where V8
  // spells the NaN-propagating f32x4.max in about eight; they skip NaN lanes, which is harmless here: a NaN's
  // x - max is NaN, so the sum and every output of the row are NaN, as with a NaN max. Only where the exps are
  // stored for a backward are NaN lanes collected apart (x != x), so those exps match the unfused ones (all NaN).
  // pmax may keep -0 where max picks +0: x - max then differs only in the sign of a zero, and exp(±0) = 1.
  // min - max >= EXP_ROW_MIN (nearly every row) lets pass 2 run math.ts expRow, which has no per-vector test.
  const nan = saves ? fb.local(fb.t.v128) : undefined;
  const mins = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  const mn = fb.local(fb.t.f32), xs = fb.local(fb.t.f32);
  const load16 = (u: number, base: Var = p) => m.v128.load(16 * u, 4, idx(base));
  const vals = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  const isNan = (v: Var) => m.f32x4.ne(v.get(), v.get());
  const step = (u: number): E[] => [vals[u]!.set(load16(u)), accs[u]!.set(m.f32x4.pmax(accs[u]!.get(), vals[u]!.get())), mins[u]!.set(m.f32x4.pmin(mins[u]!.get(), vals[u]!.get()))];
  const pairs = (f: (a: E, b: E) => E, v: Var[]) => f(f(v[0]!.get(), v[1]!.get()), f(v[2]!.get(), v[3]!.get()));
  const tv = fb.local(fb.t.v128);
  const pmax = (a: E, b: E) => m.f32x4.pmax(a, b), pmin = (a: E, b: E) => m.f32x4.pmin(a, b);
  const maxPass: E[] = [
    ...accs.map((a) => a.set(fb.splatF32(-Infinity))),
    ...mins.map((a) => a.set(fb.splatF32(Infinity))),
    ...(nan ? [nan.set(fb.splatI32(0))] : []),
    forRange(fb, {
      i: j, from: m.i32.const(0), to: () => L16.get(), step: 16,
      body: [
        ...[0, 1, 2, 3].flatMap(step),
        ...(nan ? [nan.set(m.v128.or(nan.get(), m.v128.or(m.v128.or(isNan(vals[0]!), isNan(vals[1]!)), m.v128.or(isNan(vals[2]!), isNan(vals[3]!)))))] : []),
      ],
    }),
    forRange(fb, { i: j, to: () => L4.get(), step: 4, body: [...step(0), ...(nan ? [nan.set(m.v128.or(nan.get(), isNan(vals[0]!)))] : [])] }),
    accs[0].set(pairs(pmax, accs)),
    mins[0]!.set(pairs(pmin, mins)),
    // The accumulators hold no NaN (pmax / pmin skip them): their pmax is their max, but for the sign of a zero.
    mx.set(horizontal(fb, pmax, accs[0], tv)),
    mn.set(horizontal(fb, pmin, mins[0]!, tv)),
    ...(nan ? [m.if(m.v128.any_true(nan.get()), mx.set(m.f32.const(NaN)))] : []),
    forRange(fb, { i: j, to: () => colsP.get(), body: [xs.set(m.f32.load(0, 4, idx(p))), mx.set(m.f32.max(mx.get(), xs.get())), mn.set(m.f32.min(mn.get(), xs.get()))] }),
    ...(mp ? [m.f32.store(0, 4, mp.get(), mx.get())] : []),
  ];

  // Pass 2: s = sum of exp(x - max), stored (softmax) as it goes, 16 columns a trip then 4: expRow for rows within
  // its range, else per group of vectors as maskedGroup below (expRow, zeros, or the `exp` op's own code: expFast). One
  // f32x4 sum (four kept V8 spilling them, and exp has enough independent work per lane), its lanes added as
  // (0 + 1) + (2 + 3), then the scalar tail (the `exp` op's scalar form): the reduce kernel's order.
  const L = hoistedLanes(fb, simd, hoisted);
  const e1 = ex.element("scalar", (i) => (i === 0 ? m.f32.load(0, 4, idx(p)) : mx.get()));
  const es = fb.local(fb.t.f32);
  const keep = k.mode === "softmax" && (!saves || e !== undefined);
  const eq = e ?? q;
  const rowStep = (u: number): E[] => {
    const r1 = expRowInline(fb, L, simd === "relaxed", () => m.f32x4.sub(load16(u), mxv.get()));
    const ov = vals[u]!;
    return [...r1.stmts, ov.set(r1.value), ...(keep ? [m.v128.store(16 * u, 4, idx(eq), ov.get())] : []), sv.set(m.f32x4.add(sv.get(), ov.get()))];
  };
  const fastRow = m.f32.ge(m.f32.sub(mn.get(), mx.get()), m.f32.const(EXP_ROW_MIN));
  // Rows reaching below EXP_ROW_MIN (an attention's causal mask: scores of -1e9): expRow too, its lanes below
  // EXP_ZERO_BELOW set to +0 (expFast's value there; what expRow computes for them is discarded), a group of
  // vectors masked in every lane skipping the exp (most of a causal row's tail), and a group with a lane in
  // [EXP_ZERO_BELOW, EXP_ROW_MIN), where only expFast's general path is right (a subnormal e^x), taking the `exp`
  // op's code. NaN lanes are none of these and stay NaN. Per group, not by redoing the row (out may be in,
  // overwritten by then), and per group of 4 vectors rather than per vector: the branches of a causal row change
  // once, and per-vector branches left GPT's forward at 635-873 us from run to run (code placement, we think).
  // expFast's polynomial, not the relaxed build's p5: the `exp` op's bits in both builds (but for n on exact ties);
  // p5 here put the rows with -inf masks just past the 4e-7 the tests allow from the unfused kernels.
  const maskedGroup = (us: number[]): E[] => {
    const d = us.map(() => fb.local(fb.t.v128)), z = us.map(() => fb.local(fb.t.v128));
    const fold = (es: E[], f: (a: E, b: E) => E) => es.slice(1).reduce<E>((acc, x) => f(acc, x), es[0]!);
    const bad = fb.local(fb.t.v128);
    const fast: E[] = [], general: E[] = [];
    us.forEach((u, i) => {
      const r1 = expRowInline(fb, L, false, () => d[i]!.get());
      const gen = expInline(fb, L, () => d[i]!.get());
      fast.push(...r1.stmts, vals[u]!.set(m.v128.andnot(r1.value, z[i]!.get())));
      general.push(...gen.stmts, vals[u]!.set(gen.value));
    });
    return [
      ...us.flatMap((u, i) => [d[i]!.set(m.f32x4.sub(load16(u), mxv.get())), z[i]!.set(m.f32x4.lt(d[i]!.get(), L.f(EXP_ZERO_BELOW)))]),
      bad.set(fold(us.map((_, i) => m.v128.andnot(m.f32x4.lt(d[i]!.get(), L.f(EXP_ROW_MIN)), z[i]!.get())), (a, b) => m.v128.or(a, b))),
      m.if(m.i32.eq(m.i32x4.bitmask(fold(z.map((v) => v.get()), (a, b) => m.v128.and(a, b))), m.i32.const(15)),
        fb.seq(us.map((u) => vals[u]!.set(fb.splatI32(0)))),
        m.if(m.i32x4.bitmask(bad.get()), fb.seq(general), fb.seq(fast))),
      ...us.flatMap((u) => [...(keep ? [m.v128.store(16 * u, 4, idx(eq), vals[u]!.get())] : []), sv.set(m.f32x4.add(sv.get(), vals[u]!.get()))]),
    ];
  };
  const sumPass: E[] = [
    mxv.set(m.f32x4.splat(mx.get())),
    sv.set(fb.splatF32(0)),
    m.if(fastRow,
      fb.seq([
        forRange(fb, { i: j, from: m.i32.const(0), to: () => L16.get(), step: 16, body: [0, 1, 2, 3].flatMap(rowStep) }),
        forRange(fb, { i: j, to: () => L4.get(), step: 4, body: rowStep(0) }),
      ]),
      fb.seq([
        forRange(fb, { i: j, from: m.i32.const(0), to: () => L16.get(), step: 16, body: maskedGroup([0, 1, 2, 3]) }),
        forRange(fb, { i: j, to: () => L4.get(), step: 4, body: maskedGroup([0]) }),
      ])),
    s.set(horizontal(fb, (a, b) => m.f32x4.add(a, b), sv, tv)),
    forRange(fb, { i: j, to: () => colsP.get(), body: [...e1.stmts, es.set(e1.value), ...(keep ? [m.f32.store(0, 4, idx(eq), es.get())] : []), s.set(m.f32.add(s.get(), es.get()))] }),
    ...(sp ? [m.f32.store(0, 4, sp.get(), s.get())] : []),
  ];

  // Pass 3: softmax scales the stored exps by 1 / sum (read back from L1); log_softmax writes (x - max) - log(sum).
  // 16 columns a trip, then 4, then the scalar tail.
  const rowLoops = (vec: (u: number) => E, tail: E): E[] => [
    forRange(fb, { i: j, from: m.i32.const(0), to: () => L16.get(), step: 16, body: [0, 1, 2, 3].map(vec) }),
    forRange(fb, { i: j, to: () => L4.get(), step: 4, body: [vec(0)] }),
    forRange(fb, { i: j, to: () => colsP.get(), body: [tail] }),
  ];
  let last: E[];
  if (saves && !hasOut) {
    last = [];
  } else if (saves) {
    // out = exps * (1 / sum), as the softmax without saves (within 1 ulp of the div kernel's exps / sum): a divide
    // per vector was about a fifth of GPT's attention rows of 64 (softmax_saves, 1.3 ns per element).
    last = [
      c.set(m.f32.div(m.f32.const(1), s.get())),
      cv.set(m.f32x4.splat(c.get())),
      ...rowLoops((u) => m.v128.store(16 * u, 4, idx(q), m.f32x4.mul(load16(u, e!), cv.get())), m.f32.store(0, 4, idx(q), m.f32.mul(m.f32.load(0, 4, idx(e!)), c.get()))),
    ];
  } else if (keep) {
    last = [
      c.set(m.f32.div(m.f32.const(1), s.get())),
      cv.set(m.f32x4.splat(c.get())),
      ...rowLoops((u) => m.v128.store(16 * u, 4, idx(q), m.f32x4.mul(load16(u, q), cv.get())), m.f32.store(0, 4, idx(q), m.f32.mul(m.f32.load(0, 4, idx(q)), c.get()))),
    ];
  } else {
    const l1 = lg.element("scalar", () => s.get());
    last = [
      ...l1.stmts,
      c.set(l1.value),
      cv.set(m.f32x4.splat(c.get())),
      ...rowLoops((u) => m.v128.store(16 * u, 4, idx(q), m.f32x4.sub(m.f32x4.sub(load16(u), mxv.get()), cv.get())), m.f32.store(0, 4, idx(q), m.f32.sub(m.f32.sub(m.f32.load(0, 4, idx(p)), mx.get()), c.get()))),
    ];
  }

  return fb.seq([
    ...hoisted,
    rowBytes.set(m.i32.shl(colsP.get(), m.i32.const(2))),
    L16.set(m.i32.and(colsP.get(), m.i32.const(-16))),
    L4.set(m.i32.and(colsP.get(), m.i32.const(-4))),
    p.set(inP.get()),
    ...(outP ? [q.set(outP.get())] : []),
    ...(e ? [e.set(expsP!.get())] : []),
    ...(sp ? [sp.set(sumsP!.get())] : []),
    ...(mp ? [mp.set(maxP!.get())] : []),
    forRange(fb, {
      i: r, from: m.i32.const(0), to: () => rowsP.get(),
      body: [...maxPass, ...sumPass, ...last, fb.bump(p, rowBytes.get()), ...(outP ? [fb.bump(q, rowBytes.get())] : []), ...(e ? [fb.bump(e, rowBytes.get())] : []), ...(sp ? [fb.bump(sp, m.i32.const(4))] : []), ...(mp ? [fb.bump(mp, m.i32.const(4))] : [])],
    }),
  ]);
}

/** Vector lanes whose constants are read from locals set once before the row loop (`hoisted`). */
function hoistedLanes(fb: FnBuilder, simd: SimdVariant, hoisted: E[]): Lanes {
  const base = vectorLanes(fb.b, fb.m, simd === "relaxed");
  const locals = new Map<string, Var>();
  const cached = (key: string, make: () => E): E => {
    let v = locals.get(key);
    if (!v) {
      v = fb.local(fb.t.v128);
      hoisted.push(v.set(make()));
      locals.set(key, v);
    }
    return v.get();
  };
  const name = (c: number) => (Object.is(c, -0) ? "-0" : String(c));
  return { ...base, f: (c) => cached(`f${name(c)}`, () => base.f(c)), i: (c) => cached(`i${c}`, () => base.i(c)) };
}

/** The `exp` op's vector form (math.ts expFast, the same bits as its helper), its fast-path test shortened for x <= 0. */
function expInline(fb: FnBuilder, L: Lanes, arg: () => E): { stmts: E[]; value: E } {
  // arg is x - max: <= 0 or NaN in every lane (expFast's nonPositive).
  const m = fb.m;
  const x = fb.local(fb.t.v128);
  const s = new Seq(fb, L);
  const done = fb.label("exp");
  const general = expFast(s, () => x.get(), (v) => m.br(done, undefined, v), true);
  return { stmts: [x.set(arg())], value: m.block(done, [...s.stmts, general], fb.t.v128) };
}

/** math.ts expRow: no test, for x - max in [EXP_ROW_MIN, 0]; `p5` where relaxed multiply-adds fuse. */
function expRowInline(fb: FnBuilder, L: Lanes, p5: boolean, arg: () => E): { stmts: E[]; value: E } {
  const s = new Seq(fb, L);
  const x = s.f(arg());
  const value = expRow(s, x, p5);
  return { stmts: s.stmts, value };
}
