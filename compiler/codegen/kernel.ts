// Codegen stage, kernel IR: the backend-neutral description of each kernel the planner asks a backend to build.
// The planner (compiler/codegen/plan.ts) turns IR nodes (or fused groups) into KernelSpecs plus the integer
// arguments of each call; the wasm renderer (compiler/codegen/wasm/) and later the WGSL renderer build them.
//
// Calling convention of every kernel (all params i32; pointers are byte addresses in the one linear memory,
// extents/strides/offsets are in elements):
//   elementwise: (in_0, ..., in_{n-1}, out, ext_0, ..., ext_{rank-1})
//       out is contiguous with shape ext; input i is contiguous with shape ext where axes with
//       inputs[i].bcast[axis] === true have extent 1 (broadcast along that axis).
//       With extraOutputs: (in_0, ..., in_{n-1}, out, xout_0, ..., xout_{m-1}, ext_0, ...); each extra output
//       is contiguous with shape ext and holds its own expression (sharing subexpressions with `expr`).
//   reduce:      (in, out, ext_0, ..., ext_{rank-1})
//       in is contiguous with shape ext; out is contiguous over the axes with reduced[axis] === false, in order.
//       "mean" divides by the product of the reduced extents.
//       With a prologue: (in_0, ..., in_{n-1}, out, ext_0, ..., ext_{rank-1}); the value reduced at each index
//       is prologue.expr over the inputs, each contiguous with shape ext where its bcast axes have extent 1
//       (like elementwise inputs); `dtype` is the dtype of that value (the accumulator's). With
//       prologue.stored: (in_0, ..., in_{n-1}, out, stored, ext_0, ...), the values also written to `stored`.
//   matmul:      (a, b, scratch, out, bext_0, ..., bext_{batchRank-1}, M, K, N, m0, m1)
//       a: [batch..., M, K] ([batch..., K, M] when transA), b: [batch..., K, N] ([batch..., N, K] when transB)
//       (axes with aBcast/bBcast true have extent 1 in that operand); out: [batch..., M, N]; all contiguous.
//       Computes rows [m0, m1) of every out matrix (the planner passes 0, M; the thread pool splits the range).
//       scratch: a buffer of at least matmulScratchBytes(M, K, N) bytes (runtime/wasm/matmul-scratch.ts, "band"/"block"
//       partial sums with a 16-bit epilogue) for packed panels; the planner adds one per matmul step as an extra
//       temp value sized per call (source.matmul; a step buffer before out, so
//       out stays the last buffer as every step's output is), and each extra thread gets its own
//       MATMUL_SCRATCH_MAX bytes. f32 accumulation.
//       With an epilogue: (a, b, scratch, e_0, ..., e_{n-1}, out, bext..., M, K, N, m0, m1): scratch stays at
//       index 2 (the thread pool swaps it) and out stays last; e_i is epilogue.inputs[i], contiguous with shape
//       [batch..., M, N] where its bcast axes have extent 1. out (dtype epilogue.out) holds
//       epilogue.expr per element, where {t: "in", index: 0} is the finished f32 sum over all of K and index
//       i >= 1 reads e_{i-1} at that element (so inputs[i-1] is expression input i).
//       aDtype/bDtype: storage dtype of a/b (default `dtype`); aRound/bRound: each loaded operand element is
//       rounded to that format first (a cast folded in); the sum is still f32.
//   copy:        (in, out, inOffset, outOffset, ext_0..ext_{r-1}, inStride_0..inStride_{r-1}, outStride_0..outStride_{r-1})
//       for every index i in ext: out[outOffset + sum i_k*outStride_k] = in[inOffset + sum i_k*inStride_k]
//   iota:        (out, n)      out[i] = i for i < n (i32)
//   gather:      (table, ids, out, rows, n, len)
//       out[j*len .. (j+1)*len) = table row ids[j] (len elements) for j < n, or zeros when ids[j] is outside
//       [0, rows); any dtype (rows are copied as bytes; WGSL: 32-bit dtypes).
//   scatter_add: (ids, src, out, rows, n, len)
//       out [rows, len] = 0, then out row ids[j] += src row j for j < n (ids outside [0, rows) are skipped); f32.
//   depthwise_conv2d: (x, w, out, planes, pixels)
//       x [planes, H, W], w [C, KH, KW], out [planes, OH, OW] (f32, contiguous); plane p uses filter p % C. The
//       geometry (sizes, stride, dilation, top/left padding) is in the spec; reads outside x count as 0.
//       pixels = OH * OW (the WGSL grid's size; wasm ignores it).
//   finite:      (in, flag, n)
//       flag (one bool) is set to false when any of in[0..n) (contiguous, dtype `dtype`) is Inf or NaN; never set
//       to true (the planner fills the flag with true first, and several kernels may clear the same flag). n may
//       be 0. The fallback of `all_finite` for a value whose kernel cannot check it (passes/fusion-finite.ts).
//   flag outputs: an elementwise, reduce or matmul kernel with `flag: true` takes one more pointer right after its
//       last output pointer (elementwise: after the extra outputs; reduce: after out, or after `stored`; matmul:
//       after out) and before the integer arguments. It sets that bool to false when any value it stores to `out`
//       is not finite *as stored* (an f32 sum of 70000 rounded to f16 is Inf; f16 values from 65520 up round to
//       Inf, bf16 values from 0x7F7F8000 up), and never sets it to true. Concurrent writers (row chunks, WebGPU
//       invocations) only ever store false, so their races are benign; WGSL stores it with atomicStore on an
//       array<atomic<i32>> binding (bool is one 32-bit word there; wasm: one byte).
//   softmax_rows: (in, out, rows, cols)
//       in and out contiguous f32 [rows, cols]; each row of out is softmax (mode "softmax") or log_softmax
//       ("log_softmax") of that row of in: the max / sum(exp(x - max)) / divide (or x - max - log(sum)) kernels
//       planned as one (codegen/plan-rows.ts), so the row is read from memory once. out may be in.
//       With `saves` (softmax whose exps and sums are read elsewhere: a backward, or a division fused into its
//       consumers): (in, out, exps, sums, rows, cols), or (in, exps, sums, rows, cols) when `saves.out` is false;
//       exps [rows, cols] = exp(x - max) and sums [rows] = their sum are stored, and out (when there) is exps / sums
//       (WGSL: a true divide, the div kernel's values; wasm: exps times 1 / sums, within 1 ulp, as without saves).
//       Nothing is in place.
//       `saves.exps` false: no exps stored (nor out); `saves.max`: the row maxes [rows] are stored too, before the
//       sums: (in, [out,] [exps,] [maxes,] sums, rows, cols) in general (cross-entropy's log-sum-exp rows).
//   softmax_grad_rows: (in_0, ..., in_{n-1}, out, outer, rows, cols)
//       the backward of softmax / log_softmax over the last axis (codegen/plan-rows-grad.ts): per row, r = the sum
//       over its columns of `sum` (an EwExpr over the inputs), then v = `row` (over the row inputs and index n = r),
//       then out[row, j] = `out` (over the inputs at [row, j] and index n = v). out is f32 [outer, rows, cols]; input
//       i (inputs[i].layout) is f32 [outer, rows, cols] ("full"), [outer, rows] (one value per row, "row"), one
//       value ("one", a mean's 1 / numel), or [rows, cols], the same for every outer index ("tile", f32 or bool: an
//       attention's causal mask); all contiguous. out is never an input.
//   pool2d:      (x, out, planes, pixels), or (in_0, ..., in_{n-1}, out, planes, pixels) with a prologue
//       x [planes, H, W] -> out [planes, OH, OW] (f32, contiguous): each output is the max (op "max") or the mean
//       over KH*KW taps (op "avg": the sum divided by KH*KW, padding counted) of the window at (oh sh - top,
//       ow sw - left); taps outside x are skipped (max's -inf / avg's 0 padding). With a prologue the pooled value at
//       each input element is prologue.expr over the inputs, each [N, C, H, W] with its bcast axes of extent 1
//       (planes = N * C, plane p is image p / C, channel p % C), and is never stored (codegen/plan-pool.ts).
//       pixels = OH * OW (the WGSL grid's size; wasm ignores it).
//   maxpool_grad: (x, dy, dx, planes, pixels)
//       max_pool2d's input gradient for windows that tile x exactly (stride = kernel, H = OH KH, W = OW KW, no
//       padding): x [planes, H, W], dy [planes, OH, OW], dx [planes, H, W] (f32, contiguous). Each window's dy goes
//       to the first tap (row-major) equal to the window's max, +0 to the others; a window holding NaN sends none
//       (the argmax expansion's convention: x == NaN is false everywhere). pixels = OH * OW (the WGSL grid).
//   qmatmul:     (a, w, qp, [bias,] scratch, out, M, K, N, m0, m1)
//       int8 matmul on a weight quantized per output channel (docs/quantization.md): a [M, K] (f32, or u8 for
//       input "q8"), w packed as the backend's QPacking says, qp the f32 words of qpHeader + weight scales;
//       rows [m0, m1) of out [M, N]. Only runtime/quantize/dynamic.ts calls these (the manifest's int8 variants).

