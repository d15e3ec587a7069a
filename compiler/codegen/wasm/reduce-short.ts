// Codegen stage (wasm): reductions over a short contiguous inner axis (a pooling window's taps, L <= 16) with the
// rows in the vector lanes: four output rows per f32x4/i32x4, so the per-row setup and horizontal combine of the
// general path (reduce.ts, which puts the reduced axis in the lanes) disappear.
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";

/** The longest reduced inner axis this path takes; beyond it the general path's lane-parallel loop wins. */
export const SHORT_REDUCE_MAX = 16;

export interface ShortReduce {
  readonly f32: boolean;
  readonly identity: number;
  scalar(a: E, b: E): E;
  vector(a: E, b: E): E;
}

/** i8x16.shuffle mask taking 32-bit lanes (0-3 from the first operand, 4-7 from the second). */
const lanes32 = (...l: number[]): number[] => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);
const EVEN = lanes32(0, 2, 4, 6);
const ODD = lanes32(1, 3, 5, 7);

/**
 * Folds `rows` contiguous input rows of `len` elements (from `inp`) into `rows` contiguous outputs (at `out`,
 * which hold the running value: out = op(out, op over the row)). len = 4 (2x2 pools) loads four rows as four
 * vectors and combines pairs with shuffles, (x0 op x1) op (x2 op x3) per row as the general path does; other
 * lengths gather tap t of four rows into one vector, 4 x 32-bit loads (bit copies, also for f32).
 */
export function shortRows(fb: FnBuilder, op: ShortReduce, out: Var, inp: Var, rows: Var, len: Var): E {
  const m = fb.m;
  const r = fb.i32();
  const t = fb.i32();
  const rows4 = fb.i32();
  const rowBytes = fb.i32();
  const p = [0, 1, 2, 3].map(() => fb.i32());
  const acc = fb.local(fb.t.v128);
  const v = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  const ident = op.f32 ? fb.splatF32(op.identity) : fb.splatI32(op.identity);
  const sh = (a: Var, b: Var, mask: number[]): E => m.i8x16.shuffle(a.get(), b.get(), mask);
  const pair = (a: Var, b: Var): E => op.vector(sh(a, b, EVEN), sh(a, b, ODD));
  const storeOut = (x: E): E => m.v128.store(0, 4, out.get(), op.vector(m.v128.load(0, 4, out.get()), x));

  // len == 4: rows r..r+3 are 64 contiguous bytes.
  const quad = forRange(fb, {
    i: r, from: m.i32.const(0), to: () => rows4.get(), step: 4,
    body: [
      ...v.map((x, k) => x.set(m.v128.load(16 * k, 4, inp.get()))),
      v[0]!.set(pair(v[0]!, v[1]!)),
      v[2]!.set(pair(v[2]!, v[3]!)),
      storeOut(pair(v[0]!, v[2]!)),
      fb.inc(out, 16),
      fb.inc(inp, 64),
    ],
  });

  // Any other len: lane k of the vector for tap t is row r+k's element t.
  const gather = (): E => {
    let g = m.v128.load32_splat(0, 4, p[0]!.get());
    for (let k = 1; k < 4; k++) g = m.v128.load32_lane(0, 4, k, p[k]!.get(), g);
    return g;
  };
  const strided = forRange(fb, {
    i: r, from: m.i32.const(0), to: () => rows4.get(), step: 4,
    body: [
      ...p.map((x, k) => x.set(m.i32.add(inp.get(), m.i32.mul(rowBytes.get(), m.i32.const(k))))),
      acc.set(ident),
      forRange(fb, { i: t, from: m.i32.const(0), to: () => len.get(), body: [acc.set(op.vector(acc.get(), gather())), ...p.map((x) => fb.inc(x, 4))] }),
      storeOut(acc.get()),
      fb.inc(out, 16),
      inp.set(m.i32.add(inp.get(), m.i32.shl(rowBytes.get(), m.i32.const(2)))),
    ],
  });

  // The last rows % 4 rows one at a time, taps in order.
  const s = fb.local(op.f32 ? fb.t.f32 : fb.t.i32);
  const load = (e: E): E => (op.f32 ? m.f32.load(0, 4, e) : m.i32.load(0, 4, e));
  const store = (e: E, x: E): E => (op.f32 ? m.f32.store(0, 4, e, x) : m.i32.store(0, 4, e, x));
  const tail = forRange(fb, {
    i: r, to: () => rows.get(),
    body: [
      s.set(load(inp.get())),
      forRange(fb, { i: t, from: m.i32.const(1), to: () => len.get(), body: [s.set(op.scalar(s.get(), load(m.i32.add(inp.get(), m.i32.shl(t.get(), m.i32.const(2))))))] }),
      store(out.get(), op.scalar(load(out.get()), s.get())),
      fb.inc(out, 4),
      inp.set(m.i32.add(inp.get(), rowBytes.get())),
    ],
  });

  return fb.seq([
    rows4.set(m.i32.and(rows.get(), m.i32.const(-4))),
    rowBytes.set(m.i32.shl(len.get(), m.i32.const(2))),
    m.if(m.i32.eq(len.get(), m.i32.const(4)), quad, strided),
    tail,
  ]);
}

/**
 * How a prologue input is read with four rows in the lanes: "gather" walks rows and taps (lane k of tap t at
 * row k's element t), "row" is broadcast along the taps (one 4-row vector per block), "tap" along the rows (one
 * value per tap, splatted), "const" along both.
 */
