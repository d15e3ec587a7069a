// Prepacked matmul weights: a matmul whose B is a param (in a function that updates none) reads B already packed
// into the gemm's panels (compiler/codegen/wasm/matmul.ts prepackB), so an inference call skips packing it. A Winograd
// convolution's param weight is kept the same way as its transform (layout "winograd", compiler/codegen/wasm/winograd.ts). The
// packed copy lives in persistent memory, one per (packer, param) shared by the module's functions, and is
// redone before a call whenever the param's version changed (every writer of a param bumps it: bumpParam).

import { KilnError } from "../errors.js";
import type { KernelFn } from "./backend.js";
import type { LinearMemory } from "./memory.js";
import { MICRO } from "./matmul-scratch.js";

/** Export name of the packer of a row-major B [K, N] ("n") or one stored transposed, [N, K] ("t"). */
export function prepackName(transB: boolean): string {
  return `__kiln_prepack_b_${transB ? "t" : "n"}`;
}

/** Export name of the Winograd weight transform of a 3x3 convolution's weight (the step's prepackB, layout "winograd"). */
export const WINOGRAD_PREPACK = "__kiln_prepack_wino";

/**
 * Bytes of B [K, N] packed (K x roundUp(N, NR) floats; NR is the same in both builds), or with layout "winograd" of
 * the transformed weight [N = O, K = 9 C]: 16 x roundUp(O, 4) x C floats (4-row panels in both builds).
 */
export function prepackedBytes(K: number, N: number, layout?: "winograd"): number {
  if (layout === "winograd") return 4 * 16 * Math.ceil(N / 4) * 4 * (K / 9);
  const nr = MICRO.plain.nr;
  return 4 * K * Math.ceil(N / nr) * nr;
}

/** What a param writer needs: the slot's version, which a packed copy remembers. */
export interface Versioned {
  /** Bumped on every write of the param's memory (absent: never written since load). */
  version?: number;
}

/** Marks a param's memory as changed: packed copies of it are redone before their next use. */
export function bumpParam(slot: Versioned): void {
  slot.version = (slot.version ?? 0) + 1;
}

interface Packed {
  ptr: number;
  /** The param version packed (-1: not yet). */
  version: number;
}

/** The module's packed weights, by packer and param (shared by its executors). */
export class PrepackCache {
  readonly #entries = new Map<string, Packed>();
  readonly #memory: LinearMemory;

  constructor(memory: LinearMemory) {
    this.#memory = memory;
  }

  /** Reserves (once, at load: persistent memory) the packed copy of `param` made by `kernel`. */
  reserve(kernel: string, param: string, K: number, N: number, layout?: "winograd"): void {
    const key = `${kernel}:${param}`;
    if (!this.#entries.has(key)) this.#entries.set(key, { ptr: this.#memory.allocPersistent(prepackedBytes(K, N, layout), `packed weight ${param}`), version: -1 });
  }

  /** The packed copy of the param at `src`, packed again first if the param changed since. */
  get(kernel: string, pack: KernelFn, param: string, slot: Versioned, src: number, K: number, N: number): number {
    const e = this.#entries.get(`${kernel}:${param}`);
    if (!e) throw new KilnError(`internal: no packed copy of param "${param}" was reserved`, { code: "bad_manifest" });
    const version = slot.version ?? 0;
    if (e.version !== version) {
      pack(src, e.ptr, K, N);
      e.version = version;
    }
    return e.ptr;
  }
}
