// Codegen stage (wasm): packing for the matmul — copies a block of an operand into k-major panels of width W
// (W floats per k, zero-padded past the matrix edge), the layout the microkernel reads with constant offsets.
// A row-major operand whose panel runs along its rows needs a copy; one whose panel runs across rows (A, or a
// transposed B) needs a transpose, done 4x4 at a time with shuffles. Transposed operands cost only this.
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";
import { internalFn } from "./matmul-micro.js";

type P5 = [Var, Var, Var, Var, Var];

/**
 * `__kiln_pack_copy{W}(src, ld, dst, kc, w)`: dst[k*W + c] = c < w ? src[k*ld + c] : 0 for k < kc, c < W
 * (ld in bytes). Used for B (panel = NR columns of a row) and for a transposed A.
 */
export function packCopy(fb: FnBuilder, W: number): string {
  return internalFn(fb, `__kiln_pack_copy${W}`, 5, (g) => {
    const m = g.m;
    const [src, ld, dst, kc, w] = [0, 1, 2, 3, 4].map((i) => g.param(i)) as P5;
    const k = g.i32();
    const c = g.i32();
    const full: E[] = [];
    for (let q = 0; q + 4 <= W; q += 4) full.push(m.v128.store(4 * q, 4, dst.get(), m.v128.load(4 * q, 4, src.get())));
    for (let q = W - (W % 4); q < W; q++) full.push(m.i32.store(4 * q, 4, dst.get(), m.i32.load(4 * q, 4, src.get())));
    const advance = [g.bump(src, ld.get()), g.inc(dst, 4 * W)];
    const edge: E[] = [
      forRange(g, { i: c, from: m.i32.const(0), to: () => w.get(), body: [
        m.i32.store(0, 4, m.i32.add(dst.get(), m.i32.shl(c.get(), m.i32.const(2))), m.i32.load(0, 4, m.i32.add(src.get(), m.i32.shl(c.get(), m.i32.const(2))))),
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
function lanes32(...lanes: number[]): number[] {
  return lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
}

/**
 * `__kiln_pack_tr{W}(src, ld, dst, kc, w)`: dst[k*W + r] = r < w ? src[r*ld + k] : 0 for k < kc, r < W (ld in
 * bytes). Used for A (panel = MR rows) and for a transposed B.
 */
export function packTranspose(fb: FnBuilder, W: number): string {
  return internalFn(fb, `__kiln_pack_tr${W}`, 5, (g) => {
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
        ...v.map((x, i) => x.set(m.v128.load(0, 4, s[i]!.get()))),
        t[0]!.set(m.i8x16.shuffle(v[0]!.get(), v[1]!.get(), lanes32(0, 4, 1, 5))),
        t[1]!.set(m.i8x16.shuffle(v[2]!.get(), v[3]!.get(), lanes32(0, 4, 1, 5))),
        t[2]!.set(m.i8x16.shuffle(v[0]!.get(), v[1]!.get(), lanes32(2, 6, 3, 7))),
        t[3]!.set(m.i8x16.shuffle(v[2]!.get(), v[3]!.get(), lanes32(2, 6, 3, 7))),
        m.v128.store(0, 4, d.get(), m.i8x16.shuffle(t[0]!.get(), t[1]!.get(), lanes32(0, 1, 4, 5))),
        m.v128.store(rowBytes, 4, d.get(), m.i8x16.shuffle(t[0]!.get(), t[1]!.get(), lanes32(2, 3, 6, 7))),
        m.v128.store(2 * rowBytes, 4, d.get(), m.i8x16.shuffle(t[2]!.get(), t[3]!.get(), lanes32(0, 1, 4, 5))),
        m.v128.store(3 * rowBytes, 4, d.get(), m.i8x16.shuffle(t[2]!.get(), t[3]!.get(), lanes32(2, 3, 6, 7))),
        ...s.map((p) => g.inc(p, 16)),
        g.inc(d, 4 * rowBytes),
      ];
      const single: E[] = [
        ...s.map((p, i) => m.i32.store(4 * i, 4, d.get(), m.i32.load(0, 4, p.get()))),
        ...s.map((p) => g.inc(p, 4)),
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
          m.if(m.i32.lt_s(r.get(), valid()), m.i32.store(0, 4, q.get(), m.i32.load(0, 4, p.get())), m.i32.store(0, 4, q.get(), m.i32.const(0))),
          g.inc(p, 4),
          g.inc(q, rowBytes),
        ] }),
      ] });
    };
    if (W % 4 !== 0) full.push(scalarRows(m.i32.const(W - (W % 4)), () => m.i32.const(W)));
    return m.if(m.i32.eq(w.get(), m.i32.const(W)), g.seq(full), scalarRows(m.i32.const(0), () => w.get()));
  });
}
