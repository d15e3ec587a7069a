// Codegen stage (wasm): loads and stores by dtype or element size, in the value representation the
// expression emitters use (f32 as f32; every integer and bool dtype widened to i32).
import type { DType } from "../../ir/types.js";
import type { E, Module, WType } from "./context.js";
import { checkComputeDType } from "./context.js";

/** wasm type holding one value of `d` during computation. */
export function valueType(t: { i32: WType; f32: WType }, d: DType): WType {
  checkComputeDType(d);
  return d === "f32" ? t.f32 : t.i32;
}

export function loadValue(m: Module, d: DType, ptr: E): E {
  checkComputeDType(d);
  switch (d) {
    case "f32": return m.f32.load(0, 4, ptr);
    case "i32": return m.i32.load(0, 4, ptr);
    case "i8": return m.i32.load8_s(0, 1, ptr);
    default: return m.i32.load8_u(0, 1, ptr); // u8, bool
  }
}

export function storeValue(m: Module, d: DType, ptr: E, v: E): E {
  checkComputeDType(d);
  switch (d) {
    case "f32": return m.f32.store(0, 4, ptr, v);
    case "i32": return m.i32.store(0, 4, ptr, v);
    default: return m.i32.store8(0, 1, ptr, v);
  }
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
