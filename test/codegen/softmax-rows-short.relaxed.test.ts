// The relaxed build's run of softmax-rows-short.test.ts (this file runs under the relaxed-SIMD flag, as the other
// *.relaxed.test.ts files; the suite picks its build from the flag).
import "./softmax-rows-short.test.js";
