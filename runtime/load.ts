// Loading a compiled module from its files: reads `<name>.manifest.json` and the wasm it names (resolved
// relative to the manifest), then calls loadKilnModule. Works in Node (fs) and browsers (fetch).

import type { Manifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import { readBytes, readText, toUrl } from "./io.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "./module.js";

export async function loadKilnModuleFromUrl<T extends object = Record<string, unknown>>(
  manifestUrl: string | URL,
  options: LoadOptions = {},
): Promise<KilnModule & T> {
  const url = await toUrl(manifestUrl);
  const text = await readText(url);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new KilnError(`${url.href} is not valid JSON: ${(e as Error).message}`, { code: "bad_manifest", cause: e });
  }
  if (typeof manifest?.wasm !== "string") throw new KilnError(`${url.href}: the manifest does not name its wasm file`, { code: "bad_manifest" });
  const wasm = await readBytes(new URL(manifest.wasm, url));
  return loadKilnModule<T>(manifest, wasm, options);
}
