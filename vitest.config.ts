// Test runner settings. CI machines have 2 cores and some tests compile modules or start processes, so the
// per-test timeout is generous; tests never assert on time.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
