// Test runner settings. CI machines have 2 cores and some tests compile modules or start processes, so the
// per-test timeout is generous; tests never assert on time. Two projects: everything on plain Node 20, and the
// *.relaxed.test.ts files in workers started with --experimental-wasm-relaxed-simd (Node 20's V8 11.3 ships
// relaxed SIMD behind that flag), so the relaxed builds are checked too without changing what the rest sees.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every test compiles for real (and never writes a compile cache into node_modules); the cache's own tests
    // turn it on with a folder of their own.
    env: { KILN_CACHE: "0" },
    projects: [
      { extends: true, test: { name: "node", include: ["test/**/*.test.ts"], exclude: ["test/**/*.relaxed.test.ts"] } },
      { extends: true, test: { name: "relaxed-simd", include: ["test/**/*.relaxed.test.ts"], execArgv: ["--experimental-wasm-relaxed-simd"] } },
    ],
  },
});
