// Wasm backend: instantiates the kernels with a runtime-owned memory (env.memory, or whatever memory import the
// module declares) and reads the few facts the runtime needs from the binary. Browser-safe.

import { KilnError } from "../errors.js";
import { LinearMemory, PAGE_BYTES } from "./memory.js";

export type KernelFn = (...args: number[]) => unknown;

export interface WasmKernels {
  module: WebAssembly.Module;
  instance: WebAssembly.Instance;
  memory: LinearMemory;
  kernels: Map<string, KernelFn>;
}

interface MemoryImportInfo {
  min: number;
  max?: number;
  shared: boolean;
}

interface BinaryInfo {
  memoryImport?: MemoryImportInfo;
  /** End of the highest active data segment with a constant offset (0 if none). */
  dataEnd: number;
}

/**
 * Instantiates the kernels. Function imports from module "Math" (e.g. ("Math", "exp")) are bound to the JS Math
 * functions; any other import except the memory is an error.
 */
export async function instantiateKernels(wasm: BufferSource | WebAssembly.Module): Promise<WasmKernels> {
  let module: WebAssembly.Module;
  let info: BinaryInfo | undefined;
  try {
    if (wasm instanceof WebAssembly.Module) module = wasm;
    else {
      const bytes = toBytes(wasm);
      info = inspectBinary(bytes);
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    }
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError(`could not compile the kernels wasm: ${(e as Error).message}`, { code: "bad_wasm", cause: e });
  }

  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  const unknown: string[] = [];
  let memImport: { module: string; name: string } | undefined;
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind === "memory") {
      memImport = { module: imp.module, name: imp.name };
    } else if (imp.kind === "function" && imp.module === "Math" && typeof (Math as unknown as Record<string, unknown>)[imp.name] === "function") {
      (imports[imp.module] ??= {})[imp.name] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[imp.name]!;
    } else {
      unknown.push(`${imp.module}.${imp.name} (${imp.kind})`);
    }
  }
  if (unknown.length) {
    throw new KilnError(`the kernels wasm imports what the runtime does not provide: ${unknown.join(", ")}`, { code: "bad_wasm" });
  }

  let instance: WebAssembly.Instance;
  let wasmMemory: WebAssembly.Memory;
  let maxPages: number | undefined;
  if (memImport) {
    const mi = info?.memoryImport ?? { min: 1, shared: false };
    maxPages = mi.max;
    const desc: WebAssembly.MemoryDescriptor = { initial: Math.max(mi.min, 1) };
    if (mi.max !== undefined) desc.maximum = mi.max;
    if (mi.shared) (desc as { shared?: boolean }).shared = true;
    wasmMemory = new WebAssembly.Memory(desc);
    (imports[memImport.module] ??= {})[memImport.name] = wasmMemory;
    instance = await instantiateGrowing(module, imports, wasmMemory, info === undefined);
  } else {
    instance = await instantiate(module, imports);
    const exported = Object.values(instance.exports).find((v) => v instanceof WebAssembly.Memory);
    if (!exported) throw new KilnError("the kernels wasm neither imports nor exports a memory", { code: "bad_wasm" });
    wasmMemory = exported as WebAssembly.Memory;
  }

  const heapBase = instance.exports["__heap_base"];
  const heapBaseValue = heapBase instanceof WebAssembly.Global ? Number(heapBase.value) : 0;
  const base = Math.max(info?.dataEnd ?? 0, heapBaseValue);
  const memory = new LinearMemory(wasmMemory, base, maxPages);

  const kernels = new Map<string, KernelFn>();
  for (const [name, v] of Object.entries(instance.exports)) if (typeof v === "function") kernels.set(name, v as KernelFn);
  return { module, instance, memory, kernels };
}

// (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);
let relaxedSupport: boolean | undefined;

/**
 * Whether this engine runs relaxed SIMD (f32x4.relaxed_madd): current browsers and Node 22+ do; Node 20 only
 * with --experimental-wasm-relaxed-simd. Decides which of a module's two kernel binaries to load.
 */