export type ShortInput = { readonly ptr: Var; readonly kind: "gather" | "row" | "tap" | "const"; readonly used: boolean; readonly f32: boolean };

/** A prologue's value from its inputs' current values (vector: 4 rows; scalar: one), as ExprRenderer.element. */
export type ShortValue = (mode: "scalar" | "vector", input: (i: number) => E) => { stmts: E[]; value: E };

/**
 * shortRows for a fused prologue over 32-bit inputs: per block of four rows and per tap, each used input is read
 * once into a local (gathered, loaded, or splatted), the prologue computed on the four lanes and folded in.
 */
export function shortRowsExpr(fb: FnBuilder, op: ShortReduce, out: Var, ins: readonly ShortInput[], value: ShortValue, rows: Var, len: Var): E {
  const m = fb.m;
  const r = fb.i32();
  const t = fb.i32();
  const rows4 = fb.i32();
  const rowBytes = fb.i32();
  const acc = fb.local(fb.t.v128);
  const ident = op.f32 ? fb.splatF32(op.identity) : fb.splatI32(op.identity);
  const used = ins.map((x, i) => ({ ...x, i })).filter((x) => x.used);
  // Per gather input four lane pointers, per tap input one pointer, advanced by a tap each step.
  const lanePtrs = used.map((x) => (x.kind === "gather" ? [0, 1, 2, 3].map(() => fb.i32()) : x.kind === "tap" ? [fb.i32()] : []));
  const vecs = used.map(() => fb.local(fb.t.v128));
  const scal = used.map((x) => fb.local(x.f32 ? fb.t.f32 : fb.t.i32));
  const vecOf = new Map(used.map((x, j) => [x.i, vecs[j]!]));
  const loadVec = (x: ShortInput, lp: Var[]): E => {
    if (x.kind === "row") return m.v128.load(0, 4, x.ptr.get());
    if (x.kind === "const") return m.v128.load32_splat(0, 4, x.ptr.get());
    if (x.kind === "tap") return m.v128.load32_splat(0, 4, lp[0]!.get());
    let g = m.v128.load32_splat(0, 4, lp[0]!.get());
    for (let k = 1; k < 4; k++) g = m.v128.load32_lane(0, 4, k, lp[k]!.get(), g);
    return g;
  };
  const ev = value("vector", (i) => vecOf.get(i)!.get());
  const block = forRange(fb, {
    i: r, from: m.i32.const(0), to: () => rows4.get(), step: 4,
    body: [
      ...used.flatMap((x, j) => lanePtrs[j]!.map((p, k) => p.set(x.kind === "tap" ? x.ptr.get() : m.i32.add(x.ptr.get(), m.i32.mul(rowBytes.get(), m.i32.const(k)))))),
      acc.set(ident),
      forRange(fb, {
        i: t, from: m.i32.const(0), to: () => len.get(),
        body: [
          ...used.map((x, j) => vecs[j]!.set(loadVec(x, lanePtrs[j]!))),
          ...ev.stmts,
          acc.set(op.vector(acc.get(), ev.value)),
          ...lanePtrs.flat().map((p) => fb.inc(p, 4)),
        ],
      }),
      m.v128.store(0, 4, out.get(), op.vector(m.v128.load(0, 4, out.get()), acc.get())),
      fb.inc(out, 16),
      ...used.flatMap((x) => (x.kind === "gather" ? [x.ptr.set(m.i32.add(x.ptr.get(), m.i32.shl(rowBytes.get(), m.i32.const(2))))] : x.kind === "row" ? [fb.inc(x.ptr, 16)] : [])),
    ],
  });

  // The last rows % 4 rows one at a time: tap t of a gather or tap input at ptr + 4t.
  const s = fb.local(op.f32 ? fb.t.f32 : fb.t.i32);
  const scalOf = new Map(used.map((x, j) => [x.i, scal[j]!]));
  const es = value("scalar", (i) => scalOf.get(i)!.get());
  const tapAddr = (x: ShortInput): E => (x.kind === "gather" || x.kind === "tap" ? m.i32.add(x.ptr.get(), m.i32.shl(t.get(), m.i32.const(2))) : x.ptr.get());
  const tail = forRange(fb, {
    i: r, to: () => rows.get(),
    body: [
      s.set(op.f32 ? m.f32.const(op.identity) : m.i32.const(op.identity)),
      forRange(fb, {
        i: t, from: m.i32.const(0), to: () => len.get(),
        body: [...used.map((x, j) => scal[j]!.set(x.f32 ? m.f32.load(0, 4, tapAddr(x)) : m.i32.load(0, 4, tapAddr(x)))), ...es.stmts, s.set(op.scalar(s.get(), es.value))],
      }),
      op.f32 ? m.f32.store(0, 4, out.get(), op.scalar(m.f32.load(0, 4, out.get()), s.get())) : m.i32.store(0, 4, out.get(), op.scalar(m.i32.load(0, 4, out.get()), s.get())),
      fb.inc(out, 4),
      ...used.flatMap((x) => (x.kind === "gather" ? [x.ptr.set(m.i32.add(x.ptr.get(), rowBytes.get()))] : x.kind === "row" ? [fb.inc(x.ptr, 4)] : [])),
    ],
  });
  return fb.seq([rows4.set(m.i32.and(rows.get(), m.i32.const(-4))), rowBytes.set(m.i32.shl(len.get(), m.i32.const(2))), block, tail]);
}
