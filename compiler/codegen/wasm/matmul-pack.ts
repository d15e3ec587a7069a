// Codegen stage (wasm): packing for the matmul — copies a block of an operand into k-major panels of width W
// (W floats per k, zero-padded past the matrix edge), the layout the microkernel reads with constant offsets.
// A row-major operand whose panel runs along its rows needs a copy; one whose panel runs across rows (A, or a
// transposed B) needs a transpose, done 4x4 at a time with shuffles. Transposed operands cost only this.
// Operands stored as f16/bf16, or rounded to them (a cast folded in), are converted here, once per packed
// element, so the microkernel always reads f32 panels.
import type { MatmulKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { loadLanesF32, loadValue } from "./access.js";
import { halfToF32x4, roundToHalf } from "./half.js";
import { forRange } from "./loops.js";
import { internalFn } from "./matmul-micro.js";

type P5 = [Var, Var, Var, Var, Var];

/** How an operand's elements are stored and rounded (MatmulKernel aDtype/aRound, bDtype/bRound). */
export interface OperandFormat {
  readonly dtype: "f32" | "f16" | "bf16";
  readonly round?: "f16" | "bf16";
}

export const F32_OPERAND: OperandFormat = { dtype: "f32" };

export function operandFormat(k: MatmulKernel, which: "a" | "b"): OperandFormat {
  const dtype = (which === "a" ? k.aDtype : k.bDtype) ?? k.dtype;
  const round = which === "a" ? k.aRound : k.bRound;
  if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16") throw new Error(`wasm backend: matmul operand ${which} stored as ${dtype} is not supported`);
  // Rounding to the format the operand is stored in changes nothing.
  return round && round !== dtype ? { dtype, round } : { dtype };
}

/** log2 of the operand's element size in bytes. */
export function operandShift(f: OperandFormat): number {
  return f.dtype === "f32" ? 2 : 1;
}

/** Name suffix of the helpers specialised to a format ("" for plain f32, so those keep their names). */
export function operandSuffix(f: OperandFormat): string {
  return (f.dtype === "f32" ? "" : `_${f.dtype}`) + (f.round ? `_r${f.round}` : "");
}

export const plain = (f: OperandFormat): boolean => f.dtype === "f32" && !f.round;

/** 4 consecutive operand elements at ptr + offset as f32x4 (a bit copy for plain f32). */
export function loadQuad(g: FnBuilder, f: OperandFormat, ptr: E, offset: number): E {
  if (plain(f)) return g.m.v128.load(offset, 4, ptr);
  const v = loadLanesF32(g, f.dtype, ptr, offset);
  return f.round ? roundToHalf(g, f.round, v, "f32x4") : v;
}

/** dst[dstOffset] (f32) = one operand element at src + srcOffset (integer copy for plain f32: NaNs survive). */
export function copyOne(g: FnBuilder, f: OperandFormat, dst: E, dstOffset: number, src: E, srcOffset: number): E {
  const m = g.m;
  if (plain(f)) return m.i32.store(dstOffset, 4, dst, m.i32.load(srcOffset, 4, src));
  const v = loadValue(g, f.dtype, src, srcOffset);
  return m.f32.store(dstOffset, 4, dst, f.round ? roundToHalf(g, f.round, v, "f32") : v);
}

/**
 * `n` (<= MR) scattered operand elements packed as f32 at dst + dstOffset, converted 4 lanes at a time (a 16-bit or
 * rounded format's conversion costs as much for 4 lanes as for 1): element j is read at `ptr(j)` when `cond(j)`
 * (`pre(j)` runs first, setting what they read), else is 0. Never loads an element whose cond is false.
 */
export function gatherLanes(
  g: FnBuilder, f: OperandFormat, n: number, dst: () => E, dstOffset: number, pre: (j: number) => E[], cond: (j: number) => E, ptr: (j: number) => E,
): E[] {
  const m = g.m;
  const vec = g.local(g.t.v128);
  const out: E[] = [];
  for (let o = 0; o < n; o += 4) {
    const w = Math.min(4, n - o);
    out.push(vec.set(g.splatF32(0)));
    for (let j = o; j < o + w; j++) {
      const raw = f.dtype === "f32" ? m.i32.load(0, 4, ptr(j)) : m.i32.load16_u(0, 2, ptr(j));
      out.push(...pre(j), m.if(cond(j), vec.set((m.i32x4.replace_lane as unknown as (v: E, i: number, x: E) => E)(vec.get(), j - o, raw))));
    }
    const widened = f.dtype === "f32" ? vec.get() : halfToF32x4(g, f.dtype, vec.get());
    const v = f.round ? roundToHalf(g, f.round, widened, "f32x4") : widened;
    const at = dstOffset + 4 * o;
    out.push(w === 4 ? m.v128.store(at, 4, dst(), v) : w === 2 ? m.v128.store64_lane(at, 4, 0, dst(), v) : w === 1 ? m.v128.store32_lane(at, 4, 0, dst(), v)
      : g.seq([m.v128.store64_lane(at, 4, 0, dst(), v), m.v128.store32_lane(at + 8, 4, 2, dst(), v)]));
  }
  return out;
}

/**
 * `__kiln_pack_copy{W}(src, ld, dst, kc, w)`: dst[k*W + c] = c < w ? src[k*ld + c] : 0 for k < kc, c < W
 * (ld in bytes). Used for B (panel = NR columns of a row) and for a transposed A.
 */
export function packCopy(fb: FnBuilder, W: number, f: OperandFormat = F32_OPERAND): string {
  return internalFn(fb, `__kiln_pack_copy${W}${operandSuffix(f)}`, 5, (g) => {
    const m = g.m;
    const [src, ld, dst, kc, w] = [0, 1, 2, 3, 4].map((i) => g.param(i)) as P5;
    const k = g.i32();
    const c = g.i32();
    const es = 1 << operandShift(f);
    const full: E[] = [];
    for (let q = 0; q + 4 <= W; q += 4) full.push(m.v128.store(4 * q, 4, dst.get(), loadQuad(g, f, src.get(), es * q)));
    for (let q = W - (W % 4); q < W; q++) full.push(copyOne(g, f, dst.get(), 4 * q, src.get(), es * q));
    const advance = [g.bump(src, ld.get()), g.inc(dst, 4 * W)];
    const edge: E[] = [
      forRange(g, { i: c, from: m.i32.const(0), to: () => w.get(), body: [
        copyOne(g, f, m.i32.add(dst.get(), m.i32.shl(c.get(), m.i32.const(2))), 0, m.i32.add(src.get(), m.i32.shl(c.get(), m.i32.const(operandShift(f)))), 0),
      ] }),
      forRange(g, { i: c, to: () => m.i32.const(W), body: [m.i32.store(0, 4, m.i32.add(dst.get(), m.i32.shl(c.get(), m.i32.const(2))), m.i32.const(0))] }),
    ];
    return m.if(
      m.i32.eq(w.get(), m.i32.const(W)),
      forRange(g, { i: k, from: m.i32.const(0), to: () => kc.get(), body: [...full, ...advance] }),
      forRange(g, { i: k, from: m.i32.const(0), to: () => kc.get(), body: [...edge, ...advance] }),
    );
  });
}

/** i8x16.shuffle mask taking f32 lanes `lanes` (0-3 from the first operand, 4-7 from the second). */
export function lanes32(...lanes: number[]): number[] {
  return lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
}

/**
 * `__kiln_pack_tr{W}(src, ld, dst, kc, w)`: dst[k*W + r] = r < w ? src[r*ld + k] : 0 for k < kc, r < W (ld in
 * bytes). Used for A (panel = MR rows) and for a transposed B.
 */
export function packTranspose(fb: FnBuilder, W: number, f: OperandFormat = F32_OPERAND): string {
  return internalFn(fb, `__kiln_pack_tr${W}${operandSuffix(f)}`, 5, (g) => {
    const es = 1 << operandShift(f);
    const m = g.m;
    const [src, ld, dst, kc, w] = [0, 1, 2, 3, 4].map((i) => g.param(i)) as P5;
    const k = g.i32();
    const r = g.i32();
    const kc4 = g.i32();
    const rowBytes = 4 * W;
    const s = [g.i32(), g.i32(), g.i32(), g.i32()];
    const d = g.i32();
    const v = Array.from({ length: 4 }, () => g.local(g.t.v128));
    const t = Array.from({ length: 4 }, () => g.local(g.t.v128));
    const full: E[] = [kc4.set(m.i32.and(kc.get(), m.i32.const(-4)))];

    // Four rows at a time: load a 4x4 block (4 k's of each row), transpose, store 4 packed k rows.
    for (let r0 = 0; r0 + 4 <= W; r0 += 4) {
      const rowStart = (i: number): E => m.i32.add(src.get(), m.i32.mul(ld.get(), m.i32.const(r0 + i)));
      full.push(...s.map((p, i) => p.set(rowStart(i))), d.set(m.i32.add(dst.get(), m.i32.const(4 * r0))));
      const quad: E[] = [
        ...v.map((x, i) => x.set(loadQuad(g, f, s[i]!.get(), 0))),
        t[0]!.set(m.i8x16.shuffle(v[0]!.get(), v[1]!.get(), lanes32(0, 4, 1, 5))),
        t[1]!.set(m.i8x16.shuffle(v[2]!.get(), v[3]!.get(), lanes32(0, 4, 1, 5))),
        t[2]!.set(m.i8x16.shuffle(v[0]!.get(), v[1]!.get(), lanes32(2, 6, 3, 7))),
        t[3]!.set(m.i8x16.shuffle(v[2]!.get(), v[3]!.get(), lanes32(2, 6, 3, 7))),
        m.v128.store(0, 4, d.get(), m.i8x16.shuffle(t[0]!.get(), t[1]!.get(), lanes32(0, 1, 4, 5))),
        m.v128.store(rowBytes, 4, d.get(), m.i8x16.shuffle(t[0]!.get(), t[1]!.get(), lanes32(2, 3, 6, 7))),
        m.v128.store(2 * rowBytes, 4, d.get(), m.i8x16.shuffle(t[2]!.get(), t[3]!.get(), lanes32(0, 1, 4, 5))),
        m.v128.store(3 * rowBytes, 4, d.get(), m.i8x16.shuffle(t[2]!.get(), t[3]!.get(), lanes32(2, 3, 6, 7))),
        ...s.map((p) => g.inc(p, 4 * es)),
        g.inc(d, 4 * rowBytes),
      ];
      const single: E[] = [
        ...s.map((p, i) => copyOne(g, f, d.get(), 4 * i, p.get(), 0)),
        ...s.map((p) => g.inc(p, es)),
        g.inc(d, rowBytes),
      ];
      full.push(
        forRange(g, { i: k, from: m.i32.const(0), to: () => kc4.get(), step: 4, body: quad }),
        forRange(g, { i: k, to: () => kc.get(), body: single }),
      );
    }
    // Rows past the last multiple of 4 (W = 6), and every row of an edge panel, one element at a time.
    const scalarRows = (from: E, valid: () => E): E => {
      const p = g.i32();
      const q = g.i32();
      return forRange(g, { i: r, from, to: () => m.i32.const(W), body: [
        p.set(m.i32.add(src.get(), m.i32.mul(ld.get(), r.get()))),
        q.set(m.i32.add(dst.get(), m.i32.shl(r.get(), m.i32.const(2)))),
        forRange(g, { i: k, from: m.i32.const(0), to: () => kc.get(), body: [
          // Never load a row past w: it may lie outside the memory.
          m.if(m.i32.lt_s(r.get(), valid()), copyOne(g, f, q.get(), 0, p.get(), 0), m.i32.store(0, 4, q.get(), m.i32.const(0))),
          g.inc(p, es),
          g.inc(q, rowBytes),
        ] }),
      ] });
    };
    if (W % 4 !== 0) full.push(scalarRows(m.i32.const(W - (W % 4)), () => m.i32.const(W)));
    return m.if(m.i32.eq(w.get(), m.i32.const(W)), g.seq(full), scalarRows(m.i32.const(0), () => w.get()));
  });
}
