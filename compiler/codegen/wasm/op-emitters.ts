// Codegen stage (wasm): how each primitive op is lowered to WebAssembly. Filled in by the wasm codegen work.
// PLACEHOLDER: replaced by the real table; kept compiling so other stages can import the type.
import type { PrimOp } from "../../ops/types.js";

export type WasmLowering = { readonly kind: string };
export const WASM_LOWERING = {} as { readonly [P in PrimOp]: WasmLowering };
