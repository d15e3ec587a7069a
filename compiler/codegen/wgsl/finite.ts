// Codegen stage (WGSL): all_finite checks (kernel.ts "finite" and "flag outputs") — the standalone `finite`
// kernel, and the flag a kernel with `flag: true` clears when a value it stores to `out` is not finite. Only
// integer tests on the bits: WGSL lets compilers assume floats are never NaN or Inf, so a float compare could be
// folded away. Each invocation keeps the largest |bits| it stored and tests it once at the end; invocations only
// ever store 0 (with atomicStore, on one i32 word), so their races are benign.
import type { DType } from "../../ir/types.js";
import type { FiniteKernel } from "../kernel.js";
import type { HalfMode } from "./half.js";
import type { KernelShader, StorageBinding } from "./shader.js";

/** A compatibility-mode device binds at most this many storage buffers per shader stage. */
export const MAX_STORAGE_BUFFERS = 8;

/** The flag's binding: right after the kernel's last output in the calling convention (one bool, one word). */
export const FLAG_BINDING: StorageBinding = { name: "flag", elem: "atomic<i32>", write: true };

/**
 * The bound on bitcast<u32>(|v|) below which an f32 register value v stores as a finite `d` (kernel.ts): f32
 * below Inf; f16 below 65520 (0x477FF000), which round-to-nearest-even takes to Inf (prelude.ts kiln_f16_bits);
 * bf16 below 0x7F7F8000, the first value whose rounding carries into the exponent of Inf. NaN is above all three.
 */
export function finiteLimit(d: DType): string {
  switch (d) {
    case "f32": return "0x7f800000u";
    case "f16": return "0x477ff000u";
    case "bf16": return "0x7f7f8000u";
    default: throw new Error(`wgsl backend: a finite flag on a ${d} output (compiler bug: only float outputs are checked)`);
  }
}

/** The statements a kernel with `flag: true` adds: a running max of |bits| stored, and its one test at the end. */
export interface FlagCheck {
  /** Before the loops (function scope of `main`). */
  readonly decl: string;
  /** After a value `v` (f32 register) is stored to `out`. */
  track(v: string): string;
  /** After the loops: clears the flag when something stored was not finite. */
  readonly clear: string;
}

export function flagCheck(out: DType): FlagCheck {
  const limit = finiteLimit(out);
  return {
    decl: "var fin_ = 0u;",
    track: (v) => `fin_ = max(fin_, bitcast<u32>(${v}) & 0x7fffffffu);`,
    clear: `if (fin_ >= ${limit}) { atomicStore(&flag[0], 0i); }`,
  };
}

/** Storage buffers a shader binds (a `pack` counts once). */
export function storageCount(buffers: KernelShader["buffers"]): number {
  return buffers.filter((b) => b !== null && b !== "packed").length + (buffers.includes("packed") ? 1 : 0);
}

/** `buffers` with the flag appended; the fusion pass flags only kernels that leave it room (kernel named). */
export function withFlag(name: string, buffers: KernelShader["buffers"]): KernelShader["buffers"] {
  const all = [...buffers, FLAG_BINDING];
  const n = storageCount(all);
  if (n > MAX_STORAGE_BUFFERS) {
    throw new Error(`wgsl backend: kernel ${name} would bind ${n} storage buffers with its finite flag, more than the ${MAX_STORAGE_BUFFERS} a compatibility device allows (compiler bug: it should not be flagged)`);
  }
  return all;
}

/** Invocations per workgroup of the finite kernel (elementwise.ts's EW_WORKGROUP; not imported: it imports this file). */
const FINITE_WORKGROUP = 64;

/** 16-bit formats: the |bits| from which a half is Inf or NaN (exponent all ones). */
const HALF_INF: Record<"f16" | "bf16", string> = { f16: "0x7c00u", bf16: "0x7f80u" };

/**
 * Bindings (inp, flag); params n. The input is read as raw u32 words in both f16 variants (same memory layout,
 * half.ts), so there is no native section: array<f16> would add nothing but a float load of a NaN.
 */
export function renderFinite(name: string, k: FiniteKernel, _mode: HalfMode = "packed"): KernelShader {
  const W = FINITE_WORKGROUP;
  const half = k.dtype !== "f32";
  if (k.dtype !== "f32" && k.dtype !== "f16" && k.dtype !== "bf16") throw new Error(`wgsl backend: finite over ${String(k.dtype)} is not supported`);
  const loop = half
    ? [
      // Two halves per word; the last word of an odd n has a high half outside the tensor (any bits).
      `let nw = (n + 1u) / 2u;`,
      `for (var w = gid.x; w < nw; w = w + nwg.x * ${W}u) {`,
      `  let x = select(inp[w], inp[w] & 0xffffu, 2u * w + 1u >= n);`,
      `  fin_ = max(fin_, max(x & 0x7fffu, (x >> 16u) & 0x7fffu));`,
      `}`,
      `if (fin_ >= ${HALF_INF[k.dtype as "f16" | "bf16"]}) { atomicStore(&flag[0], 0i); }`,
    ]
    : [
      `for (var i = gid.x; i < n; i = i + nwg.x * ${W}u) {`,
      `  fin_ = max(fin_, inp[i] & 0x7fffffffu);`,
      `}`,
      `if (fin_ >= 0x7f800000u) { atomicStore(&flag[0], 0i); }`,
    ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: finite check of inp: ${k.dtype}[n] (all_finite): flag[0] = 0 if any element is Inf or NaN, else untouched`,
      `integer tests on the bits${half ? ", two halves per u32 word" : ""}`,
    ],
    params: ["n"],
    buffers: [{ name: "inp", elem: "u32", write: false }, FLAG_BINDING],
    helpers: new Set(),
    workgroup: [W, 1, 1],
    builtins: ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body: [`let n = p.n;`, `var fin_ = 0u;`, ...loop],
    workgroupBytes: 0,
    grid: [{ ints: [0], per: half ? 2 * W : W }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
