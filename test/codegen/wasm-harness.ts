// Test helpers for the wasm backend: build a module, run kernels on a fresh memory, compare with references.
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import type { NamedKernel } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";

export type Kernel = (...args: number[]) => void;

export type AnyArray = Float32Array | Int32Array | Uint8Array | Int8Array | Uint16Array | Float64Array;

export function arrayFor(d: DType, n: number | ArrayLike<number>): AnyArray {
  const C = ctorFor(d);
  return typeof n === "number" ? new C(n) : C.from(n);
}

function ctorFor(d: DType) {
  switch (d) {
    case "f32": return Float32Array;
    case "i32": return Int32Array;
    case "u8": case "bool": return Uint8Array;
    case "i8": return Int8Array;
    case "f16": case "bf16": return Uint16Array;
    case "f64": return Float64Array;
  }
}

/** An instantiated module with a bump allocator; allocations are 4- but deliberately not 16-byte aligned. */
export class Instance {
  private top = 1024;
  constructor(readonly mem: WebAssembly.Memory, readonly exports: Record<string, Kernel>) {}

  alloc(bytes: number): number {
    const p = Math.ceil(this.top / 16) * 16 + 4;
    this.top = p + bytes + 16;
    const need = Math.ceil(this.top / 65536) - this.mem.buffer.byteLength / 65536;
    if (need > 0) this.mem.grow(need);
    return p;
  }

  reset(): void { this.top = 1024; }

  /** Writes a typed array to fresh memory and returns its address. */
  put(a: AnyArray): number {
    const p = this.alloc(a.byteLength);
    new Uint8Array(this.mem.buffer, p, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return p;
  }

  /** Fresh output buffer filled with a 0xAB guard pattern (so unwritten elements show up). */
  out(d: DType, n: number, guard = 16): number {
    const bytes = arrayFor(d, 0).BYTES_PER_ELEMENT * n;
    const p = this.alloc(bytes + guard);
    new Uint8Array(this.mem.buffer, p, bytes + guard).fill(0xab);
    return p;
  }

  read(d: DType, p: number, n: number): AnyArray {
    const C = ctorFor(d);
    return new C(this.mem.buffer.slice(p, p + n * C.BYTES_PER_ELEMENT));
  }

  bytes(p: number, n: number): Uint8Array {
    return new Uint8Array(this.mem.buffer, p, n).slice();
  }

  run(name: string, ...args: number[]): void {
    const f = this.exports[name];
    if (!f) throw new Error(`no export ${name}`);
    f(...args);
  }
}

export async function instantiate(kernels: NamedKernel[], opts?: { optimize?: boolean }): Promise<Instance> {
  const { binary } = await buildWasmModule(kernels, opts);
  const mem = new WebAssembly.Memory({ initial: 16 });
  const mod = await WebAssembly.compile(binary);
  const inst = await WebAssembly.instantiate(mod, { env: { memory: mem } });
  return new Instance(mem, inst.exports as unknown as Record<string, Kernel>);
}

export interface Tol {
  readonly abs?: number;
  readonly rel?: number;
}

/** Compares element by element; tolerance 0 means exact (Object.is, NaN equals NaN). Throws with examples. */
export function expectArray(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol = {}, label = "", inputs?: (i: number) => string): void {
  if (got.length !== want.length) throw new Error(`${label}: length ${got.length} != ${want.length}`);
  const bad: string[] = [];
  let nbad = 0;
  for (let i = 0; i < want.length; i++) {
    if (!close(got[i]!, want[i]!, tol)) {
      nbad++;
      if (bad.length < 6) bad.push(`  [${i}] got ${got[i]} want ${want[i]}${inputs ? ` for ${inputs(i)}` : ""}`);
    }
  }
  if (nbad > 0) throw new Error(`${label}: ${nbad} of ${want.length} mismatched\n${bad.join("\n")}`);
}

export function close(g: number, w: number, tol: Tol = {}): boolean {
  if (Number.isNaN(w) || Number.isNaN(g)) return Number.isNaN(w) && Number.isNaN(g);
  const a = tol.abs ?? 0;
  const r = tol.rel ?? 0;
  if (a === 0 && r === 0) return Object.is(g, w);
  if (!Number.isFinite(w) || !Number.isFinite(g)) return g === w;
  return Math.abs(g - w) <= a + r * Math.abs(w);
}

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SIZES = [0, 1, 3, 4, 5, 17, 255, 257];
