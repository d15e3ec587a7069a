// Codegen stage (wasm): per-element emitters of the math primitives of issue 16, spread into WASM_LOWERING.
// Transcendentals call math-extra.ts helpers (scalar and f32x4); floor/ceil/round/sign are single instructions
// or selects; remainder works in f64 (f64x2 pairs in the vector loop) so that torch's fmod-based result is exact.
import type { DType } from "../../ir/types.js";
import type { E, EmitCtx, HelperName } from "./context.js";
import type { ElementEmitter, WasmLowering } from "./op-emitter-types.js";

const isF = (t: DType | undefined): boolean => t === "f32" || t === "f16" || t === "bf16";

function floatOnly(op: string, t: DType | undefined): void {
  if (!isF(t)) throw new Error(`wasm backend: ${op} needs a float operand, got ${t}`);
}

const ew = (scalar: ElementEmitter, simd?: ElementEmitter, vectorizes?: (t: readonly DType[]) => boolean): WasmLowering => ({
  kind: "elementwise", scalar, ...(simd ? { simd } : {}), ...(vectorizes ? { vectorizes } : {}),
});

const viaHelper = (op: HelperName): WasmLowering => ew(
  (c, args, [t]) => (floatOnly(op, t), c.helper(op, "f32", args)),
  (c, args, [t]) => (floatOnly(op, t), c.helper(op, "f32x4", args)),
);

/** floor, ceil, round: one instruction for floats; integers are already whole. */
const rounding = (f: (c: EmitCtx, x: E) => E, v: (c: EmitCtx, x: E) => E): WasmLowering => ew(
  (c, [x], [t]) => (isF(t) ? f(c, x!) : x!),
  (c, [x], [t]) => (isF(t) ? v(c, x!) : x!),
);

/**
 * torch.remainder: r = a - floor(a / b) * b in f64, where the product and the difference are exact while
 * |a / b| < 2^29; a quotient rounded across an integer is corrected by one b either way. A zero result keeps
 * a's sign (fmod's), and a finite a over an infinite b is a, or b when their signs differ (Python's %).
 */
function remainderScalar(c: EmitCtx, a: E, b: E): E {
  const m = c.m, f = m.f64, T = c.t.f64;
  return c.bind(T, f.promote(a), (A) => c.bind(T, f.promote(b), (B) => {
    const r0 = f.sub(A(), f.mul(f.floor(f.div(A(), B())), B()));
    return c.bind(T, r0, (R0) => {
      const wrongSide = m.i32.and(f.ne(R0(), f.const(0)), m.i32.ne(f.lt(R0(), f.const(0)), f.lt(B(), f.const(0))));
      return c.bind(T, m.select(wrongSide, f.add(R0(), B()), R0()), (R1) => c.bind(T, m.select(f.ge(f.abs(R1()), f.abs(B())), f.sub(R1(), B()), R1()), (R2) => {
        const signed = m.select(f.eq(R2(), f.const(0)), f.copysign(f.const(0), A()), R2());
        const infB = m.i32.and(f.eq(f.abs(B()), f.const(Infinity)), f.lt(f.abs(A()), f.const(Infinity)));
        const differ = m.i32.and(f.ne(A(), f.const(0)), m.i32.ne(f.lt(A(), f.const(0)), f.lt(B(), f.const(0))));
        return m.f32.demote(m.select(infB, m.select(differ, B(), A()), signed));
      }));
    });
  }));
}

