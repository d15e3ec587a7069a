// Codegen stage (wasm): the int8 matmul's blocking constants, weight packing and scratch size. Kept free of
// Binaryen so the planner can size scratch buffers and describe the packing in the manifest.
import type { QPacking } from "../../../runtime/manifest.js";
import type { QMatmulKernel } from "../kernel.js";

/**
 * Microkernel: QMR rows x QNR columns of int32 accumulators (8 v128 locals), fed by i32x4.dot_i16x8_s on pairs
 * of k. 4x8 leaves V8 room for 2 B vectors, the A splat and a product (12 of its 15 xmm registers).
 */
export const QMR = 4;
export const QNR = 8;
/** Rows of A quantized and packed at a time (a multiple of QMR). */
export const QMC = 64;

/** The weight layout the wasm kernels read: 8-column panels of k pairs, widened to i16 (dot_i16x8_s operands). */
export const WASM_QPACKING: QPacking = { nr: QNR, group: 2, elem: "i16" };

/** Index of each argument in a qmatmul kernel's params (bias only when the spec has one). */
export function qmatmulArgs(k: QMatmulKernel): { a: number; w: number; qp: number; bias: number; scratch: number; out: number; M: number; K: number; N: number; m0: number; m1: number; count: number } {
  const b = k.bias ? 1 : 0;
  return { a: 0, w: 1, qp: 2, bias: k.bias ? 3 : -1, scratch: 3 + b, out: 4 + b, M: 5 + b, K: 6 + b, N: 7 + b, m0: 8 + b, m1: 9 + b, count: 10 + b };
}

/**
 * Scratch bytes of one call: [row scales QMC * 4][packed A: QMC rows x ceil(K / 2) pairs x 4 bytes]. K is a
 * weight dim, so always known at compile time.
 */
export function qmatmulScratchBytes(K: number): number {
  return QMC * 4 + QMC * Math.ceil(K / 2) * 4;
}

export function checkQMatmul(k: QMatmulKernel): void {
  if (k.output === "i32" && (k.bias || k.relu)) throw new Error("qmatmul: an i32 output takes no bias or relu (compiler bug)");
}
