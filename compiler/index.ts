// The compiler's public API (`import { compileModule } from "@kiln-ml/kiln"`): a .kiln source to a module's files
// in memory, for tools and bundler plugins; the runtime is `@kiln-ml/kiln/runtime`. Binaryen and the frontend load
// only when a build needs them.

import { buildSource, moduleName, type BuildSourceOptions } from "./build-source.js";
import { formatDiagnostics, type Diagnostic } from "./diagnostics.js";
import type { Manifest } from "../runtime/manifest.js";
import { moduleFiles, type ModuleFile } from "./emit/module-writer.js";

export { COMPILER_VERSION, PACKAGE_NAME } from "./version.js";
export { PRECISIONS, type Precision, type Target } from "./options.js";
export { formatDiagnostics, type Diagnostic } from "./diagnostics.js";
export { writeModule, moduleFiles, RUNTIME_IMPORT, type ModuleFile, type WriteModuleOptions } from "./emit/module-writer.js";
export { cacheDir, cacheEnabled } from "./cache.js";
export { buildSource, type BuildSourceOptions, type SourceBuild } from "./build-source.js";

export interface CompileModuleOptions extends Omit<BuildSourceOptions, "ir"> {
  /** Copy the runtime into the files (kiln-runtime/) instead of importing `@kiln-ml/kiln/runtime`. */
  standalone?: boolean;
  /** The runtime's import specifier when not standalone. */
  runtimeImport?: string;
}

export interface CompiledModule {
  /** True when the program compiled (files are then present). */
  ok: boolean;
  diagnostics: Diagnostic[];
  /** The diagnostics as the CLI prints them (file:line:col, source line, caret, hint); "" when there are none. */
  message: string;
  /** NAME.js, NAME.d.ts, NAME.manifest.json, the binaries (and kiln-runtime/ when standalone), by relative path. */
  files: ModuleFile[];
  manifest?: Manifest;
  /** Whether the build came from the compile cache (options.cache). */
  cached: boolean;
}

/**
 * Compiles a .kiln source to its module files in memory. Never throws for a bad program: errors come back as
 * diagnostics (`ok: false`). `file` names the program in diagnostics and the manifest; its stem names the files.
 */
export async function compileModule(source: string, options: CompileModuleOptions = {}): Promise<CompiledModule> {
  const file = options.file ?? "module.kiln";
  const b = await buildSource(source, { ...options, file });
  const message = b.diagnostics.length ? formatDiagnostics(b.diagnostics, { [file]: source }) : "";
  if (!b.build) return { ok: false, diagnostics: b.diagnostics, message, files: [], cached: false };
  const files = await moduleFiles({
    baseName: moduleName(file),
    manifest: b.build.manifest,
    wasm: b.build.wasm ?? new Uint8Array(0),
    ...(b.build.wasmRelaxed ? { wasmRelaxed: b.build.wasmRelaxed } : {}),
    ...(b.build.wgsl !== undefined ? { wgsl: b.build.wgsl } : {}),
    ...(options.standalone ? { standalone: true } : {}),
    ...(options.runtimeImport ? { runtimeImport: options.runtimeImport } : {}),
  });
  const manifestFile = files.find((f) => f.rel.endsWith(".manifest.json"))!;
  return { ok: true, diagnostics: b.diagnostics, message, files, manifest: JSON.parse(String(manifestFile.data)) as Manifest, cached: b.cached };
}
