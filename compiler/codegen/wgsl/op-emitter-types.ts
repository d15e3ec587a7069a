// Codegen stage (WGSL): the types of the op lowering table (op-emitters.ts) that its extension tables
// (op-emitters-math.ts) also fill in, kept apart so the tables do not import each other.
import type { DType } from "../../ir/types.js";
import type { Attrs, AttrsOf, PrimOp, ReduceOp } from "../../ops/types.js";
import type { HelperName } from "./prelude.js";

export interface WgslEmitCtx {
  /** Includes a helper function (prelude.ts) in the kernel. */
  use(h: HelperName): void;
}

export type WgslElementEmitter = (c: WgslEmitCtx, args: readonly string[], argTypes: readonly DType[], out: DType, attrs: Attrs) => string;

export type WgslLowering =
  | { readonly kind: "elementwise"; readonly emit: WgslElementEmitter }
  | { readonly kind: "reduce"; readonly op: ReduceOp }
  | { readonly kind: "matmul" }
  /** Rendered as copy kernels by the planner. */
  | { readonly kind: "layout" }
  | { readonly kind: "iota" }
  /** Row gather and scatter-add kernels (gather.ts). */
  | { readonly kind: "gather" }
  | { readonly kind: "scatter_add" }
  /** A direct per-channel convolution kernel (depthwise.ts). */
  | { readonly kind: "depthwise_conv2d" }
  /** A flag other kernels clear, or a `finite` kernel: see the planner. */
  | { readonly kind: "finite" }
  /** A host step of the wasm runtime (all_reduce): WebGPU refuses the functions that have one (data-parallel grad). */
  | { readonly kind: "collective" }
  /** Graph leaves: no kernel. */
  | { readonly kind: "source" };

