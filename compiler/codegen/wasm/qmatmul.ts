// Codegen stage (wasm): the int8 matmul (kernel kind "qmatmul"). Per block of QMC rows it quantizes A into
// MR-row panels of i16 k-pairs (values q - zero point, in [-255, 255]), then runs a 4x8 microkernel of
// i32x4.dot_i16x8_s against the prepacked weight panels and dequantizes (bias, relu, requantize) in the epilogue.
import type { QMatmulKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { forRange } from "./loops.js";
import { QMC, QMR, QNR, checkQMatmul, qmatmulArgs } from "./qmatmul-layout.js";

const V = QNR / 4;

/** Params: see qmatmulArgs (a, w, qp, [bias,] scratch, out, M, K, N, m0, m1). */
export function renderQMatmul(fb: FnBuilder, k: QMatmulKernel): E {
  checkQMatmul(k);
  const m = fb.m;
  const P = qmatmulArgs(k);
  const [a, w, qp, scratch, out, K, N, m0, m1] = [P.a, P.w, P.qp, P.scratch, P.out, P.K, P.N, P.m0, P.m1].map((i) => fb.param(i)) as Var[];
  const bias = k.bias ? fb.param(P.bias) : null;
  const c = (x: number): E => m.i32.const(x);
  const add = (...xs: E[]): E => xs.reduce((s, x) => m.i32.add(s, x));
  const mul = (x: E, y: E): E => m.i32.mul(x, y);
  const f32c = (x: number): E => m.f32.const(x);
  const i32 = () => fb.i32();
  const f32 = () => fb.local(fb.b.f32);
  const v128 = () => fb.local(fb.t.v128);

  const [Kp, ic, mc, r, src, dst, kk, jr, ir, pa, pb, pp, row, zpi, ap] = Array.from({ length: 15 }, i32);
  const [scale, zpf, mn, mx, x] = Array.from({ length: 5 }, f32);
  const acc = Array.from({ length: QMR }, () => Array.from({ length: V }, v128));
  const bv = Array.from({ length: V }, v128);
  const [av, nan] = [v128(), v128()];
  const nanS = i32();
  const rs = scratch; // row scales sit at the start of the scratch

  // ---- A: one row quantized into its panel (dst: the row's first pair), its scale into rs[r].
  const splatF = (e: E): E => m.f32x4.splat(e);
  const [vScale, vZp, vBias] = [v128(), v128(), v128()];
  // clamp(nearest(x / scale) + zp, 0, 255) - zp. pmin/pmax are single instructions (NaN handling is not needed:
  // a NaN makes the row's scale NaN below), and adding 2^23 leaves the integer in the low mantissa bits, so
  // q - zp = bits - (bits(2^23) + zp) without a saturating conversion.
  const quantV = (xv: E): E => m.i32x4.sub(
    m.f32x4.add(m.f32x4.pmin(m.f32x4.pmax(m.f32x4.add(m.f32x4.nearest(m.f32x4.div(xv, vScale.get())), vZp.get()), fb.splatF32(0)), fb.splatF32(255)), fb.splatF32(8388608)),
    vBias.get(),
  );
  const quantS = (xs: E): E => m.i32.sub(
    m.i32.trunc_s_sat.f32(m.f32.min(m.f32.max(m.f32.add(m.f32.nearest(m.f32.div(xs, scale.get())), zpf.get()), f32c(0)), f32c(255))),
    zpi.get(),
  );
  // Pair p of a row lives at dst + p * QMR * 4; lane j of an i16x8 holding k..k+7 is pair k/2 + j.
  const storePairs = (vec: () => E): E[] => Array.from({ length: 4 }, (_, j) => m.v128.store32_lane(j * QMR * 4, 1, j, add(dst.get(), mul(m.i32.shr_u(kk.get(), c(1)), c(QMR * 4))), vec()));
  const storeOne = (v: E): E => m.i32.store16(0, 1, add(dst.get(), mul(m.i32.shr_u(kk.get(), c(1)), c(QMR * 4)), m.i32.shl(m.i32.and(kk.get(), c(1)), c(1))), v);

  const rowParams: E[] = [];
  if (k.input === "dynamic") {
    // ONNX DynamicQuantizeLinear per row: the range always includes 0; an all-zero row gets scale 1.
    const vmn = v128(), vmx = v128();
    const lanes = (v: Var, op: (p: E, q: E) => E): E =>
      op(op(m.f32x4.extract_lane(v.get(), 0), m.f32x4.extract_lane(v.get(), 1)), op(m.f32x4.extract_lane(v.get(), 2), m.f32x4.extract_lane(v.get(), 3)));
    // pmin/pmax skip NaNs; the quantization pass below finds them and makes the row's scale NaN.
    rowParams.push(
      vmn.set(fb.splatF32(0)), vmx.set(fb.splatF32(0)),
      forRange(fb, { i: kk, from: c(0), to: () => m.i32.sub(K.get(), c(3)), step: 4, body: [
        av.set(m.v128.load(0, 4, add(src.get(), m.i32.shl(kk.get(), c(2))))),
        vmn.set(m.f32x4.pmin(vmn.get(), av.get())),
        vmx.set(m.f32x4.pmax(vmx.get(), av.get())),
      ] }),
      mn.set(lanes(vmn, (p, q) => m.f32.min(p, q))),
      mx.set(lanes(vmx, (p, q) => m.f32.max(p, q))),
      forRange(fb, { i: kk, to: () => K.get(), body: [
        x.set(m.f32.load(0, 4, add(src.get(), m.i32.shl(kk.get(), c(2))))),
        mn.set(m.f32.min(mn.get(), x.get())),
        mx.set(m.f32.max(mx.get(), x.get())),
      ] }),
      scale.set(m.f32.div(m.f32.sub(mx.get(), mn.get()), f32c(255))),
      m.if(m.f32.eq(scale.get(), f32c(0)), scale.set(f32c(1))),
      zpf.set(m.f32.nearest(m.f32.min(m.f32.max(m.f32.div(m.f32.neg(mn.get()), scale.get()), f32c(0)), f32c(255)))),
    );
  } else {
    rowParams.push(scale.set(m.f32.load(0, 4, qp.get())), zpf.set(m.f32.load(4, 4, qp.get())));
  }
  rowParams.push(
    zpi.set(m.i32.trunc_s_sat.f32(zpf.get())),
    vScale.set(splatF(scale.get())), vZp.set(splatF(zpf.get())), vBias.set(m.i32x4.splat(m.i32.add(zpi.get(), c(0x4b000000)))),
  );

  let quantRow: E[];
  if (k.input === "q8") {
    quantRow = [
      forRange(fb, { i: kk, from: c(0), to: () => m.i32.sub(K.get(), c(7)), step: 8, body: [
        av.set(m.i16x8.sub(m.v128.load8x8_u(0, 1, add(src.get(), kk.get())), m.i16x8.splat(zpi.get()))),
        ...storePairs(() => av.get()),
      ] }),
      forRange(fb, { i: kk, to: () => K.get(), body: [storeOne(m.i32.sub(m.i32.load8_u(0, 1, add(src.get(), kk.get())), zpi.get()))] }),
    ];
  } else {
    // A NaN anywhere in the row (or, for a dynamic range, an infinity: x - x is NaN) makes its scale NaN, so the
    // row's outputs are NaN rather than saturated values.
    const at = (off: number): E => m.v128.load(off, 4, add(src.get(), m.i32.shl(kk.get(), c(2))));
    const x1 = v128();
    const badV = (v: Var): E => (k.input === "dynamic" ? m.f32x4.ne(m.f32x4.sub(v.get(), v.get()), m.f32x4.sub(v.get(), v.get())) : m.f32x4.ne(v.get(), v.get()));
    const badS = (v: Var): E => (k.input === "dynamic" ? m.f32.ne(m.f32.sub(v.get(), v.get()), m.f32.sub(v.get(), v.get())) : m.f32.ne(v.get(), v.get()));
    quantRow = [
      nan.set(fb.splatI32(0)), nanS.set(c(0)),
      forRange(fb, { i: kk, from: c(0), to: () => m.i32.sub(K.get(), c(7)), step: 8, body: [
        av.set(at(0)), x1.set(at(16)),
        nan.set(m.v128.or(nan.get(), m.v128.or(badV(av), badV(x1)))),
        av.set(m.i16x8.narrow_i32x4_s(quantV(av.get()), quantV(x1.get()))),
        ...storePairs(() => av.get()),
      ] }),
      forRange(fb, { i: kk, to: () => K.get(), body: [
        x.set(m.f32.load(0, 4, add(src.get(), m.i32.shl(kk.get(), c(2))))),
        nanS.set(m.i32.or(nanS.get(), badS(x))),
        storeOne(quantS(x.get())),
      ] }),
      m.if(m.i32.or(m.v128.any_true(nan.get()), nanS.get()), scale.set(f32c(NaN))),
    ];
  }
  const esz = k.input === "q8" ? 0 : 2;
  const prepRows = forRange(fb, { i: r, from: c(0), to: () => mc.get(), body: [
    src.set(add(a.get(), m.i32.shl(mul(add(ic.get(), r.get()), K.get()), c(esz)))),
    dst.set(add(ap.get(), mul(m.i32.div_u(r.get(), c(QMR)), mul(Kp.get(), c(QMR * 4))), m.i32.shl(m.i32.rem_u(r.get(), c(QMR)), c(2)))),
    ...rowParams,
    ...quantRow,
    m.f32.store(0, 4, add(rs.get(), m.i32.shl(r.get(), c(2))), scale.get()),
  ] });

  // ---- microkernel: acc[r][v] = sum over pairs of dot(A pair of row r, B pairs of columns 4v..4v+3).
  const zero: E[] = acc.flat().map((v) => v.set(fb.splatI32(0)));
  const step: E[] = bv.map((b, v) => b.set(m.v128.load(16 * v, 4, pb.get())));
  for (let q = 0; q < QMR; q++) {
    step.push(av.set(m.v128.load32_splat(4 * q, 4, pa.get())));
    acc[q]!.forEach((v, j) => step.push(v.set(m.i32x4.add(v.get(), m.i32x4.dot_i16x8_s(av.get(), bv[j]!.get())))));
  }
  step.push(fb.inc(pa, 4 * QMR), fb.inc(pb, 4 * QNR));
  const micro = [
    ...zero,
    forRange(fb, { i: pp, from: c(0), to: () => Kp.get(), body: step }),
  ];

  // ---- epilogue: dequantize, bias, relu, then store f32, requantize to u8, or store the int32 sums.
  const osz = k.output === "q8" ? 0 : 2;
  const sa = f32();
  const vsa = v128();
  const col = (v: number, lane: number): E => add(jr.get(), c(4 * v + lane));
  const outAt = (colE: E): E => add(out.get(), m.i32.shl(add(mul(row.get(), N.get()), colE), c(osz)));
  const vecOut = (accV: E, v: number): E => {
    if (k.output === "i32") return m.v128.store(0, 4, outAt(col(v, 0)), accV);
    const cAt = (): E => m.i32.shl(col(v, 0), c(2));
    let y = m.f32x4.mul(m.f32x4.convert_i32x4_s(accV), m.f32x4.mul(vsa.get(), m.v128.load(16, 4, add(qp.get(), cAt()))));
    if (bias) y = m.f32x4.add(y, m.v128.load(0, 4, add(bias.get(), cAt())));
    // pmax(y, 0) = y < 0 ? 0 : y: NaN stays NaN, and y is never -0 here (0 * scale >= 0 is +0).
    if (k.relu) y = m.f32x4.pmax(y, fb.splatF32(0));
    if (k.output === "f32") return m.v128.store(0, 4, outAt(col(v, 0)), y);
    const qf = m.f32x4.min(m.f32x4.max(m.f32x4.add(m.f32x4.nearest(m.f32x4.div(y, splatF(m.f32.load(8, 4, qp.get())))), splatF(m.f32.load(12, 4, qp.get()))), fb.splatF32(0)), fb.splatF32(255));
    const qi = fb.local(fb.t.v128);
    return fb.seq([
      qi.set(m.i32x4.trunc_sat_f32x4_s(qf)),
      qi.set(m.i16x8.narrow_i32x4_s(qi.get(), qi.get())),
      m.v128.store32_lane(0, 1, 0, outAt(col(v, 0)), m.i8x16.narrow_i16x8_u(qi.get(), qi.get())),
    ]);
  };
  const scalarOut = (accS: E, v: number, lane: number): E => {
    if (k.output === "i32") return m.i32.store(0, 4, outAt(col(v, lane)), accS);
    const cAt = (): E => m.i32.shl(col(v, lane), c(2));
    let y = m.f32.mul(m.f32.convert_s.i32(accS), m.f32.mul(sa.get(), m.f32.load(16, 4, add(qp.get(), cAt()))));
    if (bias) y = m.f32.add(y, m.f32.load(0, 4, add(bias.get(), cAt())));
    if (k.relu) y = m.f32.max(y, f32c(0));
    if (k.output === "f32") return m.f32.store(0, 4, outAt(col(v, lane)), y);
    const qf = m.f32.min(m.f32.max(m.f32.add(m.f32.nearest(m.f32.div(y, m.f32.load(8, 4, qp.get()))), m.f32.load(12, 4, qp.get())), f32c(0)), f32c(255));
    return m.i32.store8(0, 1, outAt(col(v, lane)), m.i32.trunc_s_sat.f32(qf));
  };
  const epilogue: E[] = [];
  acc.forEach((rowAcc, q) => {
    const body: E[] = [row.set(add(ic.get(), ir.get(), c(q))), sa.set(m.f32.load(0, 4, add(rs.get(), m.i32.shl(add(ir.get(), c(q)), c(2))))), vsa.set(splatF(sa.get()))];
    rowAcc.forEach((v, j) => {
      const lanes = Array.from({ length: 4 }, (_, l) => m.if(m.i32.lt_s(col(j, l), N.get()), scalarOut(m.i32x4.extract_lane(v.get(), l), j, l)));
      body.push(m.if(m.i32.le_s(col(j, 4), N.get()), vecOut(v.get(), j), fb.seq(lanes)));
    });
    epilogue.push(m.if(m.i32.lt_s(add(ir.get(), c(q)), mc.get()), fb.seq(body)));
  });

  const tiles = forRange(fb, { i: jr, from: c(0), to: () => N.get(), step: QNR, body: [
    forRange(fb, { i: ir, from: c(0), to: () => mc.get(), step: QMR, body: [
      pa.set(add(ap.get(), mul(ir.get(), m.i32.shl(Kp.get(), c(2))))),
      pb.set(add(w.get(), mul(jr.get(), m.i32.shl(Kp.get(), c(2))))),
      ...micro,
      ...epilogue,
    ] }),
  ] });

  return fb.seq([
    m.if(m.i32.or(m.i32.ge_s(m0.get(), m1.get()), m.i32.eqz(N.get())), m.return()),
    Kp.set(m.i32.shr_u(m.i32.add(K.get(), c(1)), c(1))),
    ap.set(add(scratch.get(), c(QMC * 4))),
    forRange(fb, { i: ic, from: m0.get(), to: () => m1.get(), step: QMC, body: [
      mc.set(m.select(m.i32.lt_s(m.i32.sub(m1.get(), ic.get()), c(QMC)), m.i32.sub(m1.get(), ic.get()), c(QMC))),
      prepRows,
      tiles,
    ] }),
  ]);
}
