// Cross-entropy's log-sum-exp rows on the softmax row kernel, plain SIMD128 build (cases in lse-rows-cases.ts).
import { lseSuite } from "./lse-rows-cases.js";

lseSuite("plain");
