// Codegen stage (wasm): batched f32 matmul, BLIS-style. Per batch matrix a shared gemm helper packs B (KC x NC
// blocks into NR-wide panels) and A (MC x KC blocks into MR-high panels) in the caller's scratch and runs the
// register-blocked microkernel per MR x NR tile of C; transposed operands differ only in how they are packed.
import type { ConvGather, MatmulKernel } from "../kernel.js";
import { packConv } from "./matmul-pack-conv.js";
import { packConvT } from "./matmul-pack-conv-t.js";
import { renderWinograd } from "./winograd.js";
import type { E, FnBuilder, Var } from "./context.js";
import { checkComputeDType } from "./context.js";
import { forRange, groupAxes, nest, product, returnIfEmpty } from "./loops.js";
import { KC, MC, MICRO, NC, type SimdVariant } from "./matmul-blocking.js";
import { internalFn, microkernel } from "./matmul-micro.js";
import { F32_OPERAND, operandFormat, operandShift, operandSuffix, packCopy, packTranspose, type OperandFormat } from "./matmul-pack.js";

/** Storage/rounding of the a and b operands (f16/bf16 are converted while packing, matmul-pack.ts). */
type Operands = readonly [OperandFormat, OperandFormat];
const F32_OPERANDS: Operands = [F32_OPERAND, F32_OPERAND];
import { EpilogueRenderer } from "./matmul-epilogue.js";
import { FiniteMask, flagParams } from "./finite.js";
import { dtypeBytes } from "../../ir/types.js";
import { prepackName } from "../../../runtime/wasm/prepack.js";
import { ALL_COLUMNS, COL_RANGE_GLOBALS, SHARED_B_GLOBAL } from "../../../runtime/wasm/threads-meta.js";
import { columnSplits, sharesPackedB } from "./parallel.js";

/** `min(a, b)` on i32 expressions (each evaluated once per operand use, so pass local.gets). */
function min(fb: FnBuilder, a: () => E, b: () => E): E {
  return fb.m.select(fb.m.i32.lt_s(a(), b()), a(), b());
}

/**
 * A convolution's patches as one operand of the gemm (gathered from x by matmul-pack-conv.ts): A, or B for
 * convOut; "aT": A is the patches transposed, a weight gradient (matmul-pack-conv-t.ts).
 */
interface ConvOperand {
  readonly gather: ConvGather;
  readonly side: "a" | "b" | "aT";
  /** How x is stored and rounded (the kernel's aDtype/aRound: mixed precision's f16/bf16 convolutions). */
  readonly format: OperandFormat;
}

/** The packer of a convolution operand with panels `r` wide. */
const convPacker = (fb: FnBuilder, r: number, conv: ConvOperand): string => (conv.side === "aT" ? packConvT : packConv)(fb, r, conv.gather, conv.format);

/** An epilogue applied inside the gemm: the renderer and the input matrices of the current batch entry. */
interface GemmEpilogue {
  readonly renderer: EpilogueRenderer;
  readonly inputs: readonly Var[];
  /**
   * The output is narrower than the f32 sums (f16/bf16): partial sums of earlier K blocks live in scratch (an
   * mc x nc block after packed A), and K becomes the innermost block loop so that block is finished before the
   * next (B is packed again per row block, which costs little beside the multiply-adds). "band": K fits one
   * block (MatmulEpilogue.singleK), so each MR-row band is stored as soon as its tiles are done and only an
   * MR x nc band of sums is staged (scratch sized by gemmScratchBytes(..., "band")); loops as without partial.
   */
  readonly partial: false | "block" | "band";
}

/**
 * `__kiln_gemm_{n|t}{n|t}_{variant}(a, b, c, scratch, M, K, N, m0, m1)`: rows [m0, m1) of C[M,N] = op(A) op(B)
 * where op(A) is A[M,K] or, transposed, A stored [K,M]; op(B) is B[K,N] or B stored [N,K]. K = 0 writes zeros.
 * Scratch layout and size: see gemmScratchBytes in matmul-blocking.ts. `flag`: the `_fin` variant takes the
 * all_finite flag pointer as a 10th param and clears it when a value of C it finishes is not finite.
 */
