// Settings of the long fuzz run (`npm run fuzz`): only test/fuzz/*.fuzz.ts, which `npm test` never matches.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/fuzz/**/*.fuzz.ts"],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    // The long run checks the relaxed-SIMD build too (Node 20 has it behind this flag).
    execArgv: ["--experimental-wasm-relaxed-simd"],
  },
});
