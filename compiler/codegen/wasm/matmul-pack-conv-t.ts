// Codegen stage (wasm): packing a weight gradient's A panels (patchesᵀ, plan-conv-wgrad.ts) straight from the
// convolution's input, so training never stores the im2col matrix. A panel is MR taps k = (c, kh, kw) by kc
// pixels; per pixel its MR taps are read at fixed offsets from the window's corner, checked only at the border.
// At stride 1 along W, 4 pixels of one output row inside x are 4 consecutive floats per tap: one v128 load per tap,
// then 4x4 transposes (as matmul-pack.ts packs a transposed operand) put each pixel's taps together. An x stored as
// f16/bf16 or rounded to them (mixed precision) is widened/rounded as it is loaded.
import type { ConvGather } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";
import { internalFn } from "./matmul-micro.js";
import { copyOne, F32_OPERAND, gatherLanes, lanes32, loadQuad, operandShift, operandSuffix, plain, type OperandFormat } from "./matmul-pack.js";

/**
 * `__kiln_pack_convT{MR}_{geometry}(x, dst, kc, p0, r0, h)`: dst[p*MR + i] = patch(pixel p0 + p)[tap r0 + i] for
 * p < kc, i < h (rows i >= h repeat tap r0: the gemm stores only an edge panel's h rows), the pixels (n, oh, ow) row-major over the images of x (ConvGather); x and dst are
 * byte addresses; `f`: how x's elements are stored and rounded (dst is f32).
 */
