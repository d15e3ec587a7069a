// The compile options' values (precision, target), apart from compile.ts so that checking a flag does not load the
// frontend and the passes (a cached CLI run never does).

/** `--precision`: f32 (the default, nothing changes) or mixed precision with f16/bf16 matmuls (compiler/passes/precision.ts). */
export type Precision = "f32" | "mixed-f16" | "mixed-bf16";
export const PRECISIONS: readonly Precision[] = ["f32", "mixed-f16", "mixed-bf16"];

export type Target = "wasm" | "wgsl" | "all";
