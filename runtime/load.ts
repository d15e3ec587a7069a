// Loading a compiled module from its files: reads `<name>.manifest.json` and the wasm (or, for
// { backend: "webgpu" }, the WGSL) it names, resolved relative to the manifest, then loads it on that backend.
// Works in Node (fs) and browsers (fetch).

import type { Manifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import { readBytes, readText, toUrl } from "./io.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "./wasm/module.js";
import { loadKilnModuleWebGPU, type KilnGpuModule, type WebGPULoadOptions } from "./webgpu/module.js";

export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options: WebGPULoadOptions & { backend: "webgpu" },
): Promise<KilnGpuModule & T>;
export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options?: LoadOptions,
): Promise<KilnModule & T>;
export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options: LoadOptions | WebGPULoadOptions = {},
): Promise<(KilnModule | KilnGpuModule) & T> {
  const url = await toUrl(manifestUrl);
  const text = await readText(url);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new KilnError(`${url.href} is not valid JSON: ${(e as Error).message}`, { code: "bad_manifest", cause: e });
  }
  if (options?.backend === "webgpu") {
    const file = manifest?.wgsl?.file;
    const wgsl = typeof file === "string" ? await readText(new URL(file, url)) : "";
    return loadKilnModuleWebGPU<T>(manifest, wgsl, options as WebGPULoadOptions);
  }
  if (typeof manifest?.wasm !== "string") throw new KilnError(`${url.href}: the manifest does not name its wasm file`, { code: "bad_manifest" });
  const wasm = await readBytes(new URL(manifest.wasm, url));
  return loadKilnModule<T>(manifest, wasm, options as LoadOptions);
}
