// Codegen stage (wasm): batched f32 matmul, BLIS-style. Per batch matrix a shared gemm helper packs B (KC x NC
// blocks into NR-wide panels) and A (MC x KC blocks into MR-high panels) in the caller's scratch and runs the
// register-blocked microkernel per MR x NR tile of C; transposed operands differ only in how they are packed.
import type { MatmulKernel } from "../kernel.js";
import type { E, FnBuilder, Var } from "./context.js";
import { checkComputeDType } from "./context.js";
import { forRange, groupAxes, nest, product, returnIfEmpty } from "./loops.js";
import { KC, MC, MICRO, NC, type SimdVariant } from "./matmul-blocking.js";
import { internalFn, microkernel } from "./matmul-micro.js";
import { packCopy, packTranspose } from "./matmul-pack.js";

/** `min(a, b)` on i32 expressions (each evaluated once per operand use, so pass local.gets). */
function min(fb: FnBuilder, a: () => E, b: () => E): E {
  return fb.m.select(fb.m.i32.lt_s(a(), b()), a(), b());
}

/**
 * `__kiln_gemm_{n|t}{n|t}_{variant}(a, b, c, scratch, M, K, N, m0, m1)`: rows [m0, m1) of C[M,N] = op(A) op(B)
 * where op(A) is A[M,K] or, transposed, A stored [K,M]; op(B) is B[K,N] or B stored [N,K]. K = 0 writes zeros.
 * Scratch layout and size: see gemmScratchBytes in matmul-blocking.ts.
 */
function gemm(fb: FnBuilder, transA: boolean, transB: boolean, variant: SimdVariant): string {
  const { mr: MR, nr: NR } = MICRO[variant];
  const name = `__kiln_gemm_${transA ? "t" : "n"}${transB ? "t" : "n"}_${variant}`;
  const mk = microkernel(fb, MICRO[variant], variant);
  const packB = transB ? packTranspose(fb, NR) : packCopy(fb, NR);
  const packA = transA ? packCopy(fb, MR) : packTranspose(fb, MR);
  return internalFn(fb, name, 9, (g) => {
    const m = g.m;
    const [a, b, c, scratch, M, K, N, m0, m1] = Array.from({ length: 9 }, (_, i) => g.param(i));
    const v = (): Var => g.i32();
    const [lda, ldb, ldc, bp, ap, tile] = [v(), v(), v(), v(), v(), v()];
    const [jc, nc, pc, kc, ic, mc, jr, ir, w, h, cp, i, j] = [v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v()];
    const c4 = (x: number): E => m.i32.const(x);
    const mul = (x: E, y: E): E => m.i32.mul(x, y);
    const add = (...xs: E[]): E => xs.reduce((s, x) => m.i32.add(s, x));
    const roundUp = (x: E, to: number): E => m.i32.and(m.i32.add(x, c4(to - 1)), c4(-to));
    const call = (fn: string, args: E[]): E => m.call(fn, args, g.b.none);

    const kcMax = min(g, () => K.get(), () => c4(KC));
    const ncMax = roundUp(min(g, () => N.get(), () => c4(NC)), NR);
    const prologue: E[] = [
      m.if(m.i32.or(m.i32.ge_s(m0.get(), m1.get()), m.i32.eqz(N.get())), m.return()),
      ldc.set(m.i32.shl(N.get(), c4(2))),
      m.if(m.i32.eqz(K.get()), m.block(null, [
        m.memory.fill(add(c.get(), mul(m0.get(), ldc.get())), c4(0), mul(m.i32.sub(m1.get(), m0.get()), ldc.get())),
        m.return(),
      ])),
      lda.set(m.i32.shl((transA ? M : K).get(), c4(2))),
      ldb.set(m.i32.shl((transB ? K : N).get(), c4(2))),
      tile.set(scratch.get()),
      bp.set(add(scratch.get(), c4(4 * MR * NR))),
      ap.set(add(bp.get(), m.i32.shl(mul(kcMax, ncMax), c4(2)))),
    ];

    // Packs the kc x nc block of B at (pc, jc) into NR-wide panels at bp.
    const packBBlock = forRange(g, { i: jr, from: c4(0), to: () => nc.get(), step: NR, body: [
      w.set(min(g, () => c4(NR), () => m.i32.sub(nc.get(), jr.get()))),
      call(packB, [
        transB
          ? add(b.get(), mul(add(jc.get(), jr.get()), ldb.get()), m.i32.shl(pc.get(), c4(2)))
          : add(b.get(), mul(pc.get(), ldb.get()), m.i32.shl(add(jc.get(), jr.get()), c4(2))),
        ldb.get(), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), kc.get(), w.get(),
      ]),
    ] });
    // Packs the mc x kc block of A at (ic, pc) into MR-high panels at ap.
    const packABlock = forRange(g, { i: ir, from: c4(0), to: () => mc.get(), step: MR, body: [
      h.set(min(g, () => c4(MR), () => m.i32.sub(mc.get(), ir.get()))),
      call(packA, [
        transA
          ? add(a.get(), mul(pc.get(), lda.get()), m.i32.shl(add(ic.get(), ir.get()), c4(2)))
          : add(a.get(), mul(add(ic.get(), ir.get()), lda.get()), m.i32.shl(pc.get(), c4(2))),
        lda.get(), add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), kc.get(), h.get(),
      ]),
    ] });

    // An edge tile runs the microkernel on the MR x NR tile buffer; only its h x w corner touches C.
    const tileCopy = (toC: boolean): E => {
      const cell = (base: E, ld: E): E => add(base, mul(i.get(), ld), m.i32.shl(j.get(), c4(2)));
      const src = toC ? cell(tile.get(), c4(4 * NR)) : cell(cp.get(), ldc.get());
      const dst = toC ? cell(cp.get(), ldc.get()) : cell(tile.get(), c4(4 * NR));
      return forRange(g, { i, from: c4(0), to: () => h.get(), body: [
        forRange(g, { i: j, from: c4(0), to: () => w.get(), body: [m.i32.store(0, 4, dst, m.i32.load(0, 4, src))] }),
      ] });
    };
    const accum = (): E => m.i32.gt_s(pc.get(), c4(0));
    const tiles = forRange(g, { i: jr, from: c4(0), to: () => nc.get(), step: NR, body: [
      w.set(min(g, () => c4(NR), () => m.i32.sub(nc.get(), jr.get()))),
      forRange(g, { i: ir, from: c4(0), to: () => mc.get(), step: MR, body: [
        h.set(min(g, () => c4(MR), () => m.i32.sub(mc.get(), ir.get()))),
        cp.set(add(c.get(), mul(add(ic.get(), ir.get()), ldc.get()), m.i32.shl(add(jc.get(), jr.get()), c4(2)))),
        m.if(
          m.i32.and(m.i32.eq(h.get(), c4(MR)), m.i32.eq(w.get(), c4(NR))),
          call(mk, [add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), cp.get(), ldc.get(), kc.get(), accum()]),
          g.seq([
            m.if(accum(), tileCopy(false)),
            call(mk, [add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), tile.get(), c4(4 * NR), kc.get(), accum()]),
            tileCopy(true),
          ]),
        ),
      ] }),
    ] });

    return g.seq([
      ...prologue,
      forRange(g, { i: jc, from: c4(0), to: () => N.get(), step: NC, body: [
        nc.set(min(g, () => c4(NC), () => m.i32.sub(N.get(), jc.get()))),
        forRange(g, { i: pc, from: c4(0), to: () => K.get(), step: KC, body: [
          kc.set(min(g, () => c4(KC), () => m.i32.sub(K.get(), pc.get()))),
          packBBlock,
          forRange(g, { i: ic, from: m0.get(), to: () => m1.get(), step: MC, body: [
            mc.set(min(g, () => c4(MC), () => m.i32.sub(m1.get(), ic.get()))),
            packABlock,
            tiles,
          ] }),
        ] }),
      ] }),
    ]);
  });
}

