// Cross-entropy's log-sum-exp rows on the softmax row kernel, relaxed-SIMD build (fused multiply-adds), run by the
// vitest project whose workers have --experimental-wasm-relaxed-simd (cases in lse-rows-cases.ts).
import { lseSuite } from "./lse-rows-cases.js";

lseSuite("relaxed");