function gemm(fb: FnBuilder, transA: boolean, transB: boolean, variant: SimdVariant, fmt: Operands = F32_OPERANDS, flag = false, prepackedB = false, conv?: ConvOperand): string {
  const [sa, sb] = fmt.map(operandSuffix);
  const convKey = conv ? `_conv${conv.side}${convPacker(fb, MICRO[variant].mr, conv).replace(/^__kiln_pack_convT?\d+/, "")}` : "";
  const name = `__kiln_gemm_${transA ? "t" : "n"}${transB ? "t" : "n"}_${variant}${sa || sb ? `_a${sa}_b${sb}` : ""}${flag ? "_fin" : ""}${prepackedB ? "_pb" : ""}${convKey}`;
  if (fb.m.getFunction(name)) return name;
  const n = flag ? 10 : 9;
  return internalFn(fb, name, n, (g) => gemmBody(g, Array.from({ length: 9 }, (_, i) => g.param(i)), transA, transB, variant, undefined, fmt, flag ? g.param(9) : undefined, prepackedB, conv));
}

/**
 * `__kiln_prepack_b_{n|t}(b, dst, K, N)` (exported, runtime/wasm/prepack.ts): all of B packed as the gemm packs it
 * block by block, each KC x NC block at dst + 4 * (jc * K + pc * roundUp(nc, NR)) — the gemm's `prepackedB` reads
 * its block (pc, jc) there instead of packing it into scratch. Both builds have the same NR, so the same layout.
 * With column ranges (columnSplits) it packs only the panels of columns [n0, n1) of the column globals, each at
 * its usual place: the thread pool packs a shared B in column chunks on all threads (RowSplit.sharedB.cols).
 */
export function prepackB(fb: FnBuilder, transB: boolean): string {
  const NR = MICRO.plain.nr;
  if (MICRO.relaxed.nr !== NR) throw new Error("wasm backend: prepacked B needs one NR for both builds (compiler bug)");
  return internalFn(fb, prepackName(transB), 4, (g) => {
    const m = g.m;
    const [b, dst, K, N] = [0, 1, 2, 3].map((i) => g.param(i)) as [Var, Var, Var, Var];
    const [ldb, jc, nc, ncr, pc, kc, jr, w, bp] = Array.from({ length: 9 }, () => g.i32());
    const c4 = (x: number): E => m.i32.const(x);
    const packB = transB ? packTranspose(g, NR, F32_OPERAND) : packCopy(g, NR, F32_OPERAND);
    // This NC block's panels within the column globals' [n0, n1) (all of them outside a column chunk).
    const cols: ColumnRange | null = columnSplits() ? { lo: g.i32(), hi: g.i32(), w: g.i32() } : null;
    const kBlocks = forRange(g, { i: pc, from: c4(0), to: () => K.get(), step: KC, body: [
      kc.set(min(g, () => c4(KC), () => m.i32.sub(K.get(), pc.get()))),
      bp.set(m.i32.add(dst.get(), m.i32.shl(m.i32.add(m.i32.mul(jc.get(), K.get()), m.i32.mul(pc.get(), ncr.get())), c4(2)))),
      packBlock(g, packB, NR, transB, 2, { b, ldb, jc, jr, pc, nc, kc, w, bp }, cols ?? undefined),
    ] });
    return g.seq([
      ldb.set(m.i32.shl((transB ? K : N).get(), c4(2))),
      forRange(g, { i: jc, from: c4(0), to: () => N.get(), step: NC, body: [
        nc.set(min(g, () => c4(NC), () => m.i32.sub(N.get(), jc.get()))),
        ncr.set(m.i32.and(m.i32.add(nc.get(), c4(NR - 1)), c4(-NR))),
        ...(cols ? [...columnBounds(g, cols, jc, nc), m.if(m.i32.gt_s(cols.w.get(), c4(0)), kBlocks)] : [kBlocks]),
      ] }),
    ]);
  });
}

