// Codegen stage (wasm): the direct pooling kernel (kernel.ts: pool2d). Per plane and output row, a SIMD middle of 4
// neighbouring outputs whose taps all lie inside the row — stride 1: one v128 load per tap; stride 2: two loads per
// pair of taps, the rows combined first, then split into even and odd columns by two shuffles — and a scalar head
// and tail whose taps are bounds-checked (that is the padding: skipped, as max's -inf or avg's 0 would be). A
// last, overlapping vector block covers the tail where it fits. A fused producer (the prologue) is evaluated on each
// loaded vector before it is pooled. max is f32x4.max / f32.max, NaN-propagating with +0 above -0, as the reference.
import type { ElementwiseKernel, EwExpr, Pool2dKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { ExprRenderer } from "./elementwise.js";
import { forRange } from "./loops.js";

const EVEN = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD = EVEN.map((b) => b + 4);

/** Where the vector blocks start (a regular run, then one overlapping block) and the scalar columns around them. */
export function poolColumns(k: Pick<Pool2dKernel, "W" | "OW" | "KW" | "stride" | "left">): { starts: number[]; scalar: [number, number][] } {
  const s = k.stride[1];
  if (s !== 1 && s !== 2) return { starts: [], scalar: [[0, k.OW]] };
  // Columns read by a block from its first tap's column: 4 + KW - 1 at stride 1, whole pairs of vectors at stride 2.
  const reach = s === 1 ? k.KW + 3 : 2 * (Math.ceil(k.KW / 2) - 1) + 8;
  const lo = Math.ceil(k.left / s);
  const hi = Math.min(k.OW - 4, Math.floor((k.W - reach + k.left) / s));
  if (hi < lo) return { starts: [], scalar: [[0, k.OW]] };
  const starts: number[] = [];
  for (let o = lo; o <= hi; o += 4) starts.push(o);
  if (starts[starts.length - 1]! < hi) starts.push(hi);
  const end = starts[starts.length - 1]! + 4;
  return { starts, scalar: [[0, lo], [end, k.OW]].filter(([a, b]) => b! > a!) as [number, number][] };
}

/** Params (in_0, ..., in_{n-1}, out, planes, pixels); one input x without a prologue; pixels is for the WGSL grid. */
export function renderPool2d(fb: FnBuilder, k: Pool2dKernel): E {
  const m = fb.m;
  const { C, H, W, OH, OW, KH, KW, top, left } = k;
  const [sh, sw] = k.stride;
  const pro = k.prologue ?? { inputs: [{ dtype: "f32" as const, bcast: [false, false, false, false] }], expr: { t: "in", index: 0 } as EwExpr };
  const nIn = pro.inputs.length;
  const ins = Array.from({ length: nIn }, (_, i) => fb.param(i));
  const out = fb.param(nIn), planes = fb.param(nIn + 1);
  const c = (v: number) => m.i32.const(v);
  const ek: ElementwiseKernel = { kind: "elementwise", rank: 4, inputs: pro.inputs, out: "f32", expr: pro.expr };
  const ex = new ExprRenderer(fb, ek);
  const isMax = k.op === "max";
  // Values that are +0, positive or NaN (a relu's, of either NaN sign) order as unsigned integers, NaN above +inf: one
  // i32x4.max_u is then the exact NaN-propagating max, where V8 spells f32x4.max in eight instructions.
  const nonNegative = pro.expr.t === "op" && pro.expr.op === "relu" && pro.expr.dtype === "f32";
  const comb = (a: E, b: E) => (!isMax ? m.f32x4.add(a, b) : nonNegative ? m.i32x4.max_u(a, b) : m.f32x4.max(a, b));
  const comb1 = (a: E, b: E) => (isMax ? m.f32.max(a, b) : m.f32.add(a, b));
  const identity = isMax ? -Infinity : 0;

  // Element strides of each input over [n, c, h, w] (0 along a broadcast axis); every one is contiguous.
  const strides = pro.inputs.map((inp) => {
    const [bn, bc, bh, bw] = inp.bcast;
    const eW = bw ? 1 : W, eH = bh ? 1 : H, eC = bc ? 1 : C;
    return { n: bn ? 0 : eC * eH * eW, c: bc ? 0 : eH * eW, h: bh ? 0 : eW, w: bw ? 0 : 1 };
  });
  const p = fb.i32(), img = fb.i32(), ch = fb.i32(), oh = fb.i32(), ow = fb.i32(), ob = fb.i32(), ih = fb.i32(), iw = fb.i32(), col = fb.i32();
  const base = ins.map(() => fb.i32());
  // Per tap row: is it inside the image, and each input's address of that row.
  const rowOk = Array.from({ length: KH }, () => fb.i32());
  const rowAt = Array.from({ length: KH }, () => ins.map(() => fb.i32()));
  const rowsAlwaysIn = top === 0 && (OH - 1) * sh + KH <= H;
  // Inputs the same over the whole plane (per channel, per image, scalars): loaded once per plane.
  const planeConst = strides.map((st) => (st.h === 0 && st.w === 0 ? { s: fb.local(fb.t.f32), v: fb.local(fb.t.v128) } : undefined));

  /** The pooled value at column `colBytes` (a byte offset from the row start of a stride-1 input) of tap row kh. */
  const value = (mode: "scalar" | "vector", kh: number, colBytes: E, off: number): { stmts: E[]; value: E } => {
    const stmts: E[] = [];
    const loaded: Var[] = [];
    pro.inputs.forEach((_, i) => {
      const st = strides[i]!;
      const fixed = planeConst[i];
      if (fixed) return void loaded.push(mode === "vector" ? fixed.v : fixed.s);
      const v = fb.local(mode === "vector" ? fb.t.v128 : fb.t.f32);
      const at = st.w === 0 ? rowAt[kh]![i]!.get() : m.i32.add(rowAt[kh]![i]!.get(), colBytes);
      const o = st.w === 0 ? 0 : off;
      stmts.push(v.set(mode === "vector" ? (st.w === 0 ? m.v128.load32_splat(0, 4, at) : m.v128.load(o, 4, at)) : m.f32.load(o, 4, at)));
      loaded.push(v);
    });
    const el = ex.element(mode, (i) => loaded[i]!.get());
    return { stmts: [...stmts, ...el.stmts], value: el.value };
  };

  const accs = Array.from({ length: Math.ceil(KW / 2) * 2 + KW }, () => fb.local(fb.t.v128));
  const acc = fb.local(fb.t.v128), sacc = fb.local(fb.t.f32);
  // Four outputs from column ow: per tap row, its vectors combined into the row accumulators, then the taps.
  const vectorBlock = (): E[] => {
    const body: E[] = [col.set(m.i32.shl(m.i32.sub(m.i32.mul(ow.get(), c(sw)), c(left)), c(2)))];
    // Stride 1: accumulator kw holds tap column kw; stride 2: accumulators 2t, 2t + 1 hold the vectors at 2t and 2t + 4.
    const vecs = sw === 1 ? Array.from({ length: KW }, (_, kw) => 4 * kw) : Array.from({ length: Math.ceil(KW / 2) }, (_, t) => [8 * t, 8 * t + 16]).flat();
    // As unsigned integers -inf is above every value: there +0, which every value reaches (every window holds an
    // element of the image, so some tap row is in it).
    vecs.forEach((_, j) => { if (!rowsAlwaysIn) body.push(accs[j]!.set(fb.splatF32(nonNegative ? 0 : identity))); });
    for (let kh = 0; kh < KH; kh++) {
      const row: E[] = [];
      vecs.forEach((off, j) => {
        const v = value("vector", kh, col.get(), off);
        row.push(...v.stmts, accs[j]!.set(rowsAlwaysIn && kh === 0 ? v.value : comb(accs[j]!.get(), v.value)));
      });
      body.push(rowsAlwaysIn ? fb.seq(row) : m.if(rowOk[kh]!.get(), fb.seq(row)));
    }
    const taps: E[] = sw === 1
      ? vecs.map((_, j) => accs[j]!.get())
      : Array.from({ length: KW }, (_, kw) => m.i8x16.shuffle(accs[2 * (kw >> 1)]!.get(), accs[2 * (kw >> 1) + 1]!.get(), kw % 2 ? ODD : EVEN));
    let r = taps[0]!;
    for (const t of taps.slice(1)) r = comb(r, t);
    body.push(acc.set(isMax ? r : m.f32x4.div(r, fb.splatF32(KH * KW))));
    body.push(m.v128.store(0, 4, m.i32.add(ob.get(), m.i32.shl(ow.get(), c(2))), acc.get()));
    return body;
  };

  // One output at column ow, every tap checked against the row's bounds.
  const scalarPixel = (): E[] => {
    const body: E[] = [sacc.set(m.f32.const(identity))];
    for (let kh = 0; kh < KH; kh++) {
      const cols: E[] = [];
      for (let kw = 0; kw < KW; kw++) {
        const v = value("scalar", kh, m.i32.shl(iw.get(), c(2)), 0);
        cols.push(iw.set(m.i32.add(m.i32.mul(ow.get(), c(sw)), c(kw - left))));
        cols.push(m.if(m.i32.lt_u(iw.get(), c(W)), fb.seq([...v.stmts, sacc.set(comb1(sacc.get(), v.value))])));
      }
      body.push(m.if(rowOk[kh]!.get(), fb.seq(cols)));
    }
    body.push(m.f32.store(0, 4, m.i32.add(ob.get(), m.i32.shl(ow.get(), c(2))), isMax ? sacc.get() : m.f32.div(sacc.get(), m.f32.const(KH * KW))));
    return body;
  };

  const cols = ex.vectorizable ? poolColumns(k) : { starts: [], scalar: [[0, OW]] as [number, number][] };
  const { starts } = cols;
  // A regular run of blocks (a loop), then the overlapping last one when there is one.
  const regular = starts.filter((s, i) => i === 0 || s === starts[i - 1]! + 4);
  const extra = starts.slice(regular.length);
  const perRow: E[] = [];
  for (let kh = 0; kh < KH; kh++) {
    perRow.push(ih.set(m.i32.add(m.i32.mul(oh.get(), c(sh)), c(kh - top))));
    perRow.push(rowOk[kh]!.set(m.i32.lt_u(ih.get(), c(H))));
    strides.forEach((st, i) => perRow.push(rowAt[kh]![i]!.set(m.i32.add(base[i]!.get(), m.i32.mul(ih.get(), c(4 * st.h))))));
  }
  for (const [a, b] of cols.scalar.filter(([a]) => a === 0)) perRow.push(forRange(fb, { i: ow, from: c(a), to: () => c(b), body: scalarPixel() }));
  if (regular.length) perRow.push(forRange(fb, { i: ow, from: c(regular[0]!), to: () => c(regular[regular.length - 1]! + 1), step: 4, body: vectorBlock() }));
  for (const s of extra) perRow.push(ow.set(c(s)), ...vectorBlock());
  for (const [a, b] of cols.scalar.filter(([a]) => a !== 0)) perRow.push(forRange(fb, { i: ow, from: c(a), to: () => c(b), body: scalarPixel() }));
  perRow.push(fb.inc(ob, OW * 4));

  const perPlane: E[] = [
    img.set(m.i32.div_u(p.get(), c(C))),
    ch.set(m.i32.sub(p.get(), m.i32.mul(img.get(), c(C)))),
    ...strides.map((st, i) => base[i]!.set(m.i32.add(ins[i]!.get(), m.i32.shl(m.i32.add(m.i32.mul(img.get(), c(st.n)), m.i32.mul(ch.get(), c(st.c))), c(2))))),
    ...planeConst.flatMap((pc, i) => (pc ? [pc.s.set(m.f32.load(0, 4, base[i]!.get())), pc.v.set(m.f32x4.splat(pc.s.get()))] : [])),
    forRange(fb, { i: oh, from: c(0), to: () => c(OH), body: perRow }),
  ];
  return fb.seq([ob.set(out.get()), forRange(fb, { i: p, from: c(0), to: () => planes.get(), body: perPlane })]);
}
