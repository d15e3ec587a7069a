// Codegen stage (wasm): a 3x3 stride-1 convolution stored NCHW as Winograd F(2x2, 3x3) (kernel.ts `winograd`,
// chosen by plan-winograd.ts): per image and block of output tile rows, the input transform V = Bᵀ d B of every
// 4x4 input tile written straight into the matmul microkernel's B panels, 16 products M = U V (U = G g Gᵀ, the
// transformed weights, written as A panels), and the output transform Y = Aᵀ M A into the 2x2 output pixels, then
// the matmul epilogue (bias, activation) over the block's output rows. 16 multiply-adds per tile and channel pair
// instead of 36; the transforms are additions (and halvings in G), vectorised over 4 tiles of one tile row.
import type { MatmulKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";
import type { SimdVariant } from "./matmul-blocking.js";
import { internalFn, microkernel } from "./matmul-micro.js";
import { WINOGRAD_PREPACK } from "../../../runtime/wasm/prepack.js";
import { EpilogueRenderer } from "./matmul-epilogue.js";
import { WINOGRAD_MICRO, winogradGrid } from "../plan-winograd.js";

/** i8x16.shuffle mask taking 32-bit lanes (0-3 from the first operand, 4-7 from the second). */
const lanes32 = (...l: number[]): number[] => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);
const EVEN = lanes32(0, 2, 4, 6);
const ODD = lanes32(1, 3, 5, 7);
const LO = lanes32(0, 4, 1, 5);
const HI = lanes32(2, 6, 3, 7);

