// Codegen stage (wasm): packing a matmul's A panels straight from a convolution's input (implicit GEMM, kernel.ts
// ConvGather), so neither the padded input nor the im2col matrix is ever stored. For one k = (c, kh, kw) the MR
// rows of a panel are MR output pixels; at stride 1 inside one output row they read MR consecutive floats of x,
// copied with vector loads, which is cheaper than the 4x4 transposes a materialised row-major A needs. An x stored
// as f16/bf16, or rounded to them (mixed precision), is widened/rounded while packing (matmul-pack.ts's formats).
import type { ConvGather } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";
import { internalFn } from "./matmul-micro.js";
import { copyOne, F32_OPERAND, gatherLanes, loadQuad, operandShift, operandSuffix, plain, type OperandFormat } from "./matmul-pack.js";

/** Far outside any x: a row past the panel's h reads as padding. */
const NOWHERE = -(1 << 28);

/**
 * `__kiln_pack_conv{MR}_{geometry}(x, dst, kc, k0, r0, h)`: dst[k*MR + i] = A[r0 + i][k0 + k] for k < kc, i < MR
 * (0 for i >= h), with A the convolution's patch rows over x (ConvGather); x and dst are byte addresses. `f`: how
 * x's elements are stored and rounded (dst is always f32).
 */