import type { DType } from "../ir/types.js";
import type { PrimOp, AttrsOf } from "../ops/types.js";

/** A scalar expression evaluated per output element of an elementwise kernel. */
export type EwExpr =
  | { readonly t: "in"; readonly index: number }
  | { readonly t: "const"; readonly value: number; readonly dtype: DType }
  | { readonly t: "op"; readonly op: PrimOp; readonly attrs: AttrsOf[PrimOp]; readonly dtype: DType; readonly args: readonly EwExpr[] };

export interface ElementwiseKernel {
  readonly kind: "elementwise";
  readonly rank: number;
  readonly inputs: readonly { readonly dtype: DType; readonly bcast: readonly boolean[] }[];
  readonly out: DType;
  readonly expr: EwExpr;
  /**
   * More values the same loop stores (passes/fusion.ts: elementwise consumers of a pinned node, e.g. the f16
   * copy of an updated master weight); their pointers follow `out`.
   */
  readonly extraOutputs?: readonly { readonly dtype: DType; readonly expr: EwExpr }[];
  /** Clears a bool flag when a value stored to `out` is not finite (see "flag outputs" above). */
  readonly flag?: true;
}

export interface ReduceKernel {
  readonly kind: "reduce";
  readonly op: "sum" | "mean" | "max" | "min";
  readonly dtype: DType;
  readonly rank: number;
  readonly reduced: readonly boolean[];
  /**
   * Elementwise producers fused into the reduction (passes/fusion.ts): the value reduced is `expr` over these
   * inputs (broadcast along their bcast axes), never stored. Absent: one contiguous input of dtype `dtype`.
   */
  readonly prologue?: ReducePrologue;
  /** Clears a bool flag when a value stored to `out` is not finite (see "flag outputs" above). */
  readonly flag?: true;
}