export function packConvT(fb: FnBuilder, MR: number, cv: ConvGather, f: OperandFormat = F32_OPERAND): string {
  const key = [cv.C, cv.H, cv.W, cv.KH, cv.KW, cv.OH, cv.OW, ...cv.stride, ...cv.pad, ...cv.dilation].join("_");
  return internalFn(fb, `__kiln_pack_convT${MR}_${key}${operandSuffix(f)}`, 6, (g) => {
    const m = g.m;
    const c4 = (v: number): E => m.i32.const(v);
    const add = (...xs: E[]): E => xs.reduce((s, x) => m.i32.add(s, x));
    const mul = (a: E, v: number): E => (v === 1 ? a : m.i32.mul(a, c4(v)));
    const [x, dst, kc, p0, r0, h] = [0, 1, 2, 3, 4, 5].map((i) => g.param(i)) as [Var, Var, Var, Var, Var, Var];
    const { C, H, W, KH, KW, OH, OW } = cv;
    const [sh, sw] = cv.stride, [ph, pw] = cv.pad, [dh, dw] = cv.dilation;
    const v = (): Var => g.i32();
    const sh2 = operandShift(f), es = 1 << sh2;
    // Per tap i: its byte offset from the window corner's address, and its row and column inside the window.
    const off = Array.from({ length: MR }, v), th = Array.from({ length: MR }, v), tw = Array.from({ length: MR }, v);
    const [q, t, ow, oh, img, ih, iw, at, kk] = [v(), v(), v(), v(), v(), v(), v(), v(), v()];

    const setup: E[] = [];
    off.forEach((o, i) => setup.push(
      // Past h, tap r0 again: its reads are as safe as row 0's, and the panel takes the vector paths too.
      q.set(add(r0.get(), m.select(m.i32.lt_s(c4(i), h.get()), c4(i), c4(0)))),
      t.set(m.i32.div_u(q.get(), c4(KH * KW))),
      q.set(m.i32.sub(q.get(), mul(t.get(), KH * KW))),
      th[i]!.set(mul(m.i32.div_u(q.get(), c4(KW)), dh)),
      tw[i]!.set(mul(m.i32.rem_u(q.get(), c4(KW)), dw)),
      o.set(m.i32.shl(add(mul(t.get(), H * W), mul(th[i]!.get(), W), tw[i]!.get()), c4(sh2))),
    ));
    // The first pixel: its image's address and its window's top-left corner (ih, iw), maybe in the padding.
    setup.push(
      t.set(m.i32.div_u(p0.get(), c4(OH * OW))),
      img.set(add(x.get(), mul(t.get(), es * C * H * W))),
      q.set(m.i32.sub(p0.get(), mul(t.get(), OH * OW))),
      oh.set(m.i32.div_u(q.get(), c4(OW))),
      ow.set(m.i32.sub(q.get(), mul(oh.get(), OW))),
      ih.set(m.i32.sub(mul(oh.get(), sh), c4(ph))),
      iw.set(m.i32.sub(mul(ow.get(), sw), c4(pw))),
    );
    const st0 = (i: number): E => m.i32.store(4 * i, 4, dst.get(), c4(0));
    const copy = (i: number): E => copyOne(g, f, dst.get(), 4 * i, add(at.get(), off[i]!.get()), 0);
    // The whole window inside x: no checks. None is when the window outgrows x.
    const [hIn, wIn] = [Math.max(0, H - (KH - 1) * dh), Math.max(0, W - (KW - 1) * dw)];
    const interior = m.i32.and(m.i32.lt_u(ih.get(), c4(hIn)), m.i32.lt_u(iw.get(), c4(wIn)));
    const tapAt = (i: number): E => add(at.get(), off[i]!.get());
    const tapIn = (i: number): E => m.i32.and(m.i32.lt_u(add(ih.get(), th[i]!.get()), c4(H)), m.i32.lt_u(add(iw.get(), tw[i]!.get()), c4(W)));
    // 16-bit or rounded x: a pixel's MR taps converted 4 at a time.
    const fast = plain(f) ? Array.from({ length: MR }, (_, i) => copy(i)) : gatherLanes(g, f, MR, () => dst.get(), 0, () => [], () => c4(1), tapAt);
    const checked = plain(f)
      ? Array.from({ length: MR }, (_, i) => m.if(tapIn(i), copy(i), st0(i)))
      : gatherLanes(g, f, MR, () => dst.get(), 0, () => [], tapIn, tapAt);
    // Past the output row's end: the next row's first pixel (and the next image's after the last row).
    const nextRow = (): E => m.if(m.i32.eq(ow.get(), c4(OW)), g.seq([
      ow.set(c4(0)),
      iw.set(c4(-pw)),
      g.inc(oh, 1),
      g.inc(ih, sh),
      m.if(m.i32.eq(oh.get(), c4(OH)), g.seq([oh.set(c4(0)), ih.set(c4(-ph)), g.inc(img, es * C * H * W)])),
    ]));
    const step: E[] = [
      g.inc(dst, 4 * MR),
      g.inc(ow, 1),
      g.inc(iw, sw),
      nextRow(),
    ];
    const one = [m.if(interior, g.seq(fast), g.seq(checked)), ...step];
    const at4 = add(img.get(), m.i32.shl(add(mul(ih.get(), W), iw.get()), c4(sh2)));
    // Lanes outside x are never loaded (the checked path), so `at` may point before it.
    if (sw !== 1 || W - (KW - 1) * dw < 4 || OW < 4) return g.seq([...setup, forRange(g, { i: kk, from: c4(0), to: () => kc.get(), body: [at.set(at4), ...one] })]);
    // 4 pixels at once: all in this output row, their windows inside x and 4 more pixels in the panel.
    const vecs = Array.from({ length: 4 }, () => g.local(g.t.v128)), tr = Array.from({ length: 4 }, () => g.local(g.t.v128));
    const quadOk = m.i32.and(
      m.i32.and(m.i32.lt_u(ih.get(), c4(hIn)), m.i32.lt_u(iw.get(), c4(wIn - 3))),
      m.i32.and(m.i32.le_s(ow.get(), c4(OW - 4)), m.i32.le_s(add(kk.get(), c4(4)), kc.get())),
    );
    const quad: E[] = [];
    for (let i0 = 0; i0 < MR; i0 += 4) {
      const n = Math.min(4, MR - i0);
      for (let j = 0; j < n; j++) quad.push(vecs[j]!.set(loadQuad(g, f, add(at.get(), off[i0 + j]!.get()), 0)));
      if (n === 4) {
        quad.push(
          tr[0]!.set(m.i8x16.shuffle(vecs[0]!.get(), vecs[1]!.get(), lanes32(0, 4, 1, 5))),
          tr[1]!.set(m.i8x16.shuffle(vecs[2]!.get(), vecs[3]!.get(), lanes32(0, 4, 1, 5))),
          tr[2]!.set(m.i8x16.shuffle(vecs[0]!.get(), vecs[1]!.get(), lanes32(2, 6, 3, 7))),
          tr[3]!.set(m.i8x16.shuffle(vecs[2]!.get(), vecs[3]!.get(), lanes32(2, 6, 3, 7))),
          m.v128.store(4 * i0, 4, dst.get(), m.i8x16.shuffle(tr[0]!.get(), tr[1]!.get(), lanes32(0, 1, 4, 5))),
          m.v128.store(4 * (MR + i0), 4, dst.get(), m.i8x16.shuffle(tr[0]!.get(), tr[1]!.get(), lanes32(2, 3, 6, 7))),
          m.v128.store(4 * (2 * MR + i0), 4, dst.get(), m.i8x16.shuffle(tr[2]!.get(), tr[3]!.get(), lanes32(0, 1, 4, 5))),
          m.v128.store(4 * (3 * MR + i0), 4, dst.get(), m.i8x16.shuffle(tr[2]!.get(), tr[3]!.get(), lanes32(2, 3, 6, 7))),
        );
      } else {
        // The last MR % 4 taps (MR = 6): lane p of tap j's vector is pixel p's.
        for (let j = 0; j < n; j++) for (let p = 0; p < 4; p++) quad.push(m.v128.store32_lane(4 * (p * MR + i0 + j), 4, p, dst.get(), vecs[j]!.get()));
      }
    }
    quad.push(
      g.inc(dst, 16 * MR),
      g.inc(ow, 4),
      g.inc(iw, 4),
      // The loop adds the fourth.
      g.inc(kk, 3),
      nextRow(),
    );
    return g.seq([...setup, forRange(g, { i: kk, from: c4(0), to: () => kc.get(), body: [
      at.set(at4),
      m.if(quadOk, g.seq(quad), g.seq(one)),
    ] })]);
  });
}