/**
 * The mutable global `__kiln_shared_b` (exported as SHARED_B_GLOBAL): 0, or B of the current call already packed
 * in prepackB's layout at that address. The thread pool packs B once and sets it in every thread's instance
 * around a split matmul (runtime/wasm/threads-load.ts), so row chunks share the panels instead of each packing
 * all of B; only kernels the "kiln.parallel" section marks `sharedB` (one plain f32 B per call) get it.
 */
function sharedPackedB(g: FnBuilder): () => E {
  const m = g.m;
  if (!m.getGlobal(SHARED_B_GLOBAL)) m.addGlobal(SHARED_B_GLOBAL, g.b.i32, true, m.i32.const(0));
  return () => m.global.get(SHARED_B_GLOBAL, g.b.i32);
}

/**
 * Packs the kc x nc block of B at (pc, jc) into NR-wide panels at bp (shared by the gemm and prepackB); with
 * `cols`, only the panels of block columns [lo, hi) (a column chunk's, columnRange), each at its usual place.
 */
function packBlock(g: FnBuilder, packB: string, NR: number, transB: boolean, shB: number, v: Record<"b" | "ldb" | "jc" | "jr" | "pc" | "nc" | "kc" | "w" | "bp", Var>, cols?: ColumnRange): E {
  const m = g.m;
  const c4 = (x: number): E => m.i32.const(x);
  return forRange(g, { i: v.jr, from: cols ? cols.lo.get() : c4(0), to: () => (cols ? cols.hi : v.nc).get(), step: NR, body: [
    v.w.set(min(g, () => c4(NR), () => m.i32.sub(v.nc.get(), v.jr.get()))),
    m.call(packB, [
      transB
        ? m.i32.add(m.i32.add(v.b.get(), m.i32.mul(m.i32.add(v.jc.get(), v.jr.get()), v.ldb.get())), m.i32.shl(v.pc.get(), c4(shB)))
        : m.i32.add(m.i32.add(v.b.get(), m.i32.mul(v.pc.get(), v.ldb.get())), m.i32.shl(m.i32.add(v.jc.get(), v.jr.get()), c4(shB))),
      v.ldb.get(), m.i32.add(v.bp.get(), m.i32.mul(v.jr.get(), m.i32.shl(v.kc.get(), c4(2)))), v.kc.get(), v.w.get(),
    ], g.b.none),
  ] });
}

/**
 * The NC block at column jc (nc wide)'s share of the column globals' [n0, n1), into r (lo, hi, width); a block
 * outside them gets width <= 0 and is skipped, packing included. Shared by the B packer and the gemm.
 */
function columnBounds(g: FnBuilder, r: ColumnRange, jc: Var, nc: Var): E[] {
  const m = g.m;
  const [n0, n1] = columnGlobals(g);
  const lo = (): E => m.i32.sub(n0(), jc.get());
  return [
    r.lo.set(m.select(m.i32.gt_s(lo(), m.i32.const(0)), lo(), m.i32.const(0))),
    r.hi.set(min(g, () => nc.get(), () => m.i32.sub(n1(), jc.get()))),
    r.w.set(m.i32.sub(r.hi.get(), r.lo.get())),
  ];
}

/** Block columns [lo, hi) of the current NC block that this call computes, and their count w (hi - lo). */
interface ColumnRange {
  readonly lo: Var;
  readonly hi: Var;
  readonly w: Var;
}

/**
 * The mutable globals COL_RANGE_GLOBALS (n0, n1): columns [n0, n1) of C the gemm computes, all of them (0,
 * ALL_COLUMNS) except while a thread of the pool runs a column chunk of a split call (parallel.ts RowSplit.cols:
 * small M, where row chunks would be too few or too thin). Each thread sets its own instance's pair. Within an NC
 * block the cut is on NR panel edges, so every tile, its K loop and its place in packed B are the one thread's:
 * a column chunk computes its elements exactly as one thread does.
 */
