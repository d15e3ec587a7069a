// Codegen stage (wasm): the matmul blocking constants and the scratch size they imply. The formula lives in
// runtime/wasm/matmul-scratch.ts (the executor sizes each matmul's scratch per call); re-exported for the codegen.
export {
  KC, MC, NC, MICRO, MATMUL_SCRATCH_MAX, gemmScratchBytes, matmulScratchBytes, matmulScratchBytesAt,
  type MicroShape, type SimdVariant, type PartialSums, type MatmulScratchSpec,
} from "../../../runtime/wasm/matmul-scratch.js";