export interface ReducePrologue {
  readonly inputs: readonly { readonly dtype: DType; readonly bcast: readonly boolean[] }[];
  readonly expr: EwExpr;
  /**
   * The value reduced is also stored, contiguous with the full (unreduced) shape, in a buffer right after
   * `out` (softmax's exp(x - max) feeds its sum and its divide: one pass computes both). f32 only.
   */
  readonly stored?: boolean;
}

export interface MatmulKernel {
  readonly kind: "matmul";
  readonly dtype: DType;
  readonly batchRank: number;
  readonly aBcast: readonly boolean[];
  readonly bBcast: readonly boolean[];
  /** a holds the transpose of the left operand (a permute of its last two axes folded in by the planner). */
  readonly transA?: boolean;
  /** b holds the transpose of the right operand. */
  readonly transB?: boolean;
  /** Storage dtype of the a / b buffers (default: `dtype`); loads widen to f32. */
  readonly aDtype?: "f32" | "f16" | "bf16";
  readonly bDtype?: "f32" | "f16" | "bf16";
  /** The operand is rounded to this format after loading (a `cast` folded into the matmul by the planner). */
  readonly aRound?: "f16" | "bf16";
  readonly bRound?: "f16" | "bf16";
  /** Elementwise consumers of the product folded into its store (passes/fusion.ts fuseMatmulEpilogues). */
  readonly epilogue?: MatmulEpilogue;
  /** Clears a bool flag when a value stored to `out` is not finite (see "flag outputs" above). */
  readonly flag?: true;
  /**
   * wasm: `b` points at B already packed into panels (the step's `prepackB`: a constant weight packed once by the
   * runtime, not per call); the kernel skips packing B. WGSL reads `b` as usual (the runtime passes the param).
   */
  readonly prepackedB?: true;
  /**
   * a is a convolution's input and the left operand its im2col rows, gathered while loading (ConvGather). With
   * transA, the rows transposed [taps, pixels] (a weight gradient, plan-conv-wgrad.ts): batchRank 0 (the pixels
   * of every image) or 1 (per image, not broadcast; a steps by C*H*W per image).
   */
  readonly aConv?: ConvGather;
  /**
   * With aConv, the product stored straight in NCHW: b holds w as [O, K] (transB), the one batch axis is the
   * images (aBcast [false], bBcast [true]; a steps by C*H*W per image), and out[n] = b · patches(n)ᵀ is [O, OH*OW]:
   * the ints' M is O, N is OH*OW, rows [m0, m1) are output channels. Epilogue flags are over [image, O, pixel].
   */
  readonly convOut?: true;
  /**
   * wasm only, with convOut (3x3, stride 1, dilation 1): computed as Winograd F(2x2, 3x3) (wasm/winograd.ts,
   * plan-winograd.ts) with the same arguments; the scratch is sized for it (its MatmulScratchSpec minBytes).
   * WGSL ignores it and runs the gathered matmul.
   */
  readonly winograd?: WinogradPlan;
}