/** Same params as the gathered NCHW matmul (kernel.ts convOut): (x, w, scratch, e..., out, images, O, K, P, m0, m1). */
export function renderWinograd(fb: FnBuilder, k: MatmulKernel, variant: SimdVariant): E {
  const cv = k.aConv, wp = k.winograd;
  if (!cv || !wp || !k.convOut || cv.KH !== 3 || cv.KW !== 3 || cv.stride.some((s) => s !== 1) || cv.dilation.some((d) => d !== 1) || k.flag)
    throw new Error("wasm backend: a Winograd convolution needs a 3x3 stride-1 undilated NCHW gather (compiler bug)");
  const m = fb.m;
  const { C, H, W, OH, OW } = cv;
  const [ph, pw] = cv.pad;
  const shape = WINOGRAD_MICRO;
  const { mr: MR, nr: NR } = shape;
  if (NR !== 8) throw new Error("wasm backend: Winograd's V panels assume NR = 8 (compiler bug)");
  const mk = microkernel(fb, shape, variant);
  if (wp.prepacked) prepackWinograd(fb);
  const { TH, TWp, blockTiles: Tb } = winogradGrid(cv, wp.rowsPerBlock);
  const KR = wp.rowsPerBlock;
  const P = OH * OW;
  const Op = Math.ceil(wp.O / MR) * MR;
  // Byte strides of the 16 matrices: U [O'][C] as MR-row A panels, V [C][Tb] as 8-tile B panels, M [O'][Tb].
  const US = 4 * Op * C, VS = 4 * C * Tb, MS = 4 * Op * Tb;
  const ne = k.epilogue?.inputs.length ?? 0;
  const [x, w, scratch] = [fb.param(0), fb.param(1), fb.param(2)];
  const ins = Array.from({ length: ne }, (_, i) => fb.param(3 + i));
  const out = fb.param(3 + ne);
  const e0 = 4 + ne;
  const [images, m0, m1] = [fb.param(e0), fb.param(e0 + 4), fb.param(e0 + 5)];
  const c4 = (v: number): E => m.i32.const(v);
  const add = (...xs: E[]): E => xs.reduce((s, v) => m.i32.add(s, v));
  const mul = (a: E, v: number): E => (v === 1 ? a : m.i32.mul(a, c4(v)));
  const inside = (i: E, n: number): E => m.i32.lt_u(i, c4(n));
  const v = (): Var => fb.i32();
  const vec = (): Var => fb.local(fb.t.v128);
  const fadd = (a: E, b: E): E => m.f32x4.add(a, b);
  const fsub = (a: E, b: E): E => m.f32x4.sub(a, b);

  const [U, V, Mb, n, xi, oi, nOr, nP, oo, o, c, src, dst, blk, ty0, gi, t, ty, tx, row0, col0, fast, xc, vd] =
    Array.from({ length: 24 }, v);
  const [xs, p, tp, up, vp, mp, r0, mEnd] = [v(), v(), v(), v(), v(), v(), v(), v()];
  const prepacked = wp.prepacked === true;

  // Weights: U[ξ] = G g Gᵀ for output channels [m0, m1), zero rows up to the panel edge.
  const wStmts = transformWeight(fb, src, (q, val) => m.f32.store(q * US, 4, dst.get(), val));
  wStmts.push(fb.inc(dst, 4 * MR));
  const zeroRow = Array.from({ length: 16 }, (_, q) => m.f32.store(q * US, 4, dst.get(), m.f32.const(0)));
  const weightLoop = forRange(fb, { i: oo, from: c4(0), to: () => nP.get(), body: [
    o.set(add(m0.get(), oo.get())),
    // Row oo of panel oo / MR, lane oo % MR.
    dst.set(add(U.get(), mul(m.i32.div_u(oo.get(), c4(MR)), 4 * MR * C), m.i32.shl(m.i32.rem_u(oo.get(), c4(MR)), c4(2)))),
    src.set(add(w.get(), mul(o.get(), 36 * C))),
    m.if(m.i32.lt_s(o.get(), m1.get()),
      forRange(fb, { i: c, from: c4(0), to: () => c4(C), body: wStmts }),
      forRange(fb, { i: c, from: c4(0), to: () => c4(C), body: [...zeroRow, fb.inc(dst, 4 * MR)] })),
  ] });

  // Input: 4 tiles of one tile row per vector. d[i][j] of tile l is x[row0 + i][col0 + 2l + j].
  const d = Array.from({ length: 4 }, () => Array.from({ length: 4 }, vec));
  const ev = Array.from({ length: 16 }, vec);
  const rowOk = Array.from({ length: 4 }, v);
  const inStmts: E[] = [];
  for (let i = 0; i < 4; i++) {
    const di = d[i]!;
    const at = (off: number): E => m.v128.load(4 * off, 4, src.get());
    const fastLoads = [
      di[0]!.set(m.i8x16.shuffle(at(0), at(4), EVEN)),
      di[1]!.set(m.i8x16.shuffle(at(0), at(4), ODD)),
      di[2]!.set(m.i8x16.shuffle(at(2), at(6), EVEN)),
      di[3]!.set(m.i8x16.shuffle(at(2), at(6), ODD)),
    ];
    const slowLoads: E[] = [];
    for (let j = 0; j < 4; j++) {
      let e: E = fb.splatF32(0);
      for (let l = 0; l < 4; l++) {
        const off = 2 * l + j;
        e = m.f32x4.replace_lane(e, l, m.if(inside(add(col0.get(), c4(off)), W), m.f32.load(4 * off, 4, src.get()), m.f32.const(0)));
      }
      slowLoads.push(di[j]!.set(e));
    }
    const zeros = di.map((q) => q.set(fb.splatF32(0)));
    inStmts.push(m.if(rowOk[i]!.get(), fb.seq([
      src.set(add(xc.get(), m.i32.shl(add(mul(add(row0.get(), c4(i)), W), col0.get()), c4(2)))),
      m.if(fast.get(), fb.seq(fastLoads), fb.seq(slowLoads)),
    ]), fb.seq(zeros)));
    // e = d B along the row.
    const g = (j: number) => di[j]!.get();
    inStmts.push(
      ev[4 * i]!.set(fsub(g(0), g(2))),
      ev[4 * i + 1]!.set(fadd(g(1), g(2))),
      ev[4 * i + 2]!.set(fsub(g(2), g(1))),
      ev[4 * i + 3]!.set(fsub(g(1), g(3))),
    );
  }
  // V = Bᵀ e down the columns, ξ = 4i + j, at lane (t % 8) of panel t / 8.
  for (let j = 0; j < 4; j++) {
    const e = (i: number) => ev[4 * i + j]!.get();
    [fsub(e(0), e(2)), fadd(e(1), e(2)), fsub(e(2), e(1)), fsub(e(1), e(3))]
      .forEach((val, i) => inStmts.push(m.v128.store((4 * i + j) * VS, 4, vd.get(), val)));
  }
  inStmts.push(fb.inc(vd, 4 * NR), fb.inc(xc, 4 * H * W));
  const inputLoop = forRange(fb, { i: gi, from: c4(0), to: () => c4(Tb / 4), body: [
    t.set(mul(gi.get(), 4)),
    ty.set(m.i32.div_u(t.get(), c4(TWp))),
    tx.set(m.i32.sub(t.get(), mul(ty.get(), TWp))),
    row0.set(m.i32.sub(mul(add(ty0.get(), ty.get()), 2), c4(ph))),
    col0.set(m.i32.sub(mul(tx.get(), 2), c4(pw))),
    ...rowOk.map((r, i) => r.set(inside(add(row0.get(), c4(i)), H))),
    fast.set(W >= 10 ? m.i32.le_u(col0.get(), c4(W - 10)) : c4(0)),
    vd.set(add(V.get(), mul(m.i32.shr_u(t.get(), c4(3)), 4 * NR * C), m.i32.shl(m.i32.and(t.get(), c4(7)), c4(2)))),
    xc.set(xi.get()),
    forRange(fb, { i: c, from: c4(0), to: () => c4(C), body: inStmts }),
  ] });

  // The 16 products, panel by panel: M[ξ] rows [0, nP) x Tb tiles.
  const gemm = forRange(fb, { i: xs, from: c4(0), to: () => c4(16), body: [
    up.set(add(U.get(), mul(xs.get(), US))),
    vp.set(add(V.get(), mul(xs.get(), VS))),
    mp.set(add(Mb.get(), mul(xs.get(), MS))),
    forRange(fb, { i: tp, from: c4(0), to: () => c4(Tb / NR), body: [
      forRange(fb, { i: p, from: c4(0), to: () => nP.get(), step: MR, body: [
        m.call(mk, [
          add(up.get(), mul(p.get(), 4 * C)),
          add(vp.get(), mul(tp.get(), 4 * NR * C)),
          add(mp.get(), mul(p.get(), 4 * Tb), mul(tp.get(), 4 * NR)),
          c4(4 * Tb), c4(C), c4(0),
        ], fb.b.none),
      ] }),
    ] }),
  ] });

  // Output: Y = Aᵀ M A for 4 tiles at once, stored as two 8-pixel runs per output row where they fit.
  const mv = Array.from({ length: 16 }, vec);
  const sv = Array.from({ length: 8 }, vec);
  const yv = Array.from({ length: 4 }, vec);
  const outStmts: E[] = [
    ty.set(m.i32.div_u(t.get(), c4(TWp))),
    tx.set(m.i32.sub(t.get(), mul(ty.get(), TWp))),
    ty.set(add(ty0.get(), ty.get())),
    ...mv.map((q, xi2) => q.set(m.v128.load(xi2 * MS, 4, src.get()))),
  ];
  for (let j = 0; j < 4; j++) {
    const mm = (i: number) => mv[4 * i + j]!.get();
    outStmts.push(sv[j]!.set(fadd(fadd(mm(0), mm(1)), mm(2))), sv[4 + j]!.set(fsub(fsub(mm(1), mm(2)), mm(3))));
  }
  for (let a = 0; a < 2; a++) {
    const s = (j: number) => sv[4 * a + j]!.get();
    outStmts.push(yv[2 * a]!.set(fadd(fadd(s(0), s(1)), s(2))), yv[2 * a + 1]!.set(fsub(fsub(s(1), s(2)), s(3))));
  }
  const oh = v(), ow = v();
  const slowStores: E[] = [];
  for (let a = 0; a < 2; a++) for (let l = 0; l < 4; l++) for (let b = 0; b < 2; b++) {
    slowStores.push(m.if(
      m.i32.and(inside(add(oh.get(), c4(a)), OH), inside(add(ow.get(), c4(2 * l + b)), OW)),
      m.f32.store(4 * (a * OW + 2 * l + b), 4, dst.get(), m.f32x4.extract_lane(yv[2 * a + b]!.get(), l)),
    ));
  }
  const fastStores = [
    m.v128.store(0, 4, dst.get(), m.i8x16.shuffle(yv[0]!.get(), yv[1]!.get(), LO)),
    m.v128.store(16, 4, dst.get(), m.i8x16.shuffle(yv[0]!.get(), yv[1]!.get(), HI)),
    m.v128.store(4 * OW, 4, dst.get(), m.i8x16.shuffle(yv[2]!.get(), yv[3]!.get(), LO)),
    m.v128.store(4 * OW + 16, 4, dst.get(), m.i8x16.shuffle(yv[2]!.get(), yv[3]!.get(), HI)),
  ];
  outStmts.push(
    oh.set(mul(ty.get(), 2)),
    ow.set(mul(tx.get(), 2)),
    dst.set(add(oi.get(), mul(o.get(), 4 * P), m.i32.shl(add(mul(oh.get(), OW), ow.get()), c4(2)))),
    m.if(m.i32.and(m.i32.lt_s(add(oh.get(), c4(1)), c4(OH)), m.i32.lt_s(add(ow.get(), c4(7)), c4(OW))), fb.seq(fastStores), fb.seq(slowStores)),
    fb.inc(src, 16),
  );
  const realTiles = KR * TWp;
  const outputLoop = forRange(fb, { i: oo, from: m.i32.sub(m0.get(), r0.get()), to: () => mEnd.get(), body: [
    o.set(add(r0.get(), oo.get())),
    src.set(add(Mb.get(), mul(oo.get(), 4 * Tb))),
    forRange(fb, { i: t, from: c4(0), to: () => c4(realTiles), step: 4, body: outStmts }),
  ] });

  // The epilogue over the block's output rows [2 ty0, min(2 (ty0 + KR), OH)) of channels [m0, m1), in place.
  const epi = k.epilogue;
  const [pix0, npix, sums, ld, N, h] = [v(), v(), v(), v(), v(), v()];
  const epilogue = epi ? [
    pix0.set(mul(mul(ty0.get(), 2), OW)),
    npix.set(m.i32.sub(m.select(m.i32.lt_s(mul(add(ty0.get(), c4(KR)), 2), c4(OH)), mul(add(ty0.get(), c4(KR)), 2 * OW), c4(P)), pix0.get())),
    sums.set(add(oi.get(), m.i32.shl(add(mul(m0.get(), P), pix0.get()), c4(2)))),
    ld.set(c4(4 * P)), N.set(c4(P)), h.set(nOr.get()),
    new EpilogueRenderer(fb, epi).render({ sums, ld, out: oi, inputs: ins, N, row0: m0, col0: pix0, h, w: npix }),
  ] : [];

  const blocks = Math.ceil(TH / KR);
  return fb.seq([
    m.if(m.i32.ge_s(m0.get(), m1.get()), m.return()),
    nOr.set(m.i32.sub(m1.get(), m0.get())),
    // Rows of U and M start at r0: m0 itself when the kernel transforms the weights, else the panel holding m0 (a
    // thread's chunk starts at a multiple of the build's MR, 6 in the relaxed one).
    r0.set(prepacked ? m.i32.and(m0.get(), c4(-MR)) : m0.get()),
    mEnd.set(m.i32.sub(m1.get(), r0.get())),
    nP.set(mul(m.i32.div_u(add(mEnd.get(), c4(MR - 1)), c4(MR)), MR)),
    U.set(prepacked ? add(w.get(), mul(r0.get(), 4 * C)) : scratch.get()),
    // Scratch: [U, when transformed here][V][M].
    V.set(prepacked ? scratch.get() : add(U.get(), c4(16 * US))),
    Mb.set(add(V.get(), c4(16 * VS))),
    prepacked ? m.nop() : weightLoop,
    forRange(fb, { i: n, from: c4(0), to: () => images.get(), body: [
      xi.set(add(x.get(), mul(n.get(), 4 * C * H * W))),
      oi.set(add(out.get(), mul(n.get(), 4 * wp.O * P))),
      forRange(fb, { i: blk, from: c4(0), to: () => c4(blocks), body: [
        ty0.set(mul(blk.get(), KR)),
        inputLoop,
        gemm,
        outputLoop,
        ...epilogue,
      ] }),
    ] }),
  ]);
}

