// The wasm augmentation backend: instantiates the generated kernels (augment-wasm.ts) with a small memory of its
// own, copies each call's arrays in, runs the kernel and copies the result out. One instance serves the process.

import { KilnError } from "../errors.js";
import { AUGMENT_WASM_BASE64 } from "./augment-wasm.js";
import { jsAugment, type AugmentBackend, type Dims, type Pixels } from "./augment-ref.js";

const PAGE = 65536;

type Kernel = (...args: number[]) => void;

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

class WasmAugment implements AugmentBackend {
  readonly name = "wasm" as const;
  readonly #memory: WebAssembly.Memory;
  readonly #k: Record<string, Kernel>;
  #top = 0;

  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory) {
    this.#memory = memory;
    this.#k = instance.exports as unknown as Record<string, Kernel>;
  }

  flip(src: Pixels, dst: Pixels, d: Dims, flags: Uint8Array): void {
    this.#run(src, dst, [flags], ([s, o, f]) => this.#kernel("flip", src)(s!, o!, d.n, d.c, d.h, d.w, f!));
  }

  rotate(src: Pixels, dst: Pixels, d: Dims, params: Float64Array, fill: number): void {
    this.#run(src, dst, [params], ([s, o, p]) => this.#kernel("rotate", src)(s!, o!, d.n, d.c, d.h, d.w, p!, fill));
  }

  crop(src: Pixels, dst: Pixels, d: Dims, oh: number, ow: number, offsets: Int32Array, fill: number): void {
    this.#run(src, dst, [offsets], ([s, o, p]) => this.#kernel("crop", src)(s!, o!, d.n, d.c, d.h, d.w, oh, ow, p!, fill));
  }

  normalize(src: Float32Array, dst: Float32Array, n: number, c: number, plane: number, stats: Float64Array): void {
    this.#run(src, dst, [stats], ([s, o, p]) => this.#k.normalize_f32!(s!, o!, n, c, plane, p!));
  }

  toTensor(src: Uint8Array, dst: Float32Array, d: Dims, hwc: boolean): void {
    this.#run(src, dst, [], ([s, o]) => this.#k.to_tensor_u8!(s!, o!, d.n, d.c, d.h, d.w, hwc ? 1 : 0));
  }

  #kernel(op: string, src: Pixels): Kernel {
    return this.#k[`${op}_${src instanceof Float32Array ? "f32" : "u8"}`]!;
  }

  /** Lays out [src, dst, ...extra] in memory (16-byte aligned), runs `call` with their addresses, copies dst out. */
  #run(src: ArrayBufferView, dst: ArrayBufferView, extra: ArrayBufferView[], call: (ptrs: number[]) => void): void {
    const arrays = [src, dst, ...extra];
    const ptrs: number[] = [];
    let top = 16;
    for (const a of arrays) {
      ptrs.push(top);
      top += Math.ceil(a.byteLength / 16) * 16;
    }
    this.#reserve(top);
    const mem = new Uint8Array(this.#memory.buffer);
    arrays.forEach((a, i) => {
      if (i !== 1) mem.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), ptrs[i]!);
    });
    call(ptrs);
    new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(new Uint8Array(this.#memory.buffer, ptrs[1]!, dst.byteLength));
  }

  #reserve(bytes: number): void {
    if (bytes <= this.#top) return;
    const have = this.#memory.buffer.byteLength;
    if (bytes > have) {
      try {
        this.#memory.grow(Math.ceil((bytes - have) / PAGE));
      } catch (e) {
        throw new KilnError(`augmentation: the kernels' memory could not grow to ${bytes} bytes (${(e as Error).message})`, { code: "out_of_memory", cause: e });
      }
    }
    this.#top = bytes;
  }
}

let wasmBackend: WasmAugment | undefined;
let wasmFailure: unknown;

function imports(): { memory: WebAssembly.Memory; imports: WebAssembly.Imports } {
  const memory = new WebAssembly.Memory({ initial: 1 });
  return { memory, imports: { env: { memory } } };
}

/**
 * The wasm backend, compiled synchronously on first use (fine in Node and workers; browsers' main threads allow
 * it for small modules like this one — call loadAugmentKernels() first to compile asynchronously).
 */
export function augmentKernels(): AugmentBackend {
  if (wasmBackend) return wasmBackend;
  if (wasmFailure !== undefined) throw wasmError(wasmFailure);
  try {
    const { memory, imports: imp } = imports();
    const instance = new WebAssembly.Instance(new WebAssembly.Module(decodeBase64(AUGMENT_WASM_BASE64)), imp);
    wasmBackend = new WasmAugment(instance, memory);
    return wasmBackend;
  } catch (e) {
    wasmFailure = e;
    throw wasmError(e);
  }
}

/** Compiles the kernels asynchronously (for browser main threads); later augmentKernels() calls reuse them. */
export async function loadAugmentKernels(): Promise<AugmentBackend> {
  if (wasmBackend) return wasmBackend;
  const { memory, imports: imp } = imports();
  const { instance } = await WebAssembly.instantiate(decodeBase64(AUGMENT_WASM_BASE64), imp);
  wasmBackend ??= new WasmAugment(instance, memory);
  return wasmBackend;
}

export type AugmentBackendName = "wasm" | "js";

export function augmentBackend(name: AugmentBackendName = "wasm"): AugmentBackend {
  return name === "js" ? jsAugment : augmentKernels();
}

function wasmError(e: unknown): KilnError {
  return new KilnError(`augmentation: could not instantiate the wasm kernels (${(e as Error)?.message ?? e}); pass backend: "js" to use the JS implementation`, { code: "bad_wasm", cause: e });
}
