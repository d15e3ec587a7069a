// Linear memory owner: the WebAssembly.Memory the kernels import as env.memory. Bump allocation, 16-byte aligned:
// a persistent region (params, consts) filled at load, then a scratch arena reset after every call. Grows by pages.

import { KilnError } from "../errors.js";
import { dtypeBytes, typedView, type DType, type TypedArrayFor } from "../dtype.js";

export const PAGE_BYTES = 65536;
export const ALIGN = 16;
const MAX_PAGES = 65536; // wasm32: 4 GiB

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}

export class LinearMemory {
  readonly memory: WebAssembly.Memory;
  readonly #maxPages: number;
  /** First address the runtime may use (after any data the wasm module placed in memory). */
  readonly base: number;
  #persistentEnd: number;
  #scratchTop: number;
  #highWater: number;

  constructor(memory: WebAssembly.Memory, base: number, maxPages = MAX_PAGES) {
    this.memory = memory;
    this.#maxPages = Math.min(maxPages, MAX_PAGES);
    this.base = alignUp(Math.max(base, ALIGN)); // never hand out address 0
    this.#persistentEnd = this.base;
    this.#scratchTop = this.base;
    this.#highWater = this.base;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  get persistentBytes(): number {
    return this.#persistentEnd - this.base;
  }

  /** Highest address ever allocated (persistent + scratch). */
  get highWater(): number {
    return this.#highWater;
  }

  /** Allocates a buffer that lives as long as the module. Only allowed while no call is in progress. */
  allocPersistent(bytes: number, what: string): number {
    if (this.#scratchTop !== this.#persistentEnd) throw new Error("internal: persistent allocation during a call");
    const ptr = this.#persistentEnd;
    const end = alignUp(ptr + bytes);
    this.ensure(end, what);
    this.#persistentEnd = end;
    this.#scratchTop = end;
    return ptr;
  }

  /** Allocates call-scoped space; released by resetScratch(). */
  allocScratch(bytes: number, what: string): number {
    const ptr = this.#scratchTop;
    const end = alignUp(ptr + bytes);
    this.ensure(end, what);
    this.#scratchTop = end;
    return ptr;
  }

  /** Gives back the scratch allocation at `ptr` if nothing was allocated after it (a kernel's own temporary). */
  releaseScratch(ptr: number, bytes: number): void {
    if (ptr >= this.#persistentEnd && this.#scratchTop === alignUp(ptr + bytes)) this.#scratchTop = ptr;
  }

  resetScratch(): void {
    this.#scratchTop = this.#persistentEnd;
  }

  /** Makes sure addresses below `end` exist, growing the memory (at least 1/8 of its size at a time). */
  ensure(end: number, what: string): void {
    if (end > this.#highWater) this.#highWater = end;
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const curPages = have / PAGE_BYTES;
    const needPages = Math.ceil(end / PAGE_BYTES);
    if (needPages > this.#maxPages) {
      throw new KilnError(`out of memory: ${what} needs ${end} bytes of linear memory, more than the ${this.#maxPages * PAGE_BYTES} bytes wasm allows`, { code: "out_of_memory" });
    }
    const want = Math.min(this.#maxPages, Math.max(needPages, curPages + Math.ceil(curPages / 8)));
    try {
      this.memory.grow(want - curPages);
    } catch {
      try {
        this.memory.grow(needPages - curPages);
      } catch (e) {
        throw new KilnError(`out of memory: ${what} needs ${end} bytes of linear memory and the memory could not grow (${(e as Error).message})`, { code: "out_of_memory", cause: e });
      }
    }
  }

  /** A fresh view of `length` elements at `ptr` (views go stale when the memory grows: never keep one). */
  view<D extends DType>(dtype: D, ptr: number, length: number): TypedArrayFor[D] {
    return typedView(dtype, this.memory.buffer, ptr, length);
  }

  /** A copy of `length` elements at `ptr`. */
  read<D extends DType>(dtype: D, ptr: number, length: number): TypedArrayFor[D] {
    return this.view(dtype, ptr, length).slice() as TypedArrayFor[D];
  }

  /** Copies a typed array's bytes to `ptr`. */
  write(ptr: number, data: ArrayBufferView): void {
    new Uint8Array(this.memory.buffer, ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Fills `length` elements of dtype at ptr with the element bit pattern `value` (already encoded). */
  fill(dtype: DType, ptr: number, length: number, value: number): void {
    if (length > 0) this.view(dtype, ptr, length).fill(value);
  }

  bytesFor(dtype: DType, length: number): number {
    return dtypeBytes(dtype) * length;
  }
}
