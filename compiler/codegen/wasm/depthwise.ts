// Codegen stage (wasm): the direct depthwise convolution kernel (kernel.ts: depthwise_conv2d). Per plane, the
// filter's taps are loaded once into locals; each output row is a scalar head and tail (taps bounds-checked:
// that is the padding) around a SIMD middle of 4 neighbouring output pixels whose taps all fall inside the row
// (stride 1: one v128 load per tap; stride 2: two loads and an even-lane shuffle); a row of at most 8 pixels is
// held in two vectors, its taps shuffled out of them. Rows outside the image are skipped per tap row. Taps are summed in (kh, kw) order, as the reference evaluator does.
import type { DepthwiseKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";

/** Output columns [lo, hi) whose taps (plus `extra` elements after the last one) all lie inside [0, W). */
function innerColumns(k: DepthwiseKernel, extra: number): [number, number] {
  const [sw, dw] = [k.stride[1], k.dilation[1]];
  const lo = Math.min(k.OW, Math.max(0, Math.ceil(k.left / sw)));
  const last = Math.floor((k.W - 1 - extra - (k.KW - 1) * dw + k.left) / sw);
  return [lo, Math.max(lo, Math.min(k.OW, last + 1))];
}

/** Params (x, w, out, planes, pixels); pixels (OH * OW) is for the WGSL grid. */
export function renderDepthwise(fb: FnBuilder, k: DepthwiseKernel): E {
  const m = fb.m;
  const [x, w, out, planes] = [0, 1, 2, 3].map((i) => fb.param(i)) as [Var, Var, Var, Var];
  const { H, W, OH, OW, KH, KW, C, top, left } = k;
  const [sh, sw] = k.stride, [dh, dw] = k.dilation;
  const taps = KH * KW;
  const p = fb.i32(), xb = fb.i32(), wb = fb.i32(), ob = fb.i32(), oh = fb.i32(), ow = fb.i32(), ih = fb.i32(), row = fb.i32(), iw = fb.i32();
  const acc = fb.local(fb.t.f32), vacc = fb.local(fb.t.v128);
  const ws = Array.from({ length: taps }, () => fb.local(fb.t.f32));
  const vector = sw === 1 || sw === 2;
  const wv = vector ? Array.from({ length: taps }, () => fb.local(fb.t.v128)) : [];
  const [vlo, vhi] = innerColumns(k, sw === 2 ? 1 : 0);
  const vend = vector ? vlo + Math.floor((vhi - vlo) / 4) * 4 : vlo;
  const c = (v: number) => m.i32.const(v);

  // ih = oh * sh + kh * dh - top for tap row kh; `body` runs (with `row` its address) only inside the image.
  const rowIf = (kh: number, body: E[]): E => m.block(null, [
    ih.set(m.i32.add(m.i32.mul(oh.get(), c(sh)), c(kh * dh - top))),
    m.if(m.i32.lt_u(ih.get(), c(H)), fb.seq([row.set(m.i32.add(xb.get(), m.i32.mul(ih.get(), c(W * 4)))), ...body])),
  ]);

  // One output pixel at column ow, every tap checked against the row's bounds.
  const scalarPixel = (): E[] => {
    const body: E[] = [acc.set(m.f32.const(0))];
    for (let kh = 0; kh < KH; kh++) {
      const cols: E[] = [];
      for (let kw = 0; kw < KW; kw++) {
        cols.push(iw.set(m.i32.add(m.i32.mul(ow.get(), c(sw)), c(kw * dw - left))));
        cols.push(m.if(m.i32.lt_u(iw.get(), c(W)), acc.set(m.f32.add(acc.get(), m.f32.mul(m.f32.load(0, 4, m.i32.add(row.get(), m.i32.shl(iw.get(), c(2)))), ws[kh * KW + kw]!.get())))));
      }
      body.push(rowIf(kh, cols));
    }
    body.push(m.f32.store(0, 4, m.i32.add(ob.get(), m.i32.shl(ow.get(), c(2))), acc.get()));
    return body;
  };

  // Four output pixels from column ow, all taps inside the row.
  const vectorPixels = (): E[] => {
    const body: E[] = [vacc.set(fb.splatF32(0))];
    for (let kh = 0; kh < KH; kh++) {
      const cols: E[] = [iw.set(m.i32.add(row.get(), m.i32.shl(m.i32.sub(m.i32.mul(ow.get(), c(sw)), c(left)), c(2))))];
      for (let kw = 0; kw < KW; kw++) {
        const off = kw * dw * 4;
        const xs = sw === 1
          ? m.v128.load(off, 4, iw.get())
          : m.i8x16.shuffle(m.v128.load(off, 4, iw.get()), m.v128.load(off + 16, 4, iw.get()), [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
        cols.push(vacc.set(m.f32x4.add(vacc.get(), m.f32x4.mul(xs, wv[kh * KW + kw]!.get()))));
      }
      body.push(rowIf(kh, cols));
    }
    body.push(m.v128.store(0, 4, m.i32.add(ob.get(), m.i32.shl(ow.get(), c(2))), vacc.get()));
    return body;
  };

  // Rows of at most 8 input and 8 output pixels at stride 1 or 2 (mobilenet's 8x8, 4x4 and 2x2 images, where the
  // 4-pixel middle is short or empty): the input row in two vectors, each tap's 4 columns picked by a shuffle of
  // the two, lanes reading the padding zeroed (by the zero second operand, or a mask when both hold pixels).
  const narrow = (sw === 1 || sw === 2) && OW <= 8 && W <= 8;
  const r0 = fb.local(fb.t.v128), r1 = fb.local(fb.t.v128), vacc2 = fb.local(fb.t.v128);
  // Partial vectors lane by lane, never reading past the row (V8 rejected Binaryen's load/store-lane encoding).
  const loadCols = (from: number): E => {
    const n = Math.min(4, W - from);
    if (n === 4) return m.v128.load(4 * from, 4, row.get());
    let v = fb.splatF32(0);
    for (let j = 0; j < n; j++) v = m.f32x4.replace_lane(v, j, m.f32.load(4 * (from + j), 4, row.get()));
    return v;
  };
  const tapCols = (chunk: number, kw: number): E => {
    const idx: number[] = [];
    const keep: boolean[] = [];
    for (let j = 0; j < 4; j++) {
      const src = (4 * chunk + j) * sw + kw * dw - left;
      const inside = src >= 0 && src < W;
      keep.push(inside);
      for (let b = 0; b < 4; b++) idx.push(inside ? 4 * src + b : W <= 4 ? 16 + b : b);
    }
    const picked = m.i8x16.shuffle(r0.get(), W <= 4 ? fb.splatF32(0) : r1.get(), idx);
    if (W <= 4 || keep.every((k) => k)) return picked;
    return m.v128.and(picked, m.v128.const(Array.from(new Uint8Array(new Int32Array(keep.map((k) => (k ? -1 : 0))).buffer))));
  };
  const storeChunk = (acc: Var, chunk: number): E[] => {
    const n = Math.min(4, OW - 4 * chunk);
    if (n === 4) return [m.v128.store(16 * chunk, 4, ob.get(), acc.get())];
    return Array.from({ length: n }, (_, j) => m.f32.store(16 * chunk + 4 * j, 4, ob.get(), m.f32x4.extract_lane(acc.get(), j)));
  };
  const narrowRow = (): E[] => {
    const accs = OW > 4 ? [vacc, vacc2] : [vacc];
    const body: E[] = accs.map((a) => a.set(fb.splatF32(0)));
    for (let kh = 0; kh < KH; kh++) {
      const cols: E[] = [r0.set(loadCols(0)), ...(W > 4 ? [r1.set(loadCols(4))] : [])];
      accs.forEach((a, chunk) => {
        for (let kw = 0; kw < KW; kw++) cols.push(a.set(m.f32x4.add(a.get(), m.f32x4.mul(tapCols(chunk, kw), wv[kh * KW + kw]!.get()))));
      });
      body.push(rowIf(kh, cols));
    }
    accs.forEach((a, chunk) => body.push(...storeChunk(a, chunk)));
    return body;
  };

  const scalarRange = (from: number, to: number): E => (to > from ? forRange(fb, { i: ow, from: c(from), to: () => c(to), body: scalarPixel() }) : m.nop());
  const perPlane: E[] = [
    xb.set(m.i32.add(x.get(), m.i32.mul(p.get(), c(H * W * 4)))),
    wb.set(m.i32.add(w.get(), m.i32.mul(m.i32.rem_u(p.get(), c(C)), c(taps * 4)))),
    ...ws.map((v, t) => v.set(m.f32.load(t * 4, 4, wb.get()))),
    ...wv.map((v, t) => v.set(m.f32x4.splat(ws[t]!.get()))),
    forRange(fb, {
      i: oh, from: c(0), to: () => c(OH),
      body: narrow ? [...narrowRow(), fb.inc(ob, OW * 4)] : [
        scalarRange(0, vlo),
        vend > vlo ? forRange(fb, { i: ow, from: c(vlo), to: () => c(vend), step: 4, body: vectorPixels() }) : m.nop(),
        scalarRange(vend, OW),
        fb.inc(ob, OW * 4),
      ],
    }),
  ];
  return fb.seq([ob.set(out.get()), forRange(fb, { i: p, from: c(0), to: () => planes.get(), body: perPlane })]);
}
