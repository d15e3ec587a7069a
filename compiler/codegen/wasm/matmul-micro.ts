// Codegen stage (wasm): the matmul microkernel and the internal-function plumbing of the matmul helpers. The
// microkernel multiplies a packed MR x kc panel of A by a packed kc x NR panel of B into MR x NR of C, with
// every accumulator a v128 local; the plain build uses f32x4.mul + add, the relaxed one f32x4.relaxed_madd.
import type { E, FnBuilder, HelperSink, Var } from "./context.js";
import { FnBuilder as Builder } from "./context.js";
import { forRange } from "./loops.js";
import { KC, type MicroShape, type SimdVariant } from "./matmul-blocking.js";

const NO_MATH: HelperSink = {
  ensure(name) {
    throw new Error(`wasm backend: matmul helpers do not use ${name} (compiler bug)`);
  },
};

/**
 * Name prefixes of the matmul's internal functions: module.ts keeps these out of line (inlined into every matmul
 * kernel they ran 2x slower in the relaxed build) while it inlines the math helpers.
 */
export const INTERNAL_FN_PREFIXES = ["__kiln_gemm_", "__kiln_mk", "__kiln_pack_", "__kiln_prepack_"];

/** Adds internal function `name` (i32 params, no result) unless the module has it; returns the name. */
export function internalFn(fb: FnBuilder, name: string, params: number, build: (g: FnBuilder) => E): string {
  if (fb.m.getFunction(name)) return name;
  if (!INTERNAL_FN_PREFIXES.some((p) => name.startsWith(p))) throw new Error(`wasm backend: internal function ${name} has no INTERNAL_FN_PREFIXES prefix (compiler bug)`);
  const types = new Array<number>(params).fill(fb.b.i32);
  const g = new Builder(fb.b, fb.m, types, NO_MATH);
  const body = build(g);
  fb.m.addFunction(name, fb.b.createType(types), fb.b.none, g.vars, body);
  return name;
}

/** a * b + c on f32x4; the relaxed form may fuse (one rounding), which is why it is a separate binary. */
function madd(fb: FnBuilder, variant: SimdVariant, a: E, b: E, c: E): E {
  const m = fb.m;
  if (variant === "plain") return m.f32x4.add(c, m.f32x4.mul(a, b));
  const bin = fb.b as unknown as { _BinaryenSIMDTernary(mod: number, op: number, a: E, b: E, c: E): E; RelaxedMaddVecF32x4: number };
  return bin._BinaryenSIMDTernary((m as unknown as { ptr: number }).ptr, bin.RelaxedMaddVecF32x4, a, b, c);
}

/**
 * `__kiln_mk{MR}x{NR}_{variant}(pa, pb, pc, ldc, kc, accum)`: C[r][0..NR) (+)= sum_k A[k][r] * B[k][0..NR)
 * where A is packed k-major with MR floats per k, B with NR floats per k, C rows are ldc bytes apart, and
 * accum = 0 overwrites C. kc may be any value >= 0.
 */
export function microkernel(fb: FnBuilder, shape: MicroShape, variant: SimdVariant): string {
  const { mr, nr } = shape;
  return internalFn(fb, `__kiln_mk${mr}x${nr}_${variant}`, 6, (g) => {
    const m = g.m;
    const [pa, pb, pc, ldc, kc, accum] = [0, 1, 2, 3, 4, 5].map((i) => g.param(i)) as [Var, Var, Var, Var, Var, Var];
    const V = nr / 4;
    const acc = Array.from({ length: mr }, () => Array.from({ length: V }, () => g.local(g.t.v128)));
    const rowPtr = Array.from({ length: mr }, () => g.i32());
    const bv = Array.from({ length: V }, () => g.local(g.t.v128));
    const av = g.local(g.t.v128);
    const k = g.i32();

    const setup: E[] = rowPtr.map((p, r) => p.set(r === 0 ? pc.get() : m.i32.add(rowPtr[r - 1]!.get(), ldc.get())));
    const load: E[] = [];
    const zero: E[] = [];
    acc.forEach((row, r) => row.forEach((a, v) => {
      load.push(a.set(m.v128.load(16 * v, 4, rowPtr[r]!.get())));
      zero.push(a.set(g.splatF32(0)));
    }));
    setup.push(m.if(accum.get(), g.seq(load), g.seq(zero)));

    // One k step per trip, not unrolled here: V8 11.3 hoists every load of a body unrolled in wasm to its top and
    // then spills accumulators (measured 2x slower). TurboFan unrolls the loop itself (2x, the loads kept beside
    // their multiplies, one stack check per two steps) but only a loop nested in another: its size limit grows
    // with the nesting depth, and this body is over the limit at depth 0. So the plain kernel runs its k steps in
    // chunks of KC, an outer loop that takes one trip for any kc the gemm passes (<= KC): [64,784]x[784,128]
    // 51 -> 61 GFLOP/s on Zen 5, the same k order and so the same bits. Not the relaxed 6x8 kernel: its 12
    // accumulators, 2 B vectors and the A splat fill the 15 registers, and the unrolled copy spilled (60 -> 30).
    const step: E[] = bv.map((b, v) => b.set(m.v128.load(16 * v, 4, pb.get())));
    for (let r = 0; r < mr; r++) {
      step.push(av.set(m.v128.load32_splat(4 * r, 4, pa.get())));
      acc[r]!.forEach((a, v) => step.push(a.set(madd(g, variant, av.get(), bv[v]!.get(), a.get()))));
    }
    step.push(g.inc(pa, 4 * mr), g.inc(pb, 4 * nr));
    const stores: E[] = [];
    acc.forEach((row, r) => row.forEach((a, v) => stores.push(m.v128.store(16 * v, 4, rowPtr[r]!.get(), a.get()))));
    const nested = (): E => {
      const [k0, kEnd] = [g.i32(), g.i32()];
      const chunkEnd = (): E => m.i32.add(k0.get(), m.i32.const(KC));
      return forRange(g, { i: k0, from: m.i32.const(0), to: () => kc.get(), step: KC, body: [
        kEnd.set(m.select(m.i32.lt_s(chunkEnd(), kc.get()), chunkEnd(), kc.get())),
        forRange(g, { i: k, from: k0.get(), to: () => kEnd.get(), body: step }),
      ] });
    };
    const loop = variant === "plain" ? nested() : forRange(g, { i: k, from: m.i32.const(0), to: () => kc.get(), body: step });
    return g.seq([...setup, loop, ...stores]);
  });
}
