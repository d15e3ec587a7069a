// Test runner settings. CI machines have 2 cores and some tests compile modules or start processes, so the
// per-test timeout is generous; tests never assert on time.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every test compiles for real (and never writes a compile cache into node_modules); the cache's own tests
    // turn it on with a folder of their own.
    env: { KILN_CACHE: "0" },
  },
});
