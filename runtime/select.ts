// Loading a compiled module on the backend the caller names — one backend, "auto" or an ordered list, falling down
// the list when one cannot start here (no adapter, no WGSL in the build) — then its trained weights, strictly.
// What the generated NAME.js load() and loadKilnModuleFromUrl call; the chosen backend and why are on the module.

import type { Manifest } from "./manifest.js";
import { KilnError } from "./errors.js";
import type { Source } from "./data/source.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "./wasm/module.js";
import { loadKilnModuleWebGPU, type KilnGpuModule, type WebGPULoadOptions } from "./webgpu/module.js";
import { loadWeights } from "./quantize/io.js";

export type BackendName = "wasm" | "webgpu";
/** One backend, "auto" (WebGPU where the build has WGSL and an adapter starts, else wasm), or a list in order. */
export type BackendChoice = BackendName | "auto" | readonly BackendName[];

/** The module's files, fetched only for the backend that loads. */
export interface ModuleSources {
  wasm?: () => Promise<Uint8Array>;
  relaxedWasm?: () => Promise<Uint8Array>;
  wgsl?: () => Promise<string>;
  /** Weights baked in by `kiln compile --weights` (NAME.safetensors beside the module), loaded unless options say otherwise. */
  weights?: () => Promise<Uint8Array>;
}

export interface LoadCompiledOptions extends Omit<WebGPULoadOptions, "backend"> {
  backend?: BackendChoice;
  /**
   * Trained weights (safetensors: a path, URL or bytes, e.g. from `kiln train --save`), set after the seeded init.
   * Strict: every weight of the module must be in the file, with its dtype and shape, and nothing else. null: none
   * (a module compiled with weights then keeps its seeded init).
   */
  weights?: Source | null;
  /** Allow `weights` to leave some params out (they keep their seeded values). */
  partialWeights?: boolean;
}

const BACKENDS: readonly BackendName[] = ["wasm", "webgpu"];

/** The backends to try, in order, for a choice (checked: a KilnError names a bad one). */
export function backendOrder(manifest: Manifest, choice: unknown = "wasm"): BackendName[] {
  if (choice === "auto") return manifest.wgsl && manifest.wasm ? ["webgpu", "wasm"] : manifest.wgsl ? ["webgpu"] : ["wasm"];
  const list = typeof choice === "string" ? [choice] : Array.isArray(choice) ? choice : null;
  const bad = list?.find((b) => !BACKENDS.includes(b as BackendName));
  if (!list || list.length === 0 || bad !== undefined) {
    throw new KilnError(`load: backend must be "wasm", "webgpu", "auto" or a list of them in order, got ${JSON.stringify(bad ?? choice)}`, { code: "bad_option" });
  }
  return [...new Set(list as BackendName[])];
}

/**
 * Loads a compiled module. With several backends to try, a KilnError from one (e.g. "no WebGPU adapter") moves on
 * to the next and becomes the module's `fallbackReason`; the last one's error is thrown. Errors in `weights` are
 * never a reason to fall back: they are thrown.
 */
export async function loadCompiled(manifest: Manifest, sources: ModuleSources, options: LoadCompiledOptions = {}): Promise<KilnModule | KilnGpuModule> {
  if (options === null || typeof options !== "object") throw new KilnError(`load: options must be an object`, { code: "bad_option" });
  const { backend, partialWeights, ...rest } = options;
  // Baked weights load by default; `weights: null` keeps the init rules (e.g. to train from scratch).
  const weights = options.weights === undefined ? (sources.weights ? await sources.weights() : undefined) : options.weights ?? undefined;
  delete (rest as { weights?: unknown }).weights;
  const order = backendOrder(manifest, backend);
  const skipped: string[] = [];
  let mod: KilnModule | KilnGpuModule | undefined;
  for (const [i, b] of order.entries()) {
    try {
      mod = await loadOn(b, manifest, sources, rest);
      break;
    } catch (e) {
      if (!(e instanceof KilnError) || i === order.length - 1) {
        if (skipped.length && e instanceof KilnError) {
          throw new KilnError(`${e.message} (after ${skipped.join("; ")})`, { code: e.code, ...(e.tensor ? { tensor: e.tensor } : {}), cause: e });
        }
        throw e;
      }
      skipped.push(`${b}: ${e.message}`);
    }
  }
  if (skipped.length) {
    const own = mod!.fallbackReason;
    Object.defineProperty(mod, "fallbackReason", { value: skipped.join("; ") + (own ? `; ${own}` : "") });
  }
  if (weights !== undefined && weights !== null) {
    try {
      await loadWeights(mod!, weights, { partial: partialWeights === true });
    } catch (e) {
      mod!.dispose();
      throw e;
    }
  }
  return mod!;
}

async function loadOn(b: BackendName, manifest: Manifest, sources: ModuleSources, options: Omit<WebGPULoadOptions, "backend">): Promise<KilnModule | KilnGpuModule> {
  if (b === "webgpu") {
    if (!manifest.wgsl || !sources.wgsl) {
      throw new KilnError(`this module was compiled without the WGSL target: recompile it with \`kiln compile --target all\` (or --target wgsl) to run it on WebGPU`, { code: "bad_option" });
    }
    return loadKilnModuleWebGPU(manifest, await sources.wgsl(), { ...options, backend: "webgpu" });
  }
  if (!manifest.wasm || !sources.wasm) {
    throw new KilnError(`this module was compiled for WebGPU only (--target wgsl): load it with { backend: "webgpu" }, or recompile with --target all for the wasm backend`, { code: "bad_option" });
  }
  const { device: _d, timeoutMs: _t, f16: _f, ...wasmOptions } = options;
  const relaxed = sources.relaxedWasm;
  return loadKilnModule(manifest, await sources.wasm(), { ...(wasmOptions as LoadOptions), ...(relaxed ? { relaxedWasm: relaxed } : {}) });
}
