// Codegen stage (wasm): loads and stores by dtype or element size, in the value representation the
// expression emitters use (f32, f16 and bf16 as f32; every integer and bool dtype widened to i32).
//
// f16/bf16 are storage formats: a load widens the 16-bit pattern to f32 exactly, a store narrows with
// round-to-nearest-even (half.ts). Vector helpers move 4 consecutive elements of any dtype:
//   loadLanesF32(c, d, ptr, offset?)      -> f32x4 (f32 as is, f16/bf16 widened: v128.load16x4_u + bit ops)
//   storeLanesF32(c, d, ptr, v, offset?)  f32x4 -> 4 elements (f16/bf16 narrowed, packed with i16x8.narrow)
//   loadLanes / storeLanes(c, d, ptr, ...) the same for any 4-byte dtype too (i32 lanes stay i32x4): what the
//     elementwise loop uses, so a kernel with f16/bf16 inputs or outputs stays vectorised.
// Every renderer that reads or writes buffers of a float dtype should go through these, so f16/bf16 work there.
import type { DType } from "../../ir/types.js";
import type { E, EmitCtx, Module, WType } from "./context.js";
import { checkComputeDType } from "./context.js";
import { f32ToHalf, f32x4ToHalf, halfToF32, halfToF32x4, isHalf } from "./half.js";

/** True for dtypes held as f32 during computation (f32, f16, bf16). */
export function isFloatValue(d: DType): boolean {
  return d === "f32" || isHalf(d);
}

/** wasm type holding one value of `d` during computation. */
export function valueType(t: { i32: WType; f32: WType }, d: DType): WType {
  checkComputeDType(d);
  return isFloatValue(d) ? t.f32 : t.i32;
}

/**
 * Loads one element as its computation value. f16/bf16 need an EmitCtx (the widening binds locals); the
 * Module-only form is kept for callers that never see them.
 */
export function loadValue(c: Module | EmitCtx, d: DType, ptr: E, offset = 0): E {
  checkComputeDType(d);
  const m = isCtx(c) ? c.m : c;
  switch (d) {
    case "f32": return m.f32.load(offset, 4, ptr);
    case "i32": return m.i32.load(offset, 4, ptr);
    case "i8": return m.i32.load8_s(offset, 1, ptr);
    case "f16": case "bf16": return halfToF32(ctxOf(c, d), d, m.i32.load16_u(offset, 2, ptr));
    default: return m.i32.load8_u(offset, 1, ptr); // u8, bool
  }
}

export function storeValue(c: Module | EmitCtx, d: DType, ptr: E, v: E, offset = 0): E {
  checkComputeDType(d);
  const m = isCtx(c) ? c.m : c;
  switch (d) {
    case "f32": return m.f32.store(offset, 4, ptr, v);
    case "i32": return m.i32.store(offset, 4, ptr, v);
    case "f16": case "bf16": return m.i32.store16(offset, 2, ptr, f32ToHalf(ctxOf(c, d), d, v));
    default: return m.i32.store8(offset, 1, ptr, v);
  }
}

/** 4 consecutive elements of a float dtype as f32x4. */
export function loadLanesF32(c: EmitCtx, d: DType, ptr: E, offset = 0): E {
  if (!isFloatValue(d)) throw new Error(`wasm backend: loadLanesF32 on ${d} (compiler bug)`);
  return loadLanes(c, d, ptr, offset);
}

/** Stores an f32x4 as 4 consecutive elements of a float dtype. */
export function storeLanesF32(c: EmitCtx, d: DType, ptr: E, v: E, offset = 0): E {
  if (!isFloatValue(d)) throw new Error(`wasm backend: storeLanesF32 on ${d} (compiler bug)`);
  return storeLanes(c, d, ptr, v, offset);
}

/** 4 consecutive elements as a v128 in the vector value representation (f32x4 for floats, i32x4 for i32). */
export function loadLanes(c: EmitCtx, d: DType, ptr: E, offset = 0): E {
  checkComputeDType(d);
  if (isHalf(d)) return halfToF32x4(c, d, c.m.v128.load16x4_u(offset, 2, ptr));
  if (d === "f32" || d === "i32") return c.m.v128.load(offset, 4, ptr);
  throw new Error(`wasm backend: no 4-lane load of ${d} (compiler bug)`);
}

export function storeLanes(c: EmitCtx, d: DType, ptr: E, v: E, offset = 0): E {
  checkComputeDType(d);
  const m = c.m;
  if (isHalf(d)) {
    // Lanes hold 0..0xffff, so the unsigned saturating narrow packs them unchanged into the low 8 bytes.
    return c.bind(c.t.v128, f32x4ToHalf(c, d, v), (h) => m.v128.store64_lane(offset, 2, 0, ptr, m.i16x8.narrow_i32x4_u(h(), h())));
  }
  if (d === "f32" || d === "i32") return m.v128.store(offset, 4, ptr, v);
  throw new Error(`wasm backend: no 4-lane store of ${d} (compiler bug)`);
}

function isCtx(c: Module | EmitCtx): c is EmitCtx {
  return typeof (c as Partial<EmitCtx>).bind === "function" && typeof (c as Partial<EmitCtx>).splatI32 === "function";
}

function ctxOf(c: Module | EmitCtx, d: DType): EmitCtx {
  if (isCtx(c)) return c;
  throw new Error(`wasm backend: loading or storing ${d} needs the function builder (compiler bug)`);
}

/** Bit-exact copy of one element of `bytes` bytes (integer loads, so NaN payloads survive). */
export function copyElement(m: Module, bytes: number, dst: E, src: E): E {
  switch (bytes) {
    case 1: return m.i32.store8(0, 1, dst, m.i32.load8_u(0, 1, src));
    case 2: return m.i32.store16(0, 2, dst, m.i32.load16_u(0, 2, src));
    case 4: return m.i32.store(0, 4, dst, m.i32.load(0, 4, src));
    case 8: return m.i64.store(0, 8, dst, m.i64.load(0, 8, src));
    default: throw new Error(`wasm backend: no ${bytes}-byte element copy (compiler bug)`);
  }
}