function columnGlobals(g: FnBuilder): [() => E, () => E] {
  const m = g.m;
  const [n0, n1] = COL_RANGE_GLOBALS;
  if (!m.getGlobal(n0)) m.addGlobal(n0, g.b.i32, true, m.i32.const(0));
  if (!m.getGlobal(n1)) m.addGlobal(n1, g.b.i32, true, m.i32.const(ALL_COLUMNS));
  return [() => m.global.get(n0, g.b.i32), () => m.global.get(n1, g.b.i32)];
}

/**
 * The gemm over the 9 vars (a, b, c, scratch, M, K, N, m0, m1). With an epilogue (inlined into the kernel, whose
 * expression it specialises) every tile of the last K block is computed in the tile buffer and stored through
 * the epilogue; earlier K blocks accumulate in C, which is then f32. K = 0 applies the epilogue to zeros.
 * `flag` (all_finite's pointer): the last K block runs in row bands as with an epilogue, and each finished band
 * is folded into a finite mask (the epilogue's stored values, or the band of C read back while in cache); the
 * flag is tested once, at the end. Row chunks of the thread pool check only their own rows.
 */
function gemmBody(g: FnBuilder, vars: readonly Var[], transA: boolean, transB: boolean, variant: SimdVariant, epi?: GemmEpilogue, fmt: Operands = F32_OPERANDS, flag?: Var, prepackedB = false, conv?: ConvOperand): E {
  const { mr: MR, nr: NR } = MICRO[variant];
  const mk = microkernel(g, MICRO[variant], variant);
  // A convolution's patches (`conv`, with that operand's pointer = its input x) are gathered from x while packing
  // (matmul-pack-conv.ts): as A, rows are pixels; as B (convOut), columns are; as A transposed ("aT"), rows are taps.
  const convA = conv && conv.side !== "b" ? conv : undefined, convB = conv?.side === "b" ? conv.gather : undefined;
  const packB = convB ? packConv(g, NR, convB, conv!.format) : transB ? packTranspose(g, NR, fmt[1]) : packCopy(g, NR, fmt[1]);
  const packA = convA ? convPacker(g, MR, convA) : transA ? packCopy(g, MR, fmt[0]) : packTranspose(g, MR, fmt[0]);
  // log2 of the a / b element sizes (C and the packed panels are f32).
  const [shA, shB] = fmt.map(operandShift) as [number, number];
  {
    const m = g.m;
    const [a, b, c, scratch, M, K, N, m0, m1] = vars as [Var, Var, Var, Var, Var, Var, Var, Var, Var];
    const v = (): Var => g.i32();
    const [lda, ldb, ldc, bp, ap, tile] = [v(), v(), v(), v(), v(), v()];
    const [jc, nc, pc, kc, ic, mc, jr, ir, w, h, cp, i, j] = [v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v(), v()];
    const c4 = (x: number): E => m.i32.const(x);
    const mul = (x: E, y: E): E => m.i32.mul(x, y);
    const add = (...xs: E[]): E => xs.reduce((s, x) => m.i32.add(s, x));
    // MR is 6 in the relaxed build: a mask rounds only to powers of two (it took 63 to 64 there, so the partial
    // sums started inside the last packed A panel), hence the division otherwise.
    const roundUp = (x: E, to: number): E => ((to & (to - 1)) === 0
      ? m.i32.and(m.i32.add(x, c4(to - 1)), c4(-to))
      : m.i32.mul(m.i32.div_u(m.i32.add(x, c4(to - 1)), c4(to)), c4(to)));
    const call = (fn: string, args: E[]): E => m.call(fn, args, g.b.none);

    const fin = flag ? new FiniteMask(g, flag, epi ? epi.renderer.stored : "f32") : null;
    // KILN_THREADS_NSPLIT=0 (an A/B switch) builds the gemm without column ranges, as before them.
    const cols: ColumnRange | null = columnSplits() ? { lo: v(), hi: v(), w: v() } : null;
    const jrFrom = (): E => (cols ? cols.lo.get() : c4(0));
    const jrTo = (): E => (cols ? cols.hi : nc).get();
    const partial = epi?.partial === "block";
    const band = epi?.partial === "band";
    const cs = v();
    // Functions: a Binaryen expression may appear only once in the tree.
    const kcMax = (): E => min(g, () => K.get(), () => c4(KC));
    const ncMax = (): E => roundUp(min(g, () => N.get(), () => c4(NC)), NR);
    const mcMax = (): E => roundUp(min(g, () => M.get(), () => c4(MC)), MR);
    const prologue: E[] = [
      m.if(m.i32.or(m.i32.ge_s(m0.get(), m1.get()), m.i32.eqz(N.get())), m.return()),
      ...(fin ? [fin.init()] : []),
      // C holds the partial sums: the output, or with `partial` the block in scratch (ncMax floats a row).
      ldc.set(m.i32.shl(partial || band ? ncMax() : N.get(), c4(2))),
      ...(epi ? [] : [m.if(m.i32.eqz(K.get()), m.block(null, [
        m.memory.fill(add(c.get(), mul(m0.get(), ldc.get())), c4(0), mul(m.i32.sub(m1.get(), m0.get()), ldc.get())),
        m.return(),
      ]))]),
      lda.set(m.i32.shl((transA ? M : K).get(), c4(shA))),
      ldb.set(m.i32.shl((transB ? K : N).get(), c4(shB))),
      tile.set(scratch.get()),
      bp.set(add(scratch.get(), c4(4 * MR * NR))),
      ap.set(add(bp.get(), m.i32.shl(mul(kcMax(), ncMax()), c4(2)))),
      ...(partial || band ? [cs.set(add(ap.get(), m.i32.shl(mul(mcMax(), kcMax()), c4(2))))] : []),
    ];

    // Packs the kc x nc block of B at (pc, jc) into NR-wide panels at bp; prepacked, points bp at that block of
    // b (prepackB's layout), whose packing the runtime did once; a convolution's patches are gathered from x.
    // Where prepackB's layout puts block (pc, jc) of a packed B starting at `base`.
    const packedAt = (base: E): E => add(base, m.i32.shl(add(mul(jc.get(), K.get()), mul(pc.get(), roundUp(nc.get(), NR))), c4(2)));
    // A plain f32 B may arrive packed once for all threads (sharedPackedB): the thread pool sets the global.
    const shared = !prepackedB && !convB && fmt[1].dtype === "f32" && !fmt[1].round ? sharedPackedB(g) : null;
    const packBBlock = prepackedB
      ? bp.set(packedAt(b.get()))
      : shared
        ? m.if(m.i32.eqz(shared()), packBlock(g, packB, NR, transB, shB, { b, ldb, jc, jr, pc, nc, kc, w, bp }, cols ?? undefined), bp.set(packedAt(shared())))
      : convB
        ? forRange(g, { i: jr, from: jrFrom(), to: jrTo, step: NR, body: [
          w.set(min(g, () => c4(NR), () => m.i32.sub(nc.get(), jr.get()))),
          call(packB, [b.get(), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), kc.get(), pc.get(), add(jc.get(), jr.get()), w.get()]),
        ] })
        : packBlock(g, packB, NR, transB, shB, { b, ldb, jc, jr, pc, nc, kc, w, bp }, cols ?? undefined);
    // Packs the mc x kc block of A at (ic, pc) into MR-high panels at ap.
    const packABlock = forRange(g, { i: ir, from: c4(0), to: () => mc.get(), step: MR, body: [
      h.set(min(g, () => c4(MR), () => m.i32.sub(mc.get(), ir.get()))),
      call(packA, convA
        ? [a.get(), add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), kc.get(), pc.get(), add(ic.get(), ir.get()), h.get()]
        : [
          transA
            ? add(a.get(), mul(pc.get(), lda.get()), m.i32.shl(add(ic.get(), ir.get()), c4(shA)))
            : add(a.get(), mul(add(ic.get(), ir.get()), lda.get()), m.i32.shl(pc.get(), c4(shA))),
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
    const panels = (): E[] => [add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2))))];
    const [row0, col0, sums] = [v(), v(), v()];
    const cpAt = (): E => (band
      ? add(cs.get(), m.i32.shl(jr.get(), c4(2)))
      : partial
      ? add(cs.get(), mul(ir.get(), ldc.get()), m.i32.shl(jr.get(), c4(2)))
      : add(c.get(), mul(add(ic.get(), ir.get()), ldc.get()), m.i32.shl(add(jc.get(), jr.get()), c4(2))));
    const tiles = forRange(g, { i: jr, from: jrFrom(), to: jrTo, step: NR, body: [
      w.set(min(g, () => c4(NR), () => m.i32.sub(nc.get(), jr.get()))),
      forRange(g, { i: ir, from: c4(0), to: () => mc.get(), step: MR, body: [
        h.set(min(g, () => c4(MR), () => m.i32.sub(mc.get(), ir.get()))),
        cp.set(cpAt()),
        plainTile(),
      ] }),
    ] });
    // Last K block with an epilogue: row bands of MR rows. Each band's tiles finish their sums in C (or the
    // partial block), then the epilogue walks the band row by row — contiguous, so its inputs and the output
    // stream like an elementwise kernel's while the band is still in cache.
    const bands = !epi && !fin ? m.nop() : forRange(g, { i: ir, from: c4(0), to: () => mc.get(), step: MR, body: [
      h.set(min(g, () => c4(MR), () => m.i32.sub(mc.get(), ir.get()))),
      forRange(g, { i: jr, from: jrFrom(), to: jrTo, step: NR, body: [
        w.set(min(g, () => c4(NR), () => m.i32.sub(nc.get(), jr.get()))),
        cp.set(cpAt()),
        plainTile(),
      ] }),
      row0.set(add(ic.get(), ir.get())),
      col0.set(cols ? add(jc.get(), cols.lo.get()) : jc.get()),
      jr.set(jrFrom()),
      sums.set(cpAt()),
      epi ? epi.renderer.render({ sums, ld: ldc, out: c, inputs: epi.inputs, N, row0, col0, h, w: cols?.w ?? nc }, fin ?? undefined) : fin!.rows(sums.get(), ldc, h, cols?.w ?? nc),
    ] });
    const blockTiles = (): E => (epi || fin ? m.if(m.i32.ge_s(add(pc.get(), kc.get()), K.get()), bands, tiles) : tiles);
    function plainTile(): E {
      return m.if(
          m.i32.and(m.i32.eq(h.get(), c4(MR)), m.i32.eq(w.get(), c4(NR))),
          call(mk, [add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), cp.get(), ldc.get(), kc.get(), accum()]),
          g.seq([
            m.if(accum(), tileCopy(false)),
            call(mk, [add(ap.get(), mul(ir.get(), m.i32.shl(kc.get(), c4(2)))), add(bp.get(), mul(jr.get(), m.i32.shl(kc.get(), c4(2)))), tile.get(), c4(4 * NR), kc.get(), accum()]),
            tileCopy(true),
          ]),
        );
    }

    // With an epilogue K = 0 still takes one (empty) K block, whose tiles the epilogue stores.
    const kLoop = (body: E[]): E => forRange(g, { i: pc, from: c4(0), to: () => (epi ? m.select(K.get(), K.get(), c4(1)) : K.get()), step: KC, body: [
      kc.set(min(g, () => c4(KC), () => m.i32.sub(K.get(), pc.get()))),
      ...body,
    ] });
    const rowLoop = (body: E[]): E => forRange(g, { i: ic, from: m0.get(), to: () => m1.get(), step: MC, body: [
      mc.set(min(g, () => c4(MC), () => m.i32.sub(m1.get(), ic.get()))),
      ...body,
    ] });
    const blocks = (body: E): E => (cols ? m.if(m.i32.gt_s(cols.w.get(), c4(0)), body) : body);
    return g.seq([
      ...prologue,
      forRange(g, { i: jc, from: c4(0), to: () => N.get(), step: NC, body: [
        nc.set(min(g, () => c4(NC), () => m.i32.sub(N.get(), jc.get()))),
        ...(cols ? columnBounds(g, cols, jc, nc) : []),
        blocks(partial ? rowLoop([kLoop([packBBlock, packABlock, blockTiles()])]) : kLoop([packBBlock, rowLoop([packABlock, blockTiles()])])),
      ] }),
      ...(fin ? [fin.flush()] : []),
    ]);
  }
}

