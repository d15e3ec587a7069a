// CLI helper for `kiln compile --weights W.safetensors`: reads trained weights to ship beside the module (its
// load() then loads them by default), checked now with the runtime's strict loader on the built module, so a
// file that does not fit (a missing, extra or mis-shaped tensor) fails the compile, not a user's page later.

import { readFile } from "node:fs/promises";
import type { Manifest } from "../../runtime/manifest.js";
import { KilnError } from "../../runtime/errors.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { loadWeights } from "../../runtime/quantize/io.js";

export async function moduleWeights(path: string, manifest: Manifest, wasm: Uint8Array): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new KilnError(`kiln: --weights: cannot read '${path}': ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  // A WebGPU-only build has no wasm to check against; its load() checks as strictly.
  if (manifest.wasm === "") return bytes;
  const mod = await loadKilnModule(manifest, wasm);
  try {
    await loadWeights(mod, bytes);
  } catch (e) {
    if (e instanceof KilnError) throw new KilnError(`kiln: --weights ${path}: ${e.message}`, { code: e.code, ...(e.tensor ? { tensor: e.tensor } : {}) });
    throw e;
  } finally {
    mod.dispose();
  }
  return bytes;
}
