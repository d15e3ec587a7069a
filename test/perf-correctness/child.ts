// Runs a snippet in a fresh Node process against the compiled runtime (dist/runtime, built when stale), with a
// module's manifest, plain and relaxed wasm preloaded: for what one process cannot show (exit, V8 flags, globals).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { WasmBuild } from "../../compiler/compile.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";

export { ensureRuntimeBuilt };

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `body` (top-level await allowed) with `manifest`, `wasm`, `relaxedWasm`, `loadKilnModule` and
 * `relaxedSimdSupported` in scope. A process still running after `timeoutMs` is killed (status null).
 */
export async function childWithRuntime(build: WasmBuild, body: string, nodeFlags: string[], timeoutMs: number): Promise<ChildResult> {
  ensureRuntimeBuilt();
  const dir = mkdtempSync(join(tmpdir(), "kiln-child-"));
  try {
    writeFileSync(join(dir, "m.json"), JSON.stringify(build.manifest));
    writeFileSync(join(dir, "m.wasm"), build.wasm);
    writeFileSync(join(dir, "m.relaxed.wasm"), build.wasmRelaxed);
    const rt = (f: string) => JSON.stringify(pathToFileURL(join(root, "dist", "runtime", f)).href);
    writeFileSync(join(dir, "main.mjs"), `
import { readFileSync } from "node:fs";
import { loadKilnModule } from ${rt("wasm/module.js")};
import { relaxedSimdSupported } from ${rt("wasm/backend.js")};
const here = new URL(".", import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("m.json", here), "utf8"));
const wasm = new Uint8Array(readFileSync(new URL("m.wasm", here)));
const relaxedWasm = new Uint8Array(readFileSync(new URL("m.relaxed.wasm", here)));
${body}
`);
    return await new Promise<ChildResult>((done) => {
      const p = spawn(process.execPath, [...nodeFlags, join(dir, "main.mjs")], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
      p.on("close", (code) => {
        clearTimeout(timer);
        done({ status: code, stdout, stderr });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