/** Params (a, b, scratch, out, bext_0..bext_{batchRank-1}, M, K, N, m0, m1); see kernel.ts. */
export function renderMatmul(fb: FnBuilder, k: MatmulKernel, variant: SimdVariant = "plain"): E {
  const m = fb.m;
  checkComputeDType(k.dtype);
  if (k.dtype !== "f32") throw new Error(`wasm backend: matmul over ${k.dtype} is not supported yet`);
  const br = k.batchRank;
  if (k.aBcast.length !== br || k.bBcast.length !== br) throw new Error(`wasm backend: matmul bcast flags do not match batch rank ${br}`);
  const fn = gemm(fb, k.transA === true, k.transB === true, variant);
  const [M, K, N, m0, m1] = [0, 1, 2, 3, 4].map((i) => fb.param(4 + br + i));
  const groups = groupAxes(br, (q) => (k.aBcast[q] ? "1" : "0") + (k.bBcast[q] ? "1" : "0"));
  const pro: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((q) => fb.param(4 + q).get()));
    pro.push(p.set);
    return p.v;
  });
  pro.push(returnIfEmpty(fb, [...exts, M, N]));
  const local = (e: E): Var => {
    const v = fb.i32();
    pro.push(v.set(e));
    return v;
  };

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
  const mn4 = local(m.i32.mul(m.i32.mul(M.get(), N.get()), m.i32.const(4)));
  const scratch = fb.param(2);
  const pC = local(fb.param(3).get());

  const one = ([pA, pB]: readonly Var[]): E => fb.seq([
    m.call(fn, [pA!.get(), pB!.get(), pC.get(), scratch.get(), M.get(), K.get(), N.get(), m0.get(), m1.get()], fb.b.none),
    fb.bump(pC, mn4.get()),
  ]);
  const ptrs = [{ start: fb.param(0).get(), strides: aStrides }, { start: fb.param(1).get(), strides: bStrides }];
  return fb.seq([...pro, nest(fb, exts, ptrs, one)]);
}

/** Where the row range sits in a matmul kernel's params (the thread pool splits it). */
export function matmulRowArg(k: MatmulKernel): number {
  return 4 + k.batchRank + 3;
}