/**
 * Statements turning the 3x3 filter at `src` (9 floats) into its 16 transformed values U = G g Gᵀ, each passed to
 * `store(ξ, value)` with ξ = 4i + j; `src` then steps to the next filter.
 */
function transformWeight(fb: FnBuilder, src: Var, store: (xi: number, val: E) => E): E[] {
  const m = fb.m;
  const gl = Array.from({ length: 9 }, () => fb.local(fb.t.f32));
  const tl = Array.from({ length: 12 }, () => fb.local(fb.t.f32));
  const half = (e: E): E => m.f32.mul(e, m.f32.const(0.5));
  const f = { add: (a: E, b: E) => m.f32.add(a, b), sub: (a: E, b: E) => m.f32.sub(a, b) };
  const out: E[] = gl.map((l, i) => l.set(m.f32.load(4 * i, 4, src.get())));
  // t = G g (4x3): rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 of g's rows.
  for (let j = 0; j < 3; j++) {
    const gg = (i: number) => gl[3 * i + j]!.get();
    out.push(tl[j]!.set(gg(0)));
    out.push(tl[3 + j]!.set(half(f.add(f.add(gg(0), gg(1)), gg(2)))));
    out.push(tl[6 + j]!.set(half(f.add(f.sub(gg(0), gg(1)), gg(2)))));
    out.push(tl[9 + j]!.set(gg(2)));
  }
  // U = t Gᵀ.
  for (let i = 0; i < 4; i++) {
    const tt = (j: number) => tl[3 * i + j]!.get();
    const vals = [tt(0), half(f.add(f.add(tt(0), tt(1)), tt(2))), half(f.add(f.sub(tt(0), tt(1)), tt(2))), tt(2)];
    vals.forEach((val, j) => out.push(store(4 * i + j, val)));
  }
  out.push(fb.inc(src, 36));
  return out;
}

