// Emit stage: writes <base>.wasm and/or <base>.wgsl, <base>.manifest.json, <base>.js (manifest inlined + load()) and
// <base>.d.ts, which import the runtime from the package (`@kiln-ml/kiln/runtime`, so an app's models share one
// runtime and its Tensors); `standalone` instead copies the runtime beside them as kiln-runtime/ (no npm needed).
// All contents are computed first (moduleFiles, also the in-memory API), staged, then renamed into place.

import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../../runtime/manifest.js";
import { PACKAGE_NAME } from "../version.js";
import { renderDts } from "./dts.js";

export interface WriteModuleOptions {
  outDir: string;
  /** File name stem: writes `<baseName>.js`, `.wasm`, `.manifest.json`, `.d.ts`. */
  baseName: string;
  manifest: Manifest;
  wasm: Uint8Array;
  /** The relaxed-SIMD build, written as `<baseName>.relaxed.wasm` (the manifest names it only when given). */
  wasmRelaxed?: Uint8Array;
  /** The WGSL shaders (target wgsl or all), written as `<baseName>.wgsl`; the manifest's `wgsl` must describe them. */
  wgsl?: string;
  /** Copy the runtime beside the module (kiln-runtime/) instead of importing it from the package. */
  standalone?: boolean;
  /** The runtime's import specifier when not standalone (default `@kiln-ml/kiln/runtime`). */
  runtimeImport?: string;
  /**
   * Trained weights (safetensors bytes, checked against the module by the caller), written as
   * `<baseName>.weights.safetensors`; load() then loads them unless given other weights (or `weights: null`).
   */
  weights?: Uint8Array;
}

export type ModuleFilesOptions = Omit<WriteModuleOptions, "outDir">;

/** A file of a compiled module: its path relative to the output folder and its contents. */
export interface ModuleFile {
  rel: string;
  data: string | Uint8Array;
}

const RUNTIME_DIR = "kiln-runtime";
export const RUNTIME_IMPORT = `${PACKAGE_NAME}/runtime`;

