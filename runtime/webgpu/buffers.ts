/// <reference types="@webgpu/types" />
// WebGPU runtime, memory: a pool of storage buffers by size class, the storage format (one 32-bit word per
// element; byte-sized dtypes are widened on upload and narrowed on download; f16/bf16 two per word, element 2w in
// the low half, which is also array<f16>'s layout, so the native and packed kernels share buffers), and readback
// with a timeout.

import { KilnError } from "../errors.js";
import { allocTypedArray, type AnyTypedArray, type DType } from "../dtype.js";
import { USAGE, MAP_READ, FALLBACK_HINT, type GpuHandle } from "./device.js";

/** Storage is counted in 32-bit words. */
export const WORD = 4;

/** 32-bit words holding `numel` elements of `dtype` (f16/bf16: two per word, the last one maybe half used). */
export function wordsOf(dtype: DType, numel: number): number {
  return dtype === "f16" || dtype === "bf16" ? Math.ceil(numel / 2) : numel;
}

/** Bytes of GPU storage for `numel` elements of `dtype` (a multiple of 4, as bindings and copies need). */
export function bytesOf(dtype: DType, numel: number): number {
  return wordsOf(dtype, numel) * WORD;
}

/**
 * The word a buffer of `dtype` is filled with to hold one value everywhere: `one` is the value as toWords gives it
 * (for f16/bf16 both halves get its bits).
 */
export function fillWord(dtype: DType, one: Uint32Array): number {
  const w = one[0]!;
  return dtype === "f16" || dtype === "bf16" ? ((w & 0xffff) | (w << 16)) >>> 0 : w;
}
/** Bindings of zero bytes are invalid: every buffer has at least this many. */
const MIN_BYTES = 16;

/** Size classes 2^k and 1.5 * 2^k bound the waste of reuse to a third. */
export function sizeClass(bytes: number): number {
  const b = Math.max(MIN_BYTES, Math.ceil(bytes / WORD) * WORD);
  const p = 2 ** Math.floor(Math.log2(b));
  if (b === p) return p;
  return b <= p * 1.5 ? Math.ceil((p * 1.5) / WORD) * WORD : p * 2;
}

export class BufferPool {
  readonly #free = new Map<string, GPUBuffer[]>();
  readonly #all = new Set<GPUBuffer>();
  constructor(private readonly h: GpuHandle) {}

  /** A buffer of at least `bytes` (storage + copy usage unless `usage` says otherwise). */
  acquire(bytes: number, usage: number = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST): GPUBuffer {
    const exact = Math.max(MIN_BYTES, Math.ceil(bytes / WORD) * WORD);
    // Rounding up to a size class must not cross the device's buffer size limit.
    const size = sizeClass(bytes) <= this.h.device.limits.maxBufferSize ? sizeClass(bytes) : exact;
    const key = `${usage}:${size}`;
    const reuse = this.#free.get(key)?.pop();
    if (reuse) return reuse;
    const buf = this.h.device.createBuffer({ size, usage });
    this.#all.add(buf);
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.#all.has(buf)) return;
    const key = `${buf.usage}:${buf.size}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, (list = []));
    if (!list.includes(buf)) list.push(buf);
  }

  /** Forgets a buffer that must not be reused (e.g. one whose mapping timed out) and destroys it. */
  discard(buf: GPUBuffer): void {
    this.#all.delete(buf);
    buf.destroy();
  }

  destroyAll(): void {
    for (const b of this.#all) b.destroy();
    this.#all.clear();
    this.#free.clear();
  }
}

/** Host elements of `dtype` as the 32-bit words the kernels read. */
export function toWords(dtype: DType, data: AnyTypedArray): Float32Array | Int32Array | Uint32Array {
  switch (dtype) {
    case "f32": return data as Float32Array;
    case "i32": return data as Int32Array;
    case "i8": case "u8": case "bool": return Int32Array.from(data as Int8Array | Uint8Array);
    case "f16": case "bf16": {
      // Two bit patterns per word; an odd count gets a zero half so the byte length is a whole word.
      const u16 = data as Uint16Array;
      const even = u16.length % 2 === 0 && u16.byteOffset % 4 === 0 ? u16 : (() => { const c = new Uint16Array(u16.length + (u16.length % 2)); c.set(u16); return c; })();
      return new Uint32Array(even.buffer, even.byteOffset, even.length / 2);
    }
    case "f64": throw new KilnError(`f64 tensors cannot be stored on WebGPU (WGSL has no f64); ${FALLBACK_HINT}`, { code: "input_dtype", expected: "a dtype WebGPU supports", actual: "f64" });
  }
}

/** Decodes `numel` words read back from the GPU into the dtype's typed array. */
export function fromWords<D extends DType>(dtype: D, bytes: ArrayBuffer, numel: number): ReturnType<typeof allocTypedArray<D>> {
  const out = allocTypedArray(dtype, numel);
  switch (dtype) {
    case "f32": out.set(new Float32Array(bytes, 0, numel)); break;
    case "i32": case "i8": case "u8": out.set(new Int32Array(bytes, 0, numel) as unknown as ArrayLike<number>); break;
    case "bool": {
      const w = new Int32Array(bytes, 0, numel);
      for (let i = 0; i < numel; i++) out[i] = w[i] !== 0 ? 1 : 0;
      break;
    }
    case "f16": case "bf16": out.set(new Uint16Array(bytes, 0, numel) as unknown as ArrayLike<number>); break;
    default: out.set(new Uint32Array(bytes, 0, numel) as unknown as ArrayLike<number>);
  }
  return out;
}

/** Fills a new storage buffer with words (writeBuffer: ordered before later submissions). */
export function upload(h: GpuHandle, buf: GPUBuffer, words: ArrayBufferView): void {
  if (words.byteLength > 0) h.device.queue.writeBuffer(buf, 0, words.buffer, words.byteOffset, words.byteLength);
}

/**
 * Copies `bytes` of `src` into a mappable buffer and maps it. Never waits forever: after `timeoutMs` the read
 * fails with a KilnError (and the staging buffer is destroyed rather than reused).
 */
export async function readBack(h: GpuHandle, pool: BufferPool, src: GPUBuffer, bytes: number, timeoutMs: number, what: string): Promise<ArrayBuffer> {
  const staging = pool.acquire(bytes, USAGE.MAP_READ | USAGE.COPY_DST);
  const enc = h.device.createCommandEncoder({ label: `kiln readback ${what}` });
  if (bytes > 0) enc.copyBufferToBuffer(src, 0, staging, 0, bytes);
  h.device.queue.submit([enc.finish()]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KilnError(`${what}: reading the result back from the GPU timed out after ${timeoutMs} ms (the device may be hung or lost); ${FALLBACK_HINT}`, { code: "kernel_trap" })), timeoutMs);
  });
  try {
    await Promise.race([staging.mapAsync(MAP_READ, 0, staging.size), timeout]);
  } catch (e) {
    pool.discard(staging);
    if (e instanceof KilnError) throw e;
    const why = h.lost !== null ? `the WebGPU device was ${h.lost}` : (e as Error).message;
    throw new KilnError(`${what}: reading the result back from the GPU failed (${why}); ${FALLBACK_HINT}`, { code: "kernel_trap", cause: e });
  } finally {
    clearTimeout(timer);
  }
  const copy = staging.getMappedRange(0, staging.size).slice(0, bytes);
  staging.unmap();
  pool.release(staging);
  return copy;
}