/** The same on two f64 lanes (f64x2 compares give all-ones lanes; bitselect picks). */
function remainderF64x2(c: EmitCtx, A: () => E, B: () => E): E {
  const m = c.m, f = m.f64x2, V = c.t.v128;
  const splat = (v: number): E => m.v128.const(Array.from(new Uint8Array(new Float64Array([v, v]).buffer)));
  const signBits = m.v128.const(Array.from(new Uint8Array(new BigInt64Array([-(2n ** 63n), -(2n ** 63n)]).buffer)));
  const ltZero = (x: E): E => f.lt(x, splat(0));
  return c.bind(V, f.sub(A(), f.mul(f.floor(f.div(A(), B())), B())), (R0) => {
    const wrongSide = m.v128.and(f.ne(R0(), splat(0)), m.v128.xor(ltZero(R0()), ltZero(B())));
    return c.bind(V, m.v128.bitselect(f.add(R0(), B()), R0(), wrongSide), (R1) =>
      c.bind(V, m.v128.bitselect(f.sub(R1(), B()), R1(), f.ge(f.abs(R1()), f.abs(B()))), (R2) => {
        const signed = m.v128.bitselect(m.v128.and(A(), signBits), R2(), f.eq(R2(), splat(0)));
        const infB = m.v128.and(f.eq(f.abs(B()), splat(Infinity)), f.lt(f.abs(A()), splat(Infinity)));
        const differ = m.v128.and(f.ne(A(), splat(0)), m.v128.xor(ltZero(A()), ltZero(B())));
        return m.v128.bitselect(m.v128.bitselect(B(), A(), differ), signed, infB);
      }));
  });
}

/** Four f32 lanes as two f64x2 halves, each computed exactly as the scalar form, then narrowed and rejoined. */
function remainderVector(c: EmitCtx, a: E, b: E): E {
  const m = c.m, V = c.t.v128;
  // Expressions are trees: a value used twice is read twice from its local.
  const high = (x: () => E): E => m.i8x16.shuffle(x(), x(), [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]);
  return c.bind(V, a, (A) => c.bind(V, b, (B) => {
    const half = (pick: (x: () => E) => E): E => c.bind(V, m.f64x2.promote_low_f32x4(pick(A)), (A2) =>
      c.bind(V, m.f64x2.promote_low_f32x4(pick(B)), (B2) => m.f32x4.demote_f64x2_zero(remainderF64x2(c, A2, B2))));
    return m.i8x16.shuffle(half((x) => x()), half(high), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
  }));
}

export const MATH_WASM_LOWERING = {
  erf: viaHelper("erf"),
  sin: viaHelper("sin"),
  cos: viaHelper("cos"),
  log1p: viaHelper("log1p"),
  expm1: viaHelper("expm1"),
  floor: rounding((c, x) => c.m.f32.floor(x), (c, x) => c.m.f32x4.floor(x)),
  ceil: rounding((c, x) => c.m.f32.ceil(x), (c, x) => c.m.f32x4.ceil(x)),
  // wasm's nearest rounds half to even, as torch.round does.
  round: rounding((c, x) => c.m.f32.nearest(x), (c, x) => c.m.f32x4.nearest(x)),
  // (x > 0) - (x < 0): ±0 and NaN give +0, as torch.sign does.
  sign: ew(
    (c, [x], [t]) => c.bind(isF(t) ? c.t.f32 : c.t.i32, x!, (v) => isF(t)
      ? c.m.f32.convert_s.i32(c.m.i32.sub(c.m.f32.gt(v(), c.m.f32.const(0)), c.m.f32.lt(v(), c.m.f32.const(0))))
      : c.m.i32.sub(c.m.i32.gt_s(v(), c.m.i32.const(0)), c.m.i32.lt_s(v(), c.m.i32.const(0)))),
    // Vector compares give -1 lanes, so lt - gt is the sign.
    (c, [x], [t]) => c.bind(c.t.v128, x!, (v) => isF(t)
      ? c.m.f32x4.convert_i32x4_s(c.m.i32x4.sub(c.m.f32x4.lt(v(), c.splatF32(0)), c.m.f32x4.gt(v(), c.splatF32(0))))
      : c.m.i32x4.sub(c.m.i32x4.lt_s(v(), c.splatI32(0)), c.m.i32x4.gt_s(v(), c.splatI32(0)))),
  ),
  remainder: ew(
    (c, [a, b], [t]) => (floatOnly("remainder", t), remainderScalar(c, a!, b!)),
    (c, [a, b], [t]) => (floatOnly("remainder", t), remainderVector(c, a!, b!)),
  ),
} satisfies Record<string, WasmLowering>;