/** Writes the module files; returns the paths written (joined onto outDir). */
export async function writeModule(opts: WriteModuleOptions): Promise<string[]> {
  const { outDir } = opts;
  const files = await moduleFiles(opts);

  // ---- stage, then rename into place ----
  const outAbs = resolve(outDir);
  const createdOut = !(await exists(outAbs));
  await mkdir(outAbs, { recursive: true });
  const staging = await mkdtemp(join(outAbs, ".kiln-tmp-"));
  try {
    for (const f of files) {
      const p = join(staging, ...f.rel.split("/"));
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, f.data);
    }
    if (opts.standalone) {
      const oldRuntime = join(outAbs, RUNTIME_DIR);
      if (await exists(oldRuntime)) await rename(oldRuntime, join(staging, ".old-runtime"));
      await rename(join(staging, RUNTIME_DIR), oldRuntime);
    }
    for (const f of files) if (!f.rel.startsWith(RUNTIME_DIR + "/")) await rename(join(staging, f.rel), join(outAbs, f.rel));
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    if (createdOut) await rm(outAbs, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  await rm(staging, { recursive: true, force: true });
  return files.map((f) => join(outDir, ...f.rel.split("/")));
}

/**
 * The files of a compiled module, in memory (for tools and bundler plugins): NAME.js, NAME.d.ts, the manifest, the
 * binaries, and kiln-runtime/ when standalone.
 */
export async function moduleFiles(opts: ModuleFilesOptions): Promise<ModuleFile[]> {
  const { baseName, wasm } = opts;
  if (!baseName || /[\\/]/.test(baseName) || baseName === "." || baseName === ".." || baseName === RUNTIME_DIR) {
    throw new Error(`writeModule: bad baseName ${JSON.stringify(baseName)} (a file name stem without slashes)`);
  }
  const { wasmRelaxed: _named, ...given } = opts.manifest;
  const relaxedFile = opts.wasmRelaxed ? `${baseName}.relaxed.wasm` : undefined;
  // A WebGPU-only build (manifest wasm "") writes no .wasm.
  const wasmFile = opts.manifest.wasm === "" ? "" : `${baseName}.wasm`;
  if (opts.wgsl !== undefined && !opts.manifest.wgsl) throw new Error("writeModule: WGSL text given but the manifest has no wgsl field");
  const wgslFile = opts.wgsl !== undefined ? `${baseName}.wgsl` : undefined;
  const weightsFile = opts.weights ? `${baseName}.weights.safetensors` : undefined;
  const { wgsl: wgslMeta, ...rest } = given;
  const manifest: Manifest = {
    ...rest,
    wasm: wasmFile,
    ...(relaxedFile ? { wasmRelaxed: relaxedFile } : {}),
    ...(wgslFile && wgslMeta ? { wgsl: { ...wgslMeta, file: wgslFile } } : {}),
  };

  const runtimeSpec = opts.standalone ? `./${RUNTIME_DIR}/index.js` : (opts.runtimeImport ?? RUNTIME_IMPORT);
  const runtime = opts.standalone ? await readRuntimeFiles() : [];
  return [
    ...(wasmFile ? [{ rel: wasmFile, data: wasm }] : []),
    ...(wgslFile ? [{ rel: wgslFile, data: opts.wgsl! }] : []),
    ...(relaxedFile ? [{ rel: relaxedFile, data: opts.wasmRelaxed! }] : []),
    ...(weightsFile ? [{ rel: weightsFile, data: opts.weights! }] : []),
    { rel: `${baseName}.manifest.json`, data: JSON.stringify(manifest, null, 2) + "\n" },
    { rel: `${baseName}.js`, data: renderJs(manifest, baseName, runtimeSpec, weightsFile) },
    { rel: `${baseName}.d.ts`, data: renderDts(manifest, baseName, runtimeSpec, weightsFile) },
    ...runtime.map((f) => ({ rel: `${RUNTIME_DIR}/${f.rel}`, data: f.data })),
    // The runtime is ESM; this makes Node treat it so even when outDir is in a CommonJS package.
    ...(opts.standalone ? [{ rel: `${RUNTIME_DIR}/package.json`, data: JSON.stringify({ type: "module", private: true }, null, 2) + "\n" }] : []),
  ];
}

function renderJs(manifest: Manifest, baseName: string, runtimeSpec: string, weightsFile?: string): string {
  const rt = JSON.stringify(runtimeSpec);
  // Each file as a literal `new URL("./f", import.meta.url)`: the pattern bundlers recognise and copy as an asset.
  const src = (f: string) => `new URL(${JSON.stringify("./" + f)}, import.meta.url)`;
  const sources = [
    manifest.wasm ? `  wasm: () => readBytes(${src(manifest.wasm)}),` : "",
    manifest.wasmRelaxed ? `  relaxedWasm: () => readBytes(${src(manifest.wasmRelaxed)}),` : "",
    manifest.wgsl ? `  wgsl: () => readText(${src(manifest.wgsl.file)}),` : "",
  ].filter(Boolean);
  return `// Generated by Kiln (${manifest.compiler}) from ${manifest.source}. Do not edit.
// Load with: import { load } from "./${baseName}.js"; const m = await load({ seed: 0 });
import { loadCompiled, readBytes, readText } from ${rt};
export { Tensor, GpuTensor, KilnError } from ${rt};

export const manifest = ${JSON.stringify(manifest, null, 2)};

const sources = {
${sources.join("\n")}
};

/**
 * Loads the module: reads ${baseName}.wasm next to this file (fs under Node, fetch in a browser)${manifest.wasmRelaxed ? `, or
 * ${manifest.wasmRelaxed} where the engine has relaxed SIMD` : ""}. Options: seed, params, threads, weights (a
 * safetensors path, URL or bytes, loaded strictly), backend ("wasm", "webgpu", "auto" or an ordered list).
 * On WebGPU${manifest.wgsl ? ` (reads ${manifest.wgsl.file})` : " (needs a build with --target all)"} calls return GpuTensors; \`await t.read()\` reads a result on any backend.${manifest.wgsl && Object.values(manifest.wgsl.kernels).some((k) => k.f16) ? `
 * WebGPU option f16: "auto" (default: array<f16> kernels where the adapter has shader-f16, else packed), "native"
 * (a KilnError without shader-f16) or "packed" (f16 stored two per 32-bit word; any adapter, same results).` : ""}
 */
${weightsFile ? `export function load(options = {}) {
  // The trained weights compiled in (kiln compile --weights) load unless the caller gives others, or weights: null.
  const weights = options.weights === undefined ? ${src(weightsFile)} : options.weights;
  return loadCompiled(manifest, sources, { ...options, weights });
}` : `export function load(options = {}) {
  return loadCompiled(manifest, sources, options);
}`}
`;
}

/** The directory holding Kiln's package.json (PACKAGE_NAME), found by walking up from this file. */
export async function findPackageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { name?: string };
      if (pkg.name === PACKAGE_NAME) return dir;
    } catch {
      // no package.json here
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the kiln package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The compiled runtime's .js and .d.ts files (no source maps), sourceMappingURL lines removed. */
async function readRuntimeFiles(): Promise<Array<{ rel: string; data: string }>> {
  const root = await findPackageRoot();
  const dir = join(root, "dist", "runtime");
  if (!(await exists(join(dir, "index.js")))) {
    throw new Error(`the Kiln runtime is not built (${join(dir, "index.js")} is missing): run \`npm run build\` in ${root}`);
  }
  const out: Array<{ rel: string; data: string }> = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && (e.name.endsWith(".js") || e.name.endsWith(".d.ts"))) {
        const text = await readFile(p, "utf8");
        out.push({ rel: relative(dir, p).split(sep).join("/"), data: text.replace(/^\/\/# sourceMappingURL=.*$/gm, "").trimEnd() + "\n" });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