/** Params (a, b, scratch, [e_0..e_{n-1},] out, [flag,] bext_0..bext_{batchRank-1}, M, K, N, m0, m1); see kernel.ts. */
export function renderMatmul(fb: FnBuilder, k: MatmulKernel, variant: SimdVariant = "plain"): E {
  const m = fb.m;
  checkComputeDType(k.dtype);
  if (k.dtype !== "f32") throw new Error(`wasm backend: matmul over ${k.dtype} is not supported yet`);
  if (k.winograd && (k.aDtype || k.aRound || k.bDtype || k.bRound)) throw new Error("wasm backend: Winograd reads plain f32 operands only (compiler bug)");
  if (k.winograd) return renderWinograd(fb, k, variant);
  // A convolution gather: the patches are A, or with convOut B of out[n] = w · patches(n)ᵀ (a and b swap roles), or
  // with transA A = patchesᵀ (a weight gradient, per image over one batch axis or over all pixels).
  const wgrad = k.aConv !== undefined && k.transA === true;
  const fmtAB: Operands = [operandFormat(k, "a"), operandFormat(k, "b")];
  const conv: ConvOperand | undefined = k.aConv ? { gather: k.aConv, side: k.convOut ? "b" : wgrad ? "aT" : "a", format: fmtAB[0] } : undefined;
  const swap = k.convOut === true;
  if (conv && (k.batchRank > (swap || wgrad ? 1 : 0) || (swap && k.batchRank !== 1) || (wgrad && (swap || k.aBcast.some(Boolean))) || (swap && (!k.transB || !k.bBcast[0]))))
    throw new Error("wasm backend: a convolution gather needs x as its left operand, and with convOut w transposed over one batch axis (compiler bug)");
  if (swap && !conv) throw new Error("wasm backend: convOut without aConv (compiler bug)");
  // With convOut the gemm's A is w (the kernel's b) and its B the gathered patches, whose format the packer takes.
  const fmt: Operands = swap ? [fmtAB[1], F32_OPERAND] : fmtAB;
  const br = k.batchRank;
  if (k.aBcast.length !== br || k.bBcast.length !== br) throw new Error(`wasm backend: matmul bcast flags do not match batch rank ${br}`);
  const epi = k.epilogue;
  const ne = epi?.inputs.length ?? 0;
  if (epi && epi.out !== "f32" && epi.out !== "f16" && epi.out !== "bf16") throw new Error(`wasm backend: a matmul epilogue storing ${epi.out} is not supported`);
  if (epi?.inputs.some((i) => i.bcast.length !== br + 2)) throw new Error(`wasm backend: matmul epilogue flags do not match batch rank ${br} + 2 (compiler bug)`);
  // all_finite's flag pointer follows out (kernel.ts "flag outputs"), shifting the integer args by one.
  const flag = k.flag ? fb.param(4 + ne) : undefined;
  const e0 = 4 + ne + flagParams(k);
  if (k.prepackedB) {
    if (br !== 0 || fmtAB[1].dtype !== "f32" || fmtAB[1].round) throw new Error("wasm backend: a prepacked B must be one plain f32 matrix (compiler bug)");
  }
  // The packer also serves the thread pool, which packs a shared B once per split call (parallel.ts).
  if (k.prepackedB || sharesPackedB(k)) prepackB(fb, k.transB === true);
  const [M, K, N, m0, m1] = [0, 1, 2, 3, 4].map((i) => fb.param(e0 + br + i));
  const groups = groupAxes(br, (q) => (k.aBcast[q] ? "1" : "0") + (k.bBcast[q] ? "1" : "0") + (epi?.inputs.map((i) => (i.bcast[q] ? "1" : "0")).join("") ?? ""));
  const pro: E[] = [];
  const exts = groups.map((g) => {
    const p = product(fb, g.axes.map((q) => fb.param(e0 + q).get()));
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
  const cv = k.aConv;
  const aStrides = batchStrides(k.aBcast, (swap || wgrad) && cv ? m.i32.const((1 << operandShift(fmtAB[0])) * cv.C * cv.H * cv.W) : m.i32.mul(m.i32.mul(M.get(), K.get()), m.i32.const(1 << operandShift(fmtAB[0]))));
  const bStrides = batchStrides(k.bBcast, m.i32.mul(m.i32.mul(K.get(), N.get()), m.i32.const(1 << operandShift(fmtAB[1]))));
  const eStrides = (epi?.inputs ?? []).map((inp) => {
    const [bm, bn] = [inp.bcast[br], inp.bcast[br + 1]];
    const mat = m.i32.mul(m.i32.mul(bm ? m.i32.const(1) : M.get(), bn ? m.i32.const(1) : N.get()), m.i32.const(dtypeBytes(inp.dtype)));
    return batchStrides(inp.bcast.slice(0, br), mat);
  });
  const mn4 = local(m.i32.mul(m.i32.mul(M.get(), N.get()), m.i32.const(dtypeBytes(epi?.out ?? "f32"))));
  const scratch = fb.param(2);
  const pC = local(fb.param(3 + ne).get());

  let one: (p: readonly Var[]) => E;
  if (!epi) {
    const fn = swap ? gemm(fb, false, false, variant, fmt, flag !== undefined, false, conv) : gemm(fb, k.transA === true, k.transB === true, variant, fmt, flag !== undefined, k.prepackedB === true, conv);
    one = ([pA, pB]) => fb.seq([
      m.call(fn, [(swap ? pB : pA)!.get(), (swap ? pA : pB)!.get(), pC.get(), scratch.get(), M.get(), K.get(), N.get(), m0.get(), m1.get(), ...(flag ? [flag.get()] : [])], fb.b.none),
      fb.bump(pC, mn4.get()),
    ]);
  } else {
    // The gemm is inlined: its epilogue is this kernel's own expression.
    const renderer = new EpilogueRenderer(fb, epi);
    const gv = Array.from({ length: 9 }, () => fb.i32());
    one = ([pA, pB, ...pE]) => fb.seq([
      ...[swap ? pB! : pA!, swap ? pA! : pB!, pC, scratch, M, K, N, m0, m1].map((x, i) => gv[i]!.set(x.get())),
      epi.out === "f32" || epi.singleK
        ? gemmBody(fb, gv, k.transA === true, k.transB === true && !swap, variant, { renderer, inputs: pE, partial: epi.out === "f32" ? false : "band" }, fmt, flag, k.prepackedB === true && !swap, conv)
        // K unknown when compiled (a batch dim: the weight gradient xᵀ·dy): the band path whenever this call's K is
        // one block, so the runtime sizes the scratch for the band (matmulScratchBytesAt, partial "auto").
        : m.if(m.i32.le_s(gv[5]!.get(), m.i32.const(KC)),
          gemmBody(fb, gv, k.transA === true, k.transB === true && !swap, variant, { renderer, inputs: pE, partial: "band" }, fmt, flag, k.prepackedB === true && !swap, conv),
          gemmBody(fb, gv, k.transA === true, k.transB === true && !swap, variant, { renderer, inputs: pE, partial: "block" }, fmt, flag, k.prepackedB === true && !swap, conv)),
      fb.bump(pC, mn4.get()),
    ]);
  }
  const ptrs = [
    { start: fb.param(0).get(), strides: aStrides },
    { start: fb.param(1).get(), strides: bStrides },
    ...eStrides.map((st, e) => ({ start: fb.param(3 + e).get(), strides: st })),
  ];
  return fb.seq([...pro, nest(fb, exts, ptrs, one)]);
}

