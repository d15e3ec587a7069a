// WebGPU runtime, results: a GpuTensor is a tensor that lives in GPU memory. Calls on a WebGPU module return
// them without waiting for the GPU; `await t.read()` copies one back as a Tensor, and passing it to another call
// of the same module keeps it on the GPU. dispose() returns its memory to the module's pool.

import { KilnError } from "../errors.js";
import type { DType, TypedArrayFor } from "../dtype.js";
import { Tensor } from "../tensor.js";

/** What a GpuTensor needs from the module that made it (implemented by the executor; no WebGPU types here). */
export interface GpuTensorStorage {
  /** The elements, once every command that writes them has finished (rejects with a KilnError on GPU errors). */
  read(): Promise<ArrayLike<number>>;
  /** Returns the memory to the pool; later reads fail. */
  release(): void;
  /** The module (and device) the tensor belongs to. */
  readonly owner: object;
}

/** Marks GpuTensors of every copy of the runtime, as TENSOR_BRAND does Tensors. */
export const GPU_TENSOR_BRAND: unique symbol = Symbol.for("kiln.gpuTensor");

export class GpuTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: number[];
  #storage: GpuTensorStorage | null;

  /** By brand, not prototype chain, so a GpuTensor is one whichever runtime copy made it. */
  static [Symbol.hasInstance](x: unknown): x is GpuTensor {
    return this === GpuTensor
      ? typeof x === "object" && x !== null && (x as { [GPU_TENSOR_BRAND]?: unknown })[GPU_TENSOR_BRAND] === true
      : Function.prototype[Symbol.hasInstance].call(this, x);
  }

  get [GPU_TENSOR_BRAND](): true {
    return true;
  }

  /** Made by WebGPU module calls. */
  constructor(dtype: D, shape: readonly number[], storage: GpuTensorStorage) {
    this.dtype = dtype;
    this.shape = [...shape];
    this.#storage = storage;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  /** The storage, for the module that owns it (a KilnError once disposed). */
  storage(what: string): GpuTensorStorage {
    if (!this.#storage) throw new KilnError(`${what}: the GpuTensor (${this.dtype}[${this.shape.join(", ")}]) has been disposed`, { code: "disposed" });
    return this.#storage;
  }

  /** Waits for the GPU and copies the elements back. Includes the GPU time of the call that made it. */
  async read(): Promise<Tensor<D>> {
    const data = await this.storage("GpuTensor.read").read();
    return new Tensor(this.dtype, this.shape, data as TypedArrayFor[D]);
  }

  /** Frees the GPU memory now (otherwise it is reclaimed when the module is disposed). */
  dispose(): void {
    this.#storage?.release();
    this.#storage = null;
  }

  toString(): string {
    return `GpuTensor(dtype=${this.dtype}, shape=[${this.shape.join(", ")}]${this.disposed ? ", disposed" : ""})`;
  }
}
