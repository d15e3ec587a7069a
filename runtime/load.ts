// Loading a compiled module from its files: reads `<name>.manifest.json`, then the wasm or WGSL it names (resolved
// relative to the manifest) for the backend that loads (runtime/select.ts: one, "auto" or a list; and weights).
// Works in Node (fs) and browsers (fetch).

import type { Manifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import { readBytes, readText, toUrl } from "./io.js";
import type { KilnModule } from "./wasm/module.js";
import type { KilnGpuModule } from "./webgpu/module.js";
import { loadCompiled, type LoadCompiledOptions, type ModuleSources } from "./select.js";

export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options: Omit<LoadCompiledOptions, "backend"> & { backend: "webgpu" },
): Promise<KilnGpuModule & T>;
export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options?: Omit<LoadCompiledOptions, "backend"> & { backend?: "wasm" },
): Promise<KilnModule & T>;
export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options?: LoadCompiledOptions,
): Promise<(KilnModule | KilnGpuModule) & T>;
export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options: LoadCompiledOptions = {},
): Promise<(KilnModule | KilnGpuModule) & T> {
  const url = await toUrl(manifestUrl);
  const text = await readText(url);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new KilnError(`${url.href} is not valid JSON: ${(e as Error).message}`, { code: "bad_manifest", cause: e });
  }
  if (manifest === null || typeof manifest !== "object") throw new KilnError(`${url.href}: the manifest is not an object`, { code: "bad_manifest" });
  if (typeof manifest.wasm !== "string") throw new KilnError(`${url.href}: the manifest does not name its wasm file`, { code: "bad_manifest" });
  const file = manifest.wgsl?.file;
  const sources: ModuleSources = {
    ...(manifest.wasm ? { wasm: () => readBytes(new URL(manifest.wasm, url)) } : {}),
    ...(typeof manifest.wasmRelaxed === "string" ? { relaxedWasm: () => readBytes(new URL(manifest.wasmRelaxed!, url)) } : {}),
    ...(typeof file === "string" ? { wgsl: () => readText(new URL(file, url)) } : {}),
  };
  return (await loadCompiled(manifest, sources, options)) as (KilnModule | KilnGpuModule) & T;
}
