// Codegen stage (wasm): batched f32 matmul. Each C[M,N] = A[M,K] @ B[K,N] is tiled 4 rows x 8 columns with
// the 8 f32x4 accumulators in locals, streaming k: one B row segment load, four A splats, eight mul-adds.
// Edges use 4-row x 4-column and 1-row tiles, and scalar code for the last N % 4 columns.
import type { MatmulKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { checkComputeDType } from "./context.js";
import { forRange, groupAxes, nest, product, returnIfEmpty } from "./loops.js";

interface Dims {
  readonly K: Var;
  /** Row strides in bytes: KB[r] = r*K*4 (A), NB[r] = r*N*4 (B and C). */
  readonly KB: readonly Var[];
  readonly NB: readonly Var[];
}

/** acc[r][v] += A[i+r, k] * B[k, j+4v .. j+4v+3] over k, then stored to C; V = 0 is one scalar column. */
function tile(fb: FnBuilder, d: Dims, R: number, V: number, rowA: Var, colB: Var, colC: Var): E {
  const m = fb.m;
  const vec = V > 0;
  const accs = Array.from({ length: R }, () => Array.from({ length: vec ? V : 1 }, () => fb.local(vec ? fb.t.v128 : fb.t.f32)));
  const pa = Array.from({ length: R }, () => fb.i32());
  const pb = fb.i32();
  const bv = Array.from({ length: vec ? V : 1 }, () => fb.local(vec ? fb.t.v128 : fb.t.f32));
  const k = fb.i32();
  const init: E[] = [pb.set(colB.get())];
  pa.forEach((p, r) => init.push(p.set(r === 0 ? rowA.get() : m.i32.add(rowA.get(), d.KB[r]!.get()))));
  accs.flat().forEach((a) => init.push(a.set(vec ? fb.splatF32(0) : m.f32.const(0))));
  const body: E[] = bv.map((b, v) => b.set(vec ? m.v128.load(16 * v, 4, pb.get()) : m.f32.load(0, 4, pb.get())));
  accs.forEach((row, r) => {
    const a = vec ? m.f32x4.splat(m.f32.load(0, 4, pa[r]!.get())) : m.f32.load(0, 4, pa[r]!.get());
    if (vec) {
      const av = fb.local(fb.t.v128);
      body.push(av.set(a));
      row.forEach((acc, v) => body.push(acc.set(m.f32x4.add(acc.get(), m.f32x4.mul(av.get(), bv[v]!.get())))));
    } else {
      body.push(row[0]!.set(m.f32.add(row[0]!.get(), m.f32.mul(a, bv[0]!.get()))));
    }
  });
  pa.forEach((p) => body.push(fb.inc(p, 4)));
  body.push(fb.bump(pb, d.NB[1]!.get()));
  const stores: E[] = [];
  accs.forEach((row, r) => {
    const dst = (): E => (r === 0 ? colC.get() : m.i32.add(colC.get(), d.NB[r]!.get()));
    row.forEach((acc, v) => stores.push(vec ? m.v128.store(16 * v, 4, dst(), acc.get()) : m.f32.store(0, 4, dst(), acc.get())));
  });
  return fb.seq([...init, forRange(fb, { i: k, from: m.i32.const(0), to: () => d.K.get(), body }), ...stores]);
}

/** One block of R rows across all N columns. */
function rowBlock(fb: FnBuilder, d: Dims, N: Var, N8: Var, R: number, rowA: Var, pB: Var, rowC: Var): E {
  const m = fb.m;
  const j = fb.i32();
  const colB = fb.i32();
  const colC = fb.i32();
  const step = (bytes: number): E[] => [fb.inc(colB, bytes), fb.inc(colC, bytes)];
  return fb.seq([
    colB.set(pB.get()),
    colC.set(rowC.get()),
    forRange(fb, { i: j, from: m.i32.const(0), to: () => N8.get(), step: 8, body: [tile(fb, d, R, 2, rowA, colB, colC), ...step(32)] }),
    m.if(m.i32.le_s(m.i32.add(j.get(), m.i32.const(4)), N.get()), fb.seq([tile(fb, d, R, 1, rowA, colB, colC), ...step(16), fb.inc(j, 4)])),
    forRange(fb, { i: j, to: () => N.get(), body: [tile(fb, d, R, 0, rowA, colB, colC), ...step(4)] }),
  ]);
}

/** Params (a, b, out, bext_0..bext_{batchRank-1}, M, K, N). */
export function renderMatmul(fb: FnBuilder, k: MatmulKernel): E {
  const m = fb.m;
  checkComputeDType(k.dtype);
  if (k.dtype !== "f32") throw new Error(`wasm backend: matmul over ${k.dtype} is not supported yet`);
  const br = k.batchRank;
  if (k.aBcast.length !== br || k.bBcast.length !== br) throw new Error(`wasm backend: matmul bcast flags do not match batch rank ${br}`);
  const [M, K, N] = [fb.param(3 + br), fb.param(4 + br), fb.param(5 + br)];
  const groups = groupAxes(br, (q) => (k.aBcast[q] ? "1" : "0") + (k.bBcast[q] ? "1" : "0"));
  const pro: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((q) => fb.param(3 + q).get()));
    pro.push(p.set);
    return p.v;
  });
  pro.push(returnIfEmpty(fb, [...exts, M, N]));
  const local = (e: E): Var => {
    const v = fb.i32();
    pro.push(v.set(e));
    return v;
  };
  const KB1 = local(m.i32.mul(K.get(), m.i32.const(4)));
  const NB1 = local(m.i32.mul(N.get(), m.i32.const(4)));
  const d: Dims = {
    K,
    KB: [local(m.i32.const(0)), KB1, local(m.i32.shl(KB1.get(), m.i32.const(1))), local(m.i32.mul(KB1.get(), m.i32.const(3)))],
    NB: [local(m.i32.const(0)), NB1, local(m.i32.shl(NB1.get(), m.i32.const(1))), local(m.i32.mul(NB1.get(), m.i32.const(3)))],
  };
  const N8 = local(m.i32.and(N.get(), m.i32.const(-8)));
  const M4 = local(m.i32.and(M.get(), m.i32.const(-4)));
  const mn4 = local(m.i32.mul(m.i32.mul(M.get(), N.get()), m.i32.const(4)));

  // Batch strides in bytes; a broadcast batch axis keeps its operand in place.
  const batchStrides = (bc: readonly boolean[], matBytes: E): (Var | null)[] => {
    const acc = local(matBytes);
    const s: (Var | null)[] = new Array<Var | null>(groups.length).fill(null);
    for (let g = groups.length - 1; g >= 0; g--) {
      if (bc[groups[g]!.axes[0]!]) continue;
      s[g] = local(acc.get());
      pro.push(acc.set(m.i32.mul(acc.get(), exts[g]!.get())));
    }
    return s;
  };
  const aStrides = batchStrides(k.aBcast, m.i32.mul(m.i32.mul(M.get(), K.get()), m.i32.const(4)));
  const bStrides = batchStrides(k.bBcast, m.i32.mul(m.i32.mul(K.get(), N.get()), m.i32.const(4)));
  const pC = local(fb.param(2).get());

  const gemm = ([pA, pB]: readonly Var[]): E => {
    const i = fb.i32();
    const rowA = fb.i32();
    const rowC = fb.i32();
    return fb.seq([
      rowA.set(pA!.get()),
      rowC.set(pC.get()),
      forRange(fb, {
        i, from: m.i32.const(0), to: () => M4.get(), step: 4,
        body: [rowBlock(fb, d, N, N8, 4, rowA, pB!, rowC), fb.bump(rowA, m.i32.shl(d.KB[2]!.get(), m.i32.const(1))), fb.bump(rowC, m.i32.shl(d.NB[2]!.get(), m.i32.const(1)))],
      }),
      forRange(fb, { i, to: () => M.get(), body: [rowBlock(fb, d, N, N8, 1, rowA, pB!, rowC), fb.bump(rowA, KB1.get()), fb.bump(rowC, NB1.get())] }),
      fb.bump(pC, mn4.get()),
    ]);
  };
  const ptrs = [{ start: fb.param(0).get(), strides: aStrides }, { start: fb.param(1).get(), strides: bStrides }];
  return fb.seq([...pro, nest(fb, exts, ptrs, gemm)]);
}