export function relaxedSimdSupported(): boolean {
  return (relaxedSupport ??= WebAssembly.validate(RELAXED_PROBE));
}

async function instantiate(module: WebAssembly.Module, imports: WebAssembly.Imports): Promise<WebAssembly.Instance> {
  try {
    return await WebAssembly.instantiate(module, imports);
  } catch (e) {
    throw new KilnError(`could not instantiate the kernels wasm: ${(e as Error).message}`, { code: "bad_wasm", cause: e });
  }
}

/** For a precompiled Module we cannot read the memory import's minimum: grow and retry on LinkError. */
async function instantiateGrowing(module: WebAssembly.Module, imports: WebAssembly.Imports, mem: WebAssembly.Memory, retry: boolean): Promise<WebAssembly.Instance> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await WebAssembly.instantiate(module, imports);
    } catch (e) {
      const pages = mem.buffer.byteLength / PAGE_BYTES;
      if (!retry || !(e instanceof WebAssembly.LinkError) || attempt >= 16) {
        throw new KilnError(`could not instantiate the kernels wasm: ${(e as Error).message}`, { code: "bad_wasm", cause: e });
      }
      try {
        mem.grow(pages);
      } catch {
        throw new KilnError(`could not instantiate the kernels wasm: ${(e as Error).message}`, { code: "bad_wasm", cause: e });
      }
    }
  }
}

export function toBytes(src: BufferSource): Uint8Array {
  if (src instanceof Uint8Array) return src;
  if (ArrayBuffer.isView(src)) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (src instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && (src as unknown) instanceof SharedArrayBuffer)) {
    return new Uint8Array(src as ArrayBuffer);
  }
  throw new KilnError(`the kernels wasm must be an ArrayBuffer, a typed array or a WebAssembly.Module`, { code: "bad_wasm" });
}

/** Reads the memory import limits and the end of constant-offset data segments from a wasm binary. */
export function inspectBinary(bytes: Uint8Array): BinaryInfo {
  const info: BinaryInfo = { dataEnd: 0 };
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new KilnError("the kernels wasm is not a WebAssembly binary (bad magic number)", { code: "bad_wasm" });
  }
  let p = 8;
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      if (b === undefined) throw new Error("truncated");
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return result;
    }
  };
  const s32 = (): number => {
    let result = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[p++]!;
      if (b === undefined) throw new Error("truncated");
      result |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    if (shift < 32 && b & 0x40) result |= -1 << shift;
    return result;
  };
  const skipName = () => { const n = u32(); p += n; };
  const limits = (): MemoryImportInfo => {
    const flags = bytes[p++]!;
    const min = u32();
    const max = flags & 1 ? u32() : undefined;
    return max === undefined ? { min, shared: (flags & 2) !== 0 } : { min, max, shared: (flags & 2) !== 0 };
  };
  try {
    while (p < bytes.length) {
      const id = bytes[p++]!;
      const size = u32();
      const end = p + size;
      if (id === 2) {
        const count = u32();
        for (let i = 0; i < count; i++) {
          skipName();
          skipName();
          const kind = bytes[p++]!;
          if (kind === 0) u32();
          else if (kind === 1) { p++; limits(); }
          else if (kind === 2) info.memoryImport = limits();
          else if (kind === 3) p += 2;
          else if (kind === 4) { p++; u32(); }
          else break;
        }
      } else if (id === 11) {
        const count = u32();
        for (let i = 0; i < count; i++) {
          const flags = u32();
          let offset: number | undefined;
          if (flags === 0 || flags === 2) {
            if (flags === 2) u32();
            const op = bytes[p++]!;
            if (op === 0x41) offset = s32();
            else if (op === 0x23) u32();
            else break; // unusual constant expression: give up on this section
            if (bytes[p++] !== 0x0b) break;
          }
          const len = u32();
          if (offset !== undefined) info.dataEnd = Math.max(info.dataEnd, (offset >>> 0) + len);
          p += len;
        }
      }
      p = end;
    }
  } catch {
    // A malformed binary is reported by WebAssembly.compile with a better message.
  }
  return info;
}
