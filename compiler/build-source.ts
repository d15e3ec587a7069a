// A .kiln source to a module's artifacts in memory (manifest, wasm and relaxed-SIMD wasm, WGSL), through the compile
// cache: a hit returns them without loading the frontend or Binaryen (compile.ts is imported only on a miss). The
// CLI's compile/run/train and the package API (compiler/index.ts) build through here.

import { basename, extname } from "node:path";
import type { Diagnostic } from "./diagnostics.js";
import { readCache, writeCache, type CachedBuild, type CacheKey } from "./cache.js";
import type { Precision, Target } from "./compile.js";
import type { IRModule } from "./ir/graph.js";

export interface BuildSourceOptions {
  /** The file name diagnostics and the manifest (`source`) name; its stem names the binaries (default "module.kiln"). */
  file?: string;
  target?: Target;
  precision?: Precision;
  /** Passes to skip (e.g. ["fusion"]). */
  skipPasses?: readonly string[];
  /** Read and write the compile cache (default false here; the CLI turns it on; KILN_CACHE=0 always wins). */
  cache?: boolean;
  /** Also compile each train block's data-parallel form (grad + apply, runtime/parallel). */
  dataParallel?: boolean;
  /** The source's optimised IR when the caller already has it (a miss then skips the frontend). */
  ir?: IRModule;
}

export interface SourceBuild {
  /** Errors and warnings (on a cache hit, the warnings recorded with the entry). */
  diagnostics: Diagnostic[];
  /** The artifacts, when there were no errors. */
  build?: CachedBuild;
  /** Whether the artifacts came from the cache. */
  cached: boolean;
  /** The optimised IR, when it was compiled (never on a cache hit). */
  ir?: IRModule;
}

/** The stem of a file name: "dsl-examples/mlp.kiln" -> "mlp". */
export function moduleName(file: string): string {
  return basename(file, extname(file)) || "module";
}

export async function buildSource(source: string, opts: BuildSourceOptions = {}): Promise<SourceBuild> {
  const file = opts.file ?? "module.kiln";
  const target = opts.target ?? "wasm";
  const key: CacheKey = { file, source, options: { target, precision: opts.precision ?? "f32", skip: [...(opts.skipPasses ?? [])].sort(), dataParallel: opts.dataParallel === true } };
  if (opts.cache) {
    const hit = await readCache(key);
    if (hit) return { diagnostics: hit.diagnostics ?? [], build: hit, cached: true };
  }
  const { compileToIR, checkWasmDtypes, buildWasm, buildWgsl, withWgsl } = await import("./compile.js");
  const { DiagnosticBag } = await import("./diagnostics.js");
  const r = opts.ir ? { ir: opts.ir, diagnostics: [] as Diagnostic[] } : compileToIR(source, file, [], opts.skipPasses ?? [], { precision: opts.precision, ...(opts.dataParallel ? { dataParallel: true } : {}) });
  if (!r.ir) return { diagnostics: r.diagnostics, cached: false };
  const name = moduleName(file);
  let build: CachedBuild;
  if (target === "wgsl") {
    const g = buildWgsl(r.ir, name);
    build = { manifest: g.manifest, wgsl: g.wgsl };
  } else {
    const diags = new DiagnosticBag();
    checkWasmDtypes(r.ir, diags);
    if (diags.hasErrors) return { diagnostics: [...r.diagnostics, ...diags.sorted()], cached: false, ir: r.ir };
    const w = await buildWasm(r.ir, name, { wat: false });
    const g = target === "all" ? withWgsl(w.manifest, w.plan, name) : undefined;
    build = { manifest: g?.manifest ?? w.manifest, wasm: w.wasm, wasmRelaxed: w.wasmRelaxed, ...(g ? { wgsl: g.wgsl } : {}) };
  }
  if (opts.cache) await writeCache(key, { ...build, diagnostics: r.diagnostics });
  return { diagnostics: r.diagnostics, build, cached: false, ir: r.ir };
}