export function packConv(fb: FnBuilder, MR: number, cv: ConvGather, f: OperandFormat = F32_OPERAND): string {
  const key = [cv.C, cv.H, cv.W, cv.KH, cv.KW, cv.OH, cv.OW, ...cv.stride, ...cv.pad, ...cv.dilation].join("_");
  return internalFn(fb, `__kiln_pack_conv${MR}_${key}${operandSuffix(f)}`, 6, (g) => {
    const m = g.m;
    const c4 = (v: number): E => m.i32.const(v);
    const add = (...xs: E[]): E => xs.reduce((s, x) => m.i32.add(s, x));
    const mul = (a: E, v: number): E => (v === 1 ? a : m.i32.mul(a, c4(v)));
    const [x, dst, kc, k0, r0, h] = [0, 1, 2, 3, 4, 5].map((i) => g.param(i)) as [Var, Var, Var, Var, Var, Var];
    const { C, H, W, KH, KW, OH, OW } = cv;
    const [sh, sw] = cv.stride, [ph, pw] = cv.pad, [dh, dw] = cv.dilation;
    const v = (): Var => g.i32();
    const sh2 = operandShift(f), es = 1 << sh2;
    const base = Array.from({ length: MR }, v), ih0 = Array.from({ length: MR }, v), iw0 = Array.from({ length: MR }, v);
    const [q, t, c, kh, kw, kk, ih, iw, src] = [v(), v(), v(), v(), v(), v(), v(), v(), v()];

    // Per row i: its image's address and the top-left input position of its window.
    const setup: E[] = [];
    base.forEach((b, i) => setup.push(
      q.set(add(r0.get(), c4(i))),
      t.set(m.i32.div_u(q.get(), c4(OH * OW))),
      b.set(add(x.get(), mul(t.get(), es * C * H * W))),
      q.set(m.i32.sub(q.get(), mul(t.get(), OH * OW))),
      t.set(m.i32.div_u(q.get(), c4(OW))),
      ih0[i]!.set(m.i32.sub(mul(t.get(), sh), c4(ph))),
      iw0[i]!.set(m.i32.sub(mul(m.i32.sub(q.get(), mul(t.get(), OW)), sw), c4(pw))),
      m.if(m.i32.ge_s(c4(i), h.get()), ih0[i]!.set(c4(NOWHERE))),
    ));
    setup.push(
      c.set(m.i32.div_u(k0.get(), c4(KH * KW))),
      t.set(m.i32.sub(k0.get(), mul(c.get(), KH * KW))),
      kh.set(m.i32.div_u(t.get(), c4(KW))),
      kw.set(m.i32.sub(t.get(), mul(kh.get(), KW))),
    );
    // A function: a Binaryen expression may appear only once in the tree, and both loops step k.
    const next = (): E[] => [
      g.inc(dst, 4 * MR),
      g.inc(kw, 1),
      m.if(m.i32.eq(kw.get(), c4(KW)), g.seq([
        kw.set(c4(0)),
        g.inc(kh, 1),
        m.if(m.i32.eq(kh.get(), c4(KH)), g.seq([kh.set(c4(0)), g.inc(c, 1)])),
      ])),
    ];
    const inside = (i: E, n: number): E => m.i32.lt_u(i, c4(n));
    // Byte address of x[image, c, ih, iw] from the image's address.
    const at = (img: E): E => add(img, m.i32.shl(add(mul(add(mul(c.get(), H), ih.get()), W), iw.get()), c4(sh2)));
    const one = (cond: E, from: () => E, i: number): E =>
      m.if(cond, copyOne(g, f, dst.get(), 4 * i, from(), 0), m.i32.store(4 * i, 4, dst.get(), c4(0)));

    // Any rows: one bounds-checked element per row (16-bit or rounded: converted 4 rows at a time).
    const general = plain(f)
      ? Array.from({ length: MR }, (_, i) => g.seq([
        ih.set(add(ih0[i]!.get(), mul(kh.get(), dh))),
        iw.set(add(iw0[i]!.get(), mul(kw.get(), dw))),
        one(m.i32.and(inside(ih.get(), H), inside(iw.get(), W)), () => at(base[i]!.get()), i),
      ]))
      : gatherLanes(g, f, MR, () => dst.get(), 0,
        (i) => [ih.set(add(ih0[i]!.get(), mul(kh.get(), dh))), iw.set(add(iw0[i]!.get(), mul(kw.get(), dw)))],
        () => m.i32.and(inside(ih.get(), H), inside(iw.get(), W)), (i) => at(base[i]!.get()));
    const loop = (body: E[]): E => forRange(g, { i: kk, from: c4(0), to: () => kc.get(), body: [...body, ...next()] });
    if (sw !== 1) return g.seq([...setup, loop(general)]);

    // Stride 1 along W and all MR rows in one output row: MR consecutive floats of one input row, or padding.
    const copy: E[] = [];
    for (let o = 0; o < MR;) {
      const n = MR - o >= 4 ? 4 : MR - o >= 2 ? 2 : 1;
      const off = 4 * o;
      // 16-bit or rounded elements: 4 widened/rounded at a time, the rest one by one.
      if (!plain(f)) copy.push(n === 4 ? m.v128.store(off, 4, dst.get(), loadQuad(g, f, src.get(), es * o)) : copyOne(g, f, dst.get(), off, src.get(), es * o));
      else copy.push(n === 4
        ? m.v128.store(off, 4, dst.get(), m.v128.load(off, 4, src.get()))
        : n === 2 ? m.i64.store(off, 4, dst.get(), m.i64.load(off, 4, src.get())) : m.i32.store(off, 4, dst.get(), m.i32.load(off, 4, src.get())));
      o += plain(f) || n === 4 ? n : 1;
    }
    const zeros: E[] = [];
    for (let o = 0; o < MR; o += 4) zeros.push(MR - o >= 4 ? m.v128.store(4 * o, 4, dst.get(), g.splatF32(0)) : m.nop());
    for (let o = MR - (MR % 4); o < MR; o++) zeros.push(m.i32.store(4 * o, 4, dst.get(), c4(0)));
    const lanes = plain(f)
      ? Array.from({ length: MR }, (_, i) => one(inside(add(iw.get(), c4(i)), W), () => add(src.get(), c4(es * i)), i))
      : gatherLanes(g, f, MR, () => dst.get(), 0, () => [], (i) => inside(add(iw.get(), c4(i)), W), (i) => add(src.get(), c4(es * i)));
    const row: E[] = [
      ih.set(add(ih0[0]!.get(), mul(kh.get(), dh))),
      iw.set(add(iw0[0]!.get(), mul(kw.get(), dw))),
      m.if(inside(ih.get(), H), g.seq([
        src.set(at(base[0]!.get())),
        m.if(m.i32.and(m.i32.ge_s(iw.get(), c4(0)), m.i32.le_s(iw.get(), c4(W - MR))), g.seq(copy), g.seq(lanes)),
      ]), g.seq(zeros)),
    ];
    const same = m.i32.and(
      m.i32.eq(h.get(), c4(MR)),
      m.i32.and(m.i32.eq(ih0[0]!.get(), ih0[MR - 1]!.get()), m.i32.eq(base[0]!.get(), base[MR - 1]!.get())),
    );
    return g.seq([...setup, m.if(same, loop(row), loop(general))]);
  });
}
