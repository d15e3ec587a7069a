// Load-time integrity of a generated module: the compiler writes a digest of the manifest and of each kernel
// file into the manifest (`integrity`), and the loaders check them, so a manifest edited by hand (a step removed
// or reordered, a matmul size changed, an init rule altered) or a wasm from another build is a KilnError naming
// the file instead of a module that runs garbage. The digest detects damage and mix-ups; it is not a signature.

import { KilnError } from "./errors.js";
import type { Integrity, Manifest } from "./manifest.js";

export type { Integrity } from "./manifest.js";


/** A 64-bit digest (two multiply-xorshift lanes over the bytes, cyrb53's mixing), as 16 hex digits. */
export function digestBytes(bytes: Uint8Array): string {
  let h1 = 0xdeadbeef ^ bytes.length, h2 = 0x41c6ce57 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    h1 = Math.imul(h1 ^ b, 2654435761);
    h2 = Math.imul(h2 ^ b, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 >>> 0).toString(16).padStart(8, "0") + (h1 >>> 0).toString(16).padStart(8, "0");
}

export function digestText(text: string): string {
  return digestBytes(new TextEncoder().encode(text));
}

/** The digest of a manifest, whatever `integrity` it carries (key order as written: JSON.parse keeps it). */
export function manifestDigest(m: Manifest): string {
  return digestText(JSON.stringify({ ...m, integrity: undefined }));
}

/** The manifest with its `integrity` field filled in for the files written next to it. */
export function withIntegrity(m: Manifest, files: { wasm?: Uint8Array; wasmRelaxed?: Uint8Array; wgsl?: string }): Manifest {
  const kernels = {
    ...(files.wasm && files.wasm.length ? { wasm: digestBytes(files.wasm) } : {}),
    ...(files.wasmRelaxed ? { wasmRelaxed: digestBytes(files.wasmRelaxed) } : {}),
    ...(files.wgsl !== undefined ? { wgsl: digestText(files.wgsl) } : {}),
  };
  const bare = { ...m, integrity: undefined };
  return { ...bare, integrity: { manifest: manifestDigest(bare), ...kernels } };
}

/** Throws unless the manifest matches its own digest (a manifest without one, built in memory, passes). */
export function checkManifestIntegrity(m: Manifest): void {
  const want = m.integrity;
  if (want === undefined) return;
  if (typeof want !== "object" || want === null || typeof want.manifest !== "string") {
    throw new KilnError(`invalid module manifest: the integrity field is damaged`, { code: "bad_manifest" });
  }
  const got = manifestDigest(m);
  if (got !== want.manifest) {
    throw new KilnError(
      `the manifest of ${m.source || "this module"} was changed after it was compiled (digest ${got}, written ${want.manifest}): recompile it instead of editing it`,
      { code: "bad_manifest", expected: want.manifest, actual: got },
    );
  }
}

/** Throws unless `bytes` (or text) are the kernel file this manifest was compiled with. */
export function checkKernelIntegrity(m: Manifest, which: "wasm" | "wasmRelaxed" | "wgsl", data: Uint8Array | string): void {
  const want = m.integrity?.[which];
  if (want === undefined) return;
  const got = typeof data === "string" ? digestText(data) : digestBytes(data);
  if (got !== want) {
    const file = which === "wgsl" ? m.wgsl?.file : m[which];
    throw new KilnError(
      `${file || which} does not belong to the manifest of ${m.source || "this module"} (digest ${got}, the manifest expects ${want}): it is damaged or from another build; recompile and copy the files together`,
      { code: "load_failed", expected: want, actual: got },
    );
  }
}

/** The bytes of a BufferSource, or undefined for a compiled WebAssembly.Module (nothing left to check). */
export function bytesOf(src: unknown): Uint8Array | undefined {
  if (src instanceof Uint8Array) return src;
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  if (ArrayBuffer.isView(src)) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  return undefined;
}
