// Test helper: the tests that load the compiled runtime (generated modules, child processes, browsers) build dist/
// first when it is missing or older than any runtime source (`npm test` builds before running anyway).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs tsc when some runtime/**\/*.ts is newer than its dist/ output; throws if dist/runtime is still missing. */
export function ensureRuntimeBuilt(): void {
  const stale = (dir: string): boolean => readdirSync(dir, { withFileTypes: true }).some((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return stale(p);
    if (!e.name.endsWith(".ts")) return false;
    const out = join(root, "dist", p.slice(root.length + 1).replace(/\.ts$/, ".js"));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(p).mtimeMs;
  });
  if (stale(join(root, "runtime"))) {
    try {
      execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")], { cwd: root, stdio: "pipe" });
    } catch {
      // Other parts of the project may not type-check at the moment; tsc still emits.
    }
  }
  if (!existsSync(join(root, "dist", "runtime", "index.js"))) throw new Error("could not build dist/runtime");
}
