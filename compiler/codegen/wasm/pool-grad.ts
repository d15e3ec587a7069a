// Codegen stage (wasm): max_pool2d's input gradient as one scatter (kernel.ts: maxpool_grad), for windows tiling x.
// 2x2 windows run 4 at a time: the two input rows' 8 columns split into the taps of 4 windows by even/odd shuffles,
// the max (f32x4.max, NaN-propagating), first-tap masks (x == max and no earlier tap), dy masked by each and
// interleaved back into the rows; a last overlapping block covers the tail. Other windows, and rows shorter than a
// block, tap by tap. dx = dy at the first tap equal to the max, +0 elsewhere; a NaN window (max NaN) sends none.
import type { MaxPoolGradKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";

const EVEN = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD = EVEN.map((b) => b + 4);
const LO = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
const HI = LO.map((b) => b + 8);

/** Params (x, dy, dx, planes, pixels); pixels is for the WGSL grid. */
export function renderMaxPoolGrad(fb: FnBuilder, k: MaxPoolGradKernel): E {
  const m = fb.m;
  const [x, dy, dx, planes] = [0, 1, 2, 3].map((i) => fb.param(i)) as [Var, Var, Var, Var];
  const { OH, OW, KH, KW } = k;
  const W = OW * KW, H = OH * KH;
  const c = (v: number) => m.i32.const(v);
  const p = fb.i32(), xb = fb.i32(), yb = fb.i32(), oh = fb.i32(), ow = fb.i32(), at = fb.i32(), best = fb.i32();
  const mx = fb.local(fb.t.f32), g = fb.local(fb.t.f32);
  const tv = Array.from({ length: KH * KW }, () => fb.local(fb.t.f32));
  // x / dx address of tap (kh, kw) of window (oh, ow): row oh KH + kh, column ow KW + kw.
  const tapAddr = (kh: number, kw: number) => m.i32.add(xb.get(), m.i32.shl(m.i32.add(m.i32.mul(m.i32.add(m.i32.mul(oh.get(), c(KH)), c(kh)), c(W)), m.i32.add(m.i32.mul(ow.get(), c(KW)), c(kw))), c(2)));
  const dxAddr = (kh: number, kw: number) => m.i32.add(m.i32.sub(tapAddr(kh, kw), xb.get()), at.get());

  const scalarWindow = (): E[] => {
    const taps = tv.map((v, t) => v.set(m.f32.load(0, 4, tapAddr(Math.floor(t / KW), t % KW))));
    const body: E[] = [...taps, mx.set(m.f32.const(-Infinity))];
    for (const v of tv) body.push(mx.set(m.f32.max(mx.get(), v.get())));
    // The first tap equal to the max, K when none is (a NaN max).
    body.push(best.set(c(KH * KW)));
    for (let t = KH * KW - 1; t >= 0; t--) body.push(m.if(m.f32.eq(tv[t]!.get(), mx.get()), best.set(c(t))));
    body.push(g.set(m.f32.load(0, 4, m.i32.add(yb.get(), m.i32.shl(m.i32.add(m.i32.mul(oh.get(), c(OW)), ow.get()), c(2))))));
    tv.forEach((_, t) => body.push(m.f32.store(0, 4, dxAddr(Math.floor(t / KW), t % KW), m.select(m.i32.eq(best.get(), c(t)), g.get(), m.f32.const(0)))));
    return body;
  };

  const vector = KH === 2 && KW === 2 && OW >= 4;
  const r = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  const t4 = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  const vm = fb.local(fb.t.v128), gv = fb.local(fb.t.v128), seen = fb.local(fb.t.v128), hit = fb.local(fb.t.v128);
  const out4 = [0, 1, 2, 3].map(() => fb.local(fb.t.v128));
  // Windows ow .. ow + 3 of row oh: taps t = 2 kh + kw.
  const vectorBlock = (): E[] => {
    const row = (kh: number) => tapAddr(kh, 0);
    const body: E[] = [
      r[0]!.set(m.v128.load(0, 4, row(0))), r[1]!.set(m.v128.load(16, 4, row(0))),
      r[2]!.set(m.v128.load(0, 4, row(1))), r[3]!.set(m.v128.load(16, 4, row(1))),
      t4[0]!.set(m.i8x16.shuffle(r[0]!.get(), r[1]!.get(), EVEN)), t4[1]!.set(m.i8x16.shuffle(r[0]!.get(), r[1]!.get(), ODD)),
      t4[2]!.set(m.i8x16.shuffle(r[2]!.get(), r[3]!.get(), EVEN)), t4[3]!.set(m.i8x16.shuffle(r[2]!.get(), r[3]!.get(), ODD)),
      vm.set(m.f32x4.max(m.f32x4.max(t4[0]!.get(), t4[1]!.get()), m.f32x4.max(t4[2]!.get(), t4[3]!.get()))),
      gv.set(m.v128.load(0, 4, m.i32.add(yb.get(), m.i32.shl(m.i32.add(m.i32.mul(oh.get(), c(OW)), ow.get()), c(2))))),
      seen.set(fb.splatI32(0)),
    ];
    t4.forEach((t, i) => {
      body.push(hit.set(m.v128.and(m.f32x4.eq(t.get(), vm.get()), m.v128.not(seen.get()))));
      if (i < 3) body.push(seen.set(m.v128.or(seen.get(), hit.get())));
      body.push(out4[i]!.set(m.v128.and(gv.get(), hit.get())));
    });
    // Back to rows: row kh holds taps 2 kh, 2 kh + 1 of each window, interleaved.
    for (let kh = 0; kh < 2; kh++) {
      const [a, b] = [out4[2 * kh]!, out4[2 * kh + 1]!];
      body.push(m.v128.store(0, 4, dxAddr(kh, 0), m.i8x16.shuffle(a.get(), b.get(), LO)), m.v128.store(16, 4, dxAddr(kh, 0), m.i8x16.shuffle(a.get(), b.get(), HI)));
    }
    return body;
  };
  const end = Math.floor(OW / 4) * 4;
  const perRow: E[] = vector
    ? [
      forRange(fb, { i: ow, from: c(0), to: () => c(end), step: 4, body: vectorBlock() }),
      ...(end < OW ? [ow.set(c(OW - 4)), ...vectorBlock()] : []),
    ]
    : [forRange(fb, { i: ow, from: c(0), to: () => c(OW), body: scalarWindow() })];
  const perPlane: E[] = [
    xb.set(m.i32.add(x.get(), m.i32.mul(p.get(), c(H * W * 4)))),
    at.set(m.i32.add(dx.get(), m.i32.mul(p.get(), c(H * W * 4)))),
    yb.set(m.i32.add(dy.get(), m.i32.mul(p.get(), c(OH * OW * 4)))),
    forRange(fb, { i: oh, from: c(0), to: () => c(OH), body: perRow }),
  ];
  return forRange(fb, { i: p, from: c(0), to: () => planes.get(), body: perPlane });
}
