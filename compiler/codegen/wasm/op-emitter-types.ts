// Codegen stage (wasm): the types of the op lowering table (op-emitters.ts) that its extension tables
// (op-emitters-math.ts) also fill in, kept apart so the tables do not import each other.
import type { DType } from "../../ir/types.js";
import type { Attrs, AttrsOf, PrimOp, ReduceOp } from "../../ops/types.js";
import type { E, EmitCtx, HelperName, Module } from "./context.js";

export type ElementEmitter = (ctx: EmitCtx, args: readonly E[], argTypes: readonly DType[], out: DType, attrs: Attrs) => E;

export type WasmLowering =
  | {
      readonly kind: "elementwise";
      readonly scalar: ElementEmitter;
      /** Four lanes at once; only called when every dtype in the kernel is f32, f16, bf16, i32 or bool. */
      readonly simd?: ElementEmitter;
      /** False when `simd` has no form for these operand dtypes (the kernel then runs its scalar loop). */
      readonly vectorizes?: (argTypes: readonly DType[]) => boolean;
    }
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
  /** A host step: the runtime calls its collective hook (all_reduce), no wasm kernel. */
  | { readonly kind: "collective" }
  /** Graph leaves: no kernel. */
  | { readonly kind: "source" };