/** How a Winograd convolution is blocked: output tile rows (2 pixel rows each) transformed and multiplied together. */
export interface WinogradPlan {
  readonly rowsPerBlock: number;
  /** Output channels (the weight's rows): fixes the transformed weight's layout. */
  readonly O: number;
  /**
   * The weight is a param in a function that changes none: `w` points at its transform, written once per value by
   * the runtime with the exported WINOGRAD_PREPACK (runtime/wasm/prepack.ts), not transformed on every call.
   */
  readonly prepacked?: true;
}

/**
 * The left operand of a matmul read as a convolution's patches (plan-conv-gather.ts): a holds x [N, C, H, W]
 * (unpadded; stored as aDtype, f32 by default, and rounded to aRound if set: mixed precision,
 * plan-conv-gather-half.ts) and op(A)[r][k] with r = (n, oh, ow) and k = (c, kh, kw), row-major over those, is
 * x[n, c, oh sh + kh dh - ph, ow sw + kw dw - pw], 0 outside x (the padding). Only with batchRank 0 (but see
 * MatmulKernel.aConv's convOut and transA).
 */
export interface ConvGather extends ConvGeometry {
  /** Leading padding, [along H, along W]. */
  readonly pad: readonly [number, number];
}

/** A convolution window's sizes (known when compiled): channels, input and output image, kernel, stride, dilation. */
export interface ConvGeometry {
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly KH: number;
  readonly KW: number;
  readonly OH: number;
  readonly OW: number;
  /** [along H, along W]. */
  readonly stride: readonly [number, number];
  readonly dilation: readonly [number, number];
}

/**
 * What a matmul stores instead of its sum: `expr` over the accumulator (input 0) and `inputs` (inputs 1..n,
 * flags over [batch..., M, N], i.e. batchRank + 2 axes), computed in f32 registers and stored as `out`.
 */
export interface MatmulEpilogue {
  readonly inputs: readonly { readonly dtype: DType; readonly bcast: readonly boolean[] }[];
  readonly expr: EwExpr;
  readonly out: DType;
  /**
   * K is known at compile time and fits one KC block, with a 16-bit output: the wasm gemm stores each MR-row
   * band as soon as its tiles are done, staging only an MR x nc band of f32 sums instead of an mc x nc block.
   */
  readonly singleK?: true;
}

export interface CopyKernel {
  readonly kind: "copy";
  readonly dtype: DType;
  readonly rank: number;
}

/** all_finite's check of one stored value (see "finite" above). */
export interface FiniteKernel {
  readonly kind: "finite";
  readonly dtype: "f32" | "f16" | "bf16";
}

export interface GatherKernel {
  readonly kind: "gather";
  readonly dtype: DType;
}

export interface ScatterAddKernel {
  readonly kind: "scatter_add";
  readonly dtype: "f32";
}

