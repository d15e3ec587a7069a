// Codegen stage (WGSL): the storage access layer — how each renderer reads and writes an element of any dtype,
// so f16/bf16 storage works in every kernel. 16-bit floats are storage only: they load as f32 and are rounded
// (prelude.ts kiln_f16_bits / kiln_bf16_bits, round to nearest even) on store. Two variants of a kernel exist
// (the compiler cannot know the adapter; the runtime picks at load):
//   "native": f16 buffers are `array<f16>` (`enable f16;`, adapters with shader-f16);
//   "packed": f16 buffers are `array<u32>` words holding two halves, element 2w in the low 16 bits.
// bf16 is always packed (WGSL has no bf16). Both variants have the same memory layout (little-endian halves), so
// the runtime's buffers and host uploads do not depend on the variant.
//
// Stores of packed halves must not race (two invocations writing the two halves of one word): elementwise kernels
// give each invocation a pair of adjacent elements and store whole words (renderers do this with packWord; the
// common, contiguous case pays nothing), while kernels that write scattered elements (copies with strides and
// offsets, one reduce result per workgroup, matmul register blocks over odd N) use storeElem, which clears and
// sets its half with atomicAnd/atomicOr on an array<atomic<u32>>: both touch only the invocation's own 16 bits,
// so they commute with the neighbour's and the word ends right whatever the interleaving.
import type { DType } from "../../ir/types.js";
import type { HelperName } from "./prelude.js";

export type HalfMode = "native" | "packed";
/** The element type of a storage binding. */
export type StorageElem = "f32" | "i32" | "u32" | "f16" | "atomic<u32>" | "atomic<i32>";

export function isHalf(d: DType): d is "f16" | "bf16" {
  return d === "f16" || d === "bf16";
}

/** Whether elements of `d` are halves of u32 words in this variant (bf16 always; f16 unless native). */
export function isPacked16(d: DType, mode: HalfMode): boolean {
  return d === "bf16" || (d === "f16" && mode === "packed");
}

/** WGSL type of a value of `d` in registers: 16-bit floats compute as f32. */
export function registerType(d: DType): "f32" | "i32" {
  if (d === "f64") throw new Error("wgsl backend: dtype f64 not supported (WGSL has no f64)");
  return d === "f32" || isHalf(d) ? "f32" : "i32";
}

/**
 * Element type of a buffer of `d`: `write` for an output; `scatter` when invocations write single elements at
 * arbitrary positions (packed halves then need atomics).
 */
export function bindingElem(d: DType, mode: HalfMode, use: "read" | "write" | "scatter" = "read"): StorageElem {
  if (d === "f16" && mode === "native") return "f16";
  if (isPacked16(d, mode)) return use === "scatter" ? "atomic<u32>" : "u32";
  return registerType(d);
}

/** Element `idx` of the packed 16-bit word array `buf` (u32 words) as f32. */
function loadPacked(d: "f16" | "bf16", word: string, idx: string, use: (h: HelperName) => void): string {
  if (d === "f16") return `unpack2x16float(${word})[(${idx}) & 1u]`;
  use("bf16_at");
  return `kiln_bf16_at(${word}, (${idx}) & 1u)`;
}

/** An expression reading element `idx` of buffer `buf` (bound with bindingElem(d, mode)) as its register type. */
export function loadElem(d: DType, mode: HalfMode, buf: string, idx: string, use: (h: HelperName) => void): string {
  if (d === "f16" && mode === "native") return `f32(${buf}[${idx}])`;
  if (isHalf(d)) return loadPacked(d, `${buf}[(${idx}) >> 1u]`, idx, use);
  return `${buf}[${idx}]`;
}

/** Element `off` of a member of the `pack` buffer (u32 words, the member starting at word `base`). */
export function loadPackElem(d: DType, base: string, off: string, use: (h: HelperName) => void): string {
  if (isHalf(d)) return loadPacked(d, `pack[${base} + ((${off}) >> 1u)]`, off, use);
  return `bitcast<${registerType(d)}>(pack[${base} + ${off}])`;
}

/** The low 16 bits holding the f32 `value` rounded to `d` (f16 or bf16). */
export function halfBits(d: "f16" | "bf16", value: string, use: (h: HelperName) => void): string {
  use(d === "f16" ? "f16_bits" : "bf16_bits");
  return `kiln_${d}_bits(${value})`;
}

/** The f32 `value` rounded to `d` and widened back (a cast to f16/bf16 inside a kernel, or a folded operand cast). */
export function roundTo(d: DType, value: string, use: (h: HelperName) => void): string {
  if (!isHalf(d)) return value;
  use(d === "f16" ? "f16_round" : "bf16_round");
  return `kiln_${d}_round(${value})`;
}

/**
 * Statements storing `value` (register type) as element `idx` of `buf`, bound with bindingElem(d, mode, "scatter"):
 * race-free for packed halves (see the file comment).
 */
export function storeElem(d: DType, mode: HalfMode, buf: string, idx: string, value: string, use: (h: HelperName) => void): string[] {
  if (d === "f16" && mode === "native") {
    use("to_f16");
    return [`${buf}[${idx}] = kiln_to_f16(${value});`];
  }
  if (!isHalf(d)) return [`${buf}[${idx}] = ${value};`];
  return [
    "{",
    `  let q_ = ${idx};`,
    `  let sh_ = (q_ & 1u) * 16u;`,
    `  atomicAnd(&${buf}[q_ >> 1u], ~(0xffffu << sh_));`,
    `  atomicOr(&${buf}[q_ >> 1u], ${halfBits(d, value, use)} << sh_);`,
    "}",
  ];
}

/**
 * A store of one element of an output that is not packed (f32, integer, native f16), where each invocation owns
 * its element; packed halves go through packWord instead.
 */
export function storeWordElem(d: DType, mode: HalfMode, buf: string, idx: string, value: string, use: (h: HelperName) => void): string {
  if (d === "f16" && mode === "native") {
    use("to_f16");
    return `${buf}[${idx}] = kiln_to_f16(${value});`;
  }
  return `${buf}[${idx}] = ${value};`;
}

/** `acc = acc | (bits of value) << (16 * h)`: element h (0 or 1) of a pair stored as one word after the pair. */
export function packWord(d: "f16" | "bf16", acc: string, h: string, value: string, use: (h: HelperName) => void): string {
  return `${acc} = ${acc} | (${halfBits(d, value, use)} << (16u * ${h}));`;
}