/**
 * `__kiln_prepack_wino(w, dst, K, O)` (exported, runtime/wasm/prepack.ts WINOGRAD_PREPACK): the transform of a whole
 * weight [O, C, 3, 3] (K = 9 C) in the kernel's layout, U[ξ] as 4-row A panels over roundUp(O, 4) rows (zeros past O),
 * which a `prepacked` Winograd kernel reads instead of transforming per call. Any shape: its sizes are arguments.
 */
export function prepackWinograd(fb: FnBuilder): string {
  const MR = WINOGRAD_MICRO.mr;
  return internalFn(fb, WINOGRAD_PREPACK, 4, (g) => {
    const m = g.m;
    const [w, dst, K, O] = [0, 1, 2, 3].map((i) => g.param(i));
    const [C, us, oo, c, src, row, q] = Array.from({ length: 7 }, () => g.i32());
    const c4 = (v: number): E => m.i32.const(v);
    const at = (xi: number): E => m.i32.add(row.get(), m.i32.mul(us.get(), c4(xi)));
    const body = transformWeight(g, src, (xi, val) => m.f32.store(0, 4, at(xi), val));
    const zeros = Array.from({ length: 16 }, (_, xi) => m.f32.store(0, 4, at(xi), m.f32.const(0)));
    return g.seq([
      C.set(m.i32.div_u(K!.get(), c4(9))),
      q.set(m.i32.and(m.i32.add(O!.get(), c4(MR - 1)), c4(-MR))),
      us.set(m.i32.shl(m.i32.mul(q.get(), C.get()), c4(2))),
      forRange(g, { i: oo, from: c4(0), to: () => q.get(), body: [
        // Row oo of panel oo / MR: C rows of MR floats, lane oo % MR.
        row.set(m.i32.add(dst!.get(), m.i32.add(m.i32.mul(m.i32.div_u(oo.get(), c4(MR)), m.i32.mul(C.get(), c4(4 * MR))), m.i32.shl(m.i32.rem_u(oo.get(), c4(MR)), c4(2))))),
        src.set(m.i32.add(w!.get(), m.i32.mul(oo.get(), m.i32.shl(K!.get(), c4(2))))),
        m.if(m.i32.lt_s(oo.get(), O!.get()),
          forRange(g, { i: c, from: c4(0), to: () => C.get(), body: [...body, g.inc(row, 4 * MR)] }),
          forRange(g, { i: c, from: c4(0), to: () => C.get(), body: [...zeros, g.inc(row, 4 * MR)] })),
      ] }),
    ]);
  });
}
