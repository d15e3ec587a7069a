// The compile cache: a compiled module's artifacts (manifest, wasm builds, WGSL) on disk, keyed by the source, its
// file name, the compile options and the compiler build, so an unchanged program skips lowering and Binaryen on
// the next `kiln run`/`train`/`compile`. Off with KILN_CACHE=0; KILN_CACHE_DIR picks the folder. Imports nothing
// heavy: a hit must not load the frontend (Chevrotain) or Binaryen.

import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../runtime/manifest.js";
import type { Diagnostic } from "./diagnostics.js";
import { COMPILER_VERSION } from "./version.js";

/** What identifies a build: the program and everything that changes its artifacts. */
export interface CacheKey {
  /** The file name as given (the manifest records it as `source`). */
  file: string;
  source: string;
  /** Compile options (precision, target, skipped passes...): any JSON value. */
  options: unknown;
}

export interface CachedBuild {
  manifest: Manifest;
  wasm?: Uint8Array;
  wasmRelaxed?: Uint8Array;
  wgsl?: string;
  /** The warnings of the compile that made the entry (a build has no errors). */
  diagnostics?: Diagnostic[];
}

/** Whether the cache is on (KILN_CACHE=0, off or false turns it off). */
export function cacheEnabled(env: Record<string, string | undefined> = process.env): boolean {
  return !["0", "off", "false", "no"].includes((env.KILN_CACHE ?? "").toLowerCase());
}

/** KILN_CACHE_DIR, else node_modules/.cache/kiln under the working directory when it has node_modules, else $XDG_CACHE_HOME/kiln (~/.cache/kiln). */
export function cacheDir(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): string {
  if (env.KILN_CACHE_DIR) return resolve(env.KILN_CACHE_DIR);
  if (existsSync(join(cwd, "node_modules"))) return join(cwd, "node_modules", ".cache", "kiln");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "kiln");
}

/**
 * The compiler build, beyond its version: `npm run build` rewrites dist/, so this file's mtime changes with every
 * rebuild of a development checkout (a version that stays 0.1.0 must not serve stale kernels), and never in an
 * installed package.
 */
function compilerBuild(): string {
  try {
    return `${COMPILER_VERSION}@${statSync(fileURLToPath(import.meta.url)).mtimeMs}`;
  } catch {
    return COMPILER_VERSION;
  }
}

export function cacheKeyHash(key: CacheKey): string {
  // KILN_WINOGRAD (codegen/plan-winograd.ts), KILN_CONV_WGRAD_GATHER (codegen/plan-conv-wgrad.ts),
  // KILN_THREADS_NSPLIT (codegen/wasm/parallel.ts), KILN_CONV_DY_NCHW (passes/nchw-grad.ts), KILN_SOFTMAX_GRAD_ROWS
  // (codegen/plan-rows-grad.ts), KILN_CONV_DX_PHASE (ops/conv-backward-phase.ts) and KILN_CONV_GATHER_HALF
  // (codegen/plan-conv-gather-half.ts), A/B switches, change the kernels a source compiles to.
  const knobs = ["KILN_WINOGRAD", "KILN_CONV_WGRAD_GATHER", "KILN_THREADS_NSPLIT", "KILN_CONV_DY_NCHW", "KILN_SOFTMAX_GRAD_ROWS", "KILN_CONV_DX_PHASE", "KILN_CONV_GATHER_HALF"].map((k) => process.env[k] ?? "");
  return createHash("sha256").update(JSON.stringify([compilerBuild(), key.file, key.options, key.source, knobs])).digest("hex").slice(0, 40);
}

/** The cached artifacts for a key, or undefined (a miss, or an unreadable entry, which counts as one). */
export async function readCache(key: CacheKey, dir = cacheDir()): Promise<CachedBuild | undefined> {
  if (!cacheEnabled()) return undefined;
  const entry = join(dir, cacheKeyHash(key));
  try {
    const meta = JSON.parse(await readFile(join(entry, "entry.json"), "utf8")) as { manifest: Manifest; wasm: boolean; relaxed: boolean; wgsl: boolean; diagnostics?: Diagnostic[] };
    const [wasm, wasmRelaxed, wgsl] = await Promise.all([
      meta.wasm ? readFile(join(entry, "kernels.wasm")) : undefined,
      meta.relaxed ? readFile(join(entry, "kernels.relaxed.wasm")) : undefined,
      meta.wgsl ? readFile(join(entry, "kernels.wgsl"), "utf8") : undefined,
    ]);
    return {
      manifest: meta.manifest,
      diagnostics: meta.diagnostics ?? [],
      ...(wasm ? { wasm: new Uint8Array(wasm) } : {}),
      ...(wasmRelaxed ? { wasmRelaxed: new Uint8Array(wasmRelaxed) } : {}),
      ...(wgsl !== undefined ? { wgsl } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Stores artifacts under a key. Written to a staging folder and renamed, so a reader never sees half an entry;
 * a failure to write (read-only disk) only costs the next run its speed, so it is swallowed.
 */
export async function writeCache(key: CacheKey, build: CachedBuild, dir = cacheDir()): Promise<void> {
  if (!cacheEnabled()) return;
  const entry = join(dir, cacheKeyHash(key));
  try {
    await mkdir(dir, { recursive: true });
    const staging = await mkdtemp(join(dir, ".tmp-"));
    await writeFile(join(staging, "entry.json"), JSON.stringify({ manifest: build.manifest, wasm: !!build.wasm, relaxed: !!build.wasmRelaxed, wgsl: build.wgsl !== undefined, diagnostics: build.diagnostics ?? [] }));
    if (build.wasm) await writeFile(join(staging, "kernels.wasm"), build.wasm);
    if (build.wasmRelaxed) await writeFile(join(staging, "kernels.relaxed.wasm"), build.wasmRelaxed);
    if (build.wgsl !== undefined) await writeFile(join(staging, "kernels.wgsl"), build.wgsl);
    await rename(staging, entry).catch(async () => {
      // Another process stored the same key first: its entry is as good as ours.
      await rm(staging, { recursive: true, force: true });
    });
  } catch {
    // not cached; nothing else changes
  }
}