/** ops/depthwise.ts's op with its geometry fixed at compile time (only the batch varies). */
export interface DepthwiseKernel extends ConvGeometry {
  readonly kind: "depthwise_conv2d";
  readonly dtype: "f32";
  /** Rows and columns of padding before the image (negative: cropped). */
  readonly top: number;
  readonly left: number;
}

/** max / avg pooling with its geometry fixed at compile time (see "pool2d" above; codegen/plan-pool.ts). */
export interface Pool2dKernel extends Omit<ConvGeometry, "dilation"> {
  readonly kind: "pool2d";
  readonly op: "max" | "avg";
  readonly dtype: "f32";
  /** Rows and columns of padding before the image. */
  readonly top: number;
  readonly left: number;
  /** The elementwise group computing x, evaluated per tap instead of read from a stored x. */
  readonly prologue?: { readonly inputs: readonly { readonly dtype: DType; readonly bcast: readonly boolean[] }[]; readonly expr: EwExpr };
}

/** max_pool2d's gradient as one scatter (see "maxpool_grad" above; codegen/plan-pool-grad.ts). */
export interface MaxPoolGradKernel {
  readonly kind: "maxpool_grad";
  readonly C: number;
  readonly OH: number;
  readonly OW: number;
  readonly KH: number;
  readonly KW: number;
}

export interface IotaKernel {
  readonly kind: "iota";
  readonly dtype: "i32";
}

/**
 * An int8 matmul with int32 accumulation. `input`: "dynamic" quantizes each f32 row to u8 at run time (ONNX
 * DynamicQuantizeLinear), "static" with the calibrated scale in qp, "q8" reads u8 left by the previous int8
 * step. `output`: "f32" dequantizes (then bias, relu), "q8" also requantizes to u8 for the next int8 step,
 * "i32" stores the raw accumulators (MatMulInteger; no bias or relu).
 */
export interface QMatmulKernel {
  readonly kind: "qmatmul";
  readonly input: "dynamic" | "static" | "q8";
  readonly output: "f32" | "q8" | "i32";
  readonly bias: boolean;
  readonly relu: boolean;
}

/** What a softmax_rows kernel stores besides out: exps (default true; out needs them), sums always, maxes if `max`. */
export interface SoftmaxSaves {
  readonly out: boolean;
  readonly exps?: boolean;
  readonly max?: boolean;
}

/** The buffers of a softmax_rows kernel after `in`, in parameter order. */
export function softmaxRowsBuffers(k: SoftmaxRowsKernel): ("out" | "exps" | "maxes" | "sums")[] {
  const s = k.saves;
  if (!s || k.mode !== "softmax") return ["out"];
  return [...(s.out ? ["out" as const] : []), ...(s.exps !== false ? ["exps" as const] : []), ...(s.max ? ["maxes" as const] : []), "sums"];
}

/** softmax / log_softmax over the last axis of an f32 [rows, cols] value (see "softmax_rows" above). */
export interface SoftmaxRowsKernel {
  readonly kind: "softmax_rows";
  readonly mode: "softmax" | "log_softmax";
  /** softmax only: store the exps and the row sums (after out; `out: false`: no out, the division is elsewhere). */
  readonly saves?: SoftmaxSaves;
}

/** A row sum and the elementwise value that reads it, one row at a time (see "softmax_grad_rows" above). */
export interface SoftmaxGradRowsKernel {
  readonly kind: "softmax_grad_rows";
  readonly inputs: readonly { readonly layout: "full" | "row" | "one" | "tile"; readonly dtype: "f32" | "bool" }[];
  /** The value summed over each row (dtype f32). */
  readonly sum: EwExpr;
  /** The per-row value computed from the sum (input n): the row-shaped nodes between the sum and `out`. */
  readonly row: EwExpr;
  /** The value stored per element; input n is the per-row value. */
  readonly out: EwExpr;
}

export type KernelSpec = SoftmaxRowsKernel | SoftmaxGradRowsKernel | ElementwiseKernel | ReduceKernel | MatmulKernel | CopyKernel | IotaKernel | QMatmulKernel | FiniteKernel | GatherKernel | ScatterAddKernel | DepthwiseKernel | Pool2dKernel | MaxPoolGradKernel;

export interface NamedKernel {
  readonly name: string;
  readonly spec: KernelSpec;
}
