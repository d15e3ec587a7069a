// Codegen stage (wasm): all_finite's checks (kernel.ts "finite" and "flag outputs") — the standalone `finite`
// kernel over stored bits, and the mask a flagged kernel accumulates over the f32 values it stores, tested once.
import type { DType } from "../../ir/types.js";
import type { FiniteKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";

/** 1 when the kernel takes an all_finite flag pointer (kernel.ts "flag outputs"), else 0. */
export function flagParams(spec: { readonly flag?: true }): number {
  return spec.flag ? 1 : 0;
}

/**
 * The f32 magnitude from which a value stored as `d` is not finite: round to nearest even carries f16 from 65520
 * (halfway between 65504 and 2^16) and bf16 from bits 0x7F7F8000 (halfway past 0x7F7F) up to Inf. `|v| < bound`
 * is then "stores finite"; NaN compares false. Integer and bool outputs never carry a flag (the planner's rule).
 */
export function finiteBound(d: DType): number {
  switch (d) {
    case "f32": return Infinity;
    case "f16": return 65520;
    case "bf16": return new Float32Array(new Uint32Array([0x7f7f8000]).buffer)[0]!;
    default: throw new Error(`wasm backend: a finite flag on ${d} values (compiler bug)`);
  }
}

/**
 * Accumulates "a value stored so far was not finite" in a v128 (vector stores) and an i32 (scalar stores), so the
 * loops pay two or three SIMD instructions per vector and no branch; `flush` clears the flag at most once.
 * f32 stores: v - v is +0 for every finite v and NaN for Inf and NaN, so OR-ing its bits takes two ops and no
 * constant (measured cheaper than abs + compare on an elementwise kernel). f16/bf16 stores: an AND of
 * |v| < bound (a bound below Inf).
 */
export class FiniteMask {
  private readonly vec: Var;
  private readonly one: Var;
  private readonly bound: number;
  private readonly wide: boolean;

  constructor(private readonly fb: FnBuilder, private readonly flag: Var, stored: DType) {
    this.bound = finiteBound(stored);
    this.wide = stored === "f32";
    this.vec = fb.local(fb.t.v128);
    this.one = fb.i32();
  }

  init(): E {
    const fb = this.fb;
    return fb.seq([this.vec.set(fb.splatI32(this.wide ? 0 : -1)), this.one.set(fb.m.i32.const(this.wide ? 0 : 1))]);
  }

  /** Folds in an f32x4 of values as they will be stored; `v` may be called twice (a local.get, not a load). */
  vector(v: () => E): E {
    const m = this.fb.m;
    if (this.wide) return this.vec.set(m.v128.or(this.vec.get(), m.f32x4.sub(v(), v())));
    return this.vec.set(m.v128.and(this.vec.get(), m.f32x4.lt(m.f32x4.abs(v()), this.fb.splatF32(this.bound))));
  }

  scalar(v: () => E): E {
    const m = this.fb.m;
    if (this.wide) return this.one.set(m.i32.or(this.one.get(), m.i32.reinterpret(m.f32.sub(v(), v()))));
    return this.one.set(m.i32.and(this.one.get(), m.f32.lt(m.f32.abs(v()), m.f32.const(this.bound))));
  }

  /** Clears the flag when a value folded in was not finite (never sets it). */
  flush(): E {
    const m = this.fb.m;
    const bad = this.wide
      ? m.i32.or(this.one.get(), m.v128.any_true(this.vec.get()))
      : m.i32.eqz(m.i32.and(this.one.get(), m.i32x4.all_true(this.vec.get())));
    return m.if(bad, m.i32.store8(0, 1, this.flag.get(), m.i32.const(0)));
  }

  /** Folds in the `n` f32 values at `ptr` (read back after they were stored), four at a time, then the rest. */
  span(ptr: E, n: Var): E {
    const fb = this.fb;
    const m = fb.m;
    const [j, col, n4] = [fb.i32(), fb.i32(), fb.i32()];
    const [v, s] = [fb.local(fb.t.v128), fb.local(fb.t.f32)];
    return fb.seq([
      col.set(ptr),
      n4.set(m.i32.and(n.get(), m.i32.const(-4))),
      forRange(fb, { i: j, from: m.i32.const(0), to: () => n4.get(), step: 4, body: [v.set(m.v128.load(0, 4, col.get())), this.vector(() => v.get()), fb.inc(col, 16)] }),
      forRange(fb, { i: j, to: () => n.get(), body: [s.set(m.f32.load(0, 4, col.get())), this.scalar(() => s.get()), fb.inc(col, 4)] }),
    ]);
  }

  /** Folds in rows [0, h) x columns [0, w) of f32 values at `ptr`, rows `ld` bytes apart. */
  rows(ptr: E, ld: Var, h: Var, w: Var): E {
    const fb = this.fb;
    const [i, row] = [fb.i32(), fb.i32()];
    return fb.seq([row.set(ptr), forRange(fb, { i, from: fb.m.i32.const(0), to: () => h.get(), body: [this.span(row.get(), w), fb.bump(row, ld.get())] })]);
  }
}

/**
 * Params (in, flag, n): integer tests on the stored bits, |bits| < the Inf pattern (NaN's are above it), four
 * f32 or eight 16-bit lanes per vector, four vectors a trip (one cache line of f32), then single vectors and
 * scalars. The flag is tested once, after the whole range.
 */
export function renderFinite(fb: FnBuilder, k: FiniteKernel): E {
  const m = fb.m;
  const [pIn, flag, n] = [fb.param(0), fb.param(1), fb.param(2)];
  const half = k.dtype !== "f32";
  const bytes = half ? 2 : 4;
  const lanes = 16 / bytes;
  const inf = k.dtype === "f32" ? 0x7f800000 : k.dtype === "f16" ? 0x7c00 : 0x7f80;
  const absMask = half ? 0x7fff : 0x7fffffff;
  const splat = (c: number): E => (half ? m.v128.const(Array.from(new Uint8Array(new Uint16Array(8).fill(c).buffer))) : fb.splatI32(c));
  const lt = (a: E, b: E): E => (half ? m.i16x8.lt_s(a, b) : m.i32x4.lt_s(a, b));
  const p = fb.i32();
  const i = fb.i32();
  const okVec = (off: number): E => lt(m.v128.and(m.v128.load(off, bytes, p.get()), splat(absMask)), splat(inf));
  // A 16-bit lane mask must be tested per 16-bit lane: an i32x4 lane with one false half is still nonzero.
  const allTrue = (v: E): E => (half ? m.i16x8.all_true(v) : m.i32x4.all_true(v));
  const [end4, end1] = [fb.i32(), fb.i32()];
  const vec = fb.local(fb.t.v128);
  const one = fb.i32();
  const scalarLoad = half ? m.i32.load16_u(0, 2, p.get()) : m.i32.load(0, 4, p.get());
  return fb.seq([
    p.set(pIn.get()),
    vec.set(fb.splatI32(-1)),
    one.set(m.i32.const(1)),
    end4.set(m.i32.and(n.get(), m.i32.const(-4 * lanes))),
    end1.set(m.i32.and(n.get(), m.i32.const(-lanes))),
    forRange(fb, {
      i, from: m.i32.const(0), to: () => end4.get(), step: 4 * lanes,
      body: [vec.set(m.v128.and(vec.get(), m.v128.and(m.v128.and(okVec(0), okVec(16)), m.v128.and(okVec(32), okVec(48))))), fb.inc(p, 64)],
    }),
    forRange(fb, { i, to: () => end1.get(), step: lanes, body: [vec.set(m.v128.and(vec.get(), okVec(0))), fb.inc(p, 16)] }),
    forRange(fb, { i, to: () => n.get(), body: [one.set(m.i32.and(one.get(), m.i32.lt_s(m.i32.and(scalarLoad, m.i32.const(absMask)), m.i32.const(inf)))), fb.inc(p, bytes)] }),
    m.if(m.i32.eqz(m.i32.and(one.get(), allTrue(vec.get()))), m.i32.store8(0, 1, flag.get(), m.i32.const(0))),
  ]);
}
