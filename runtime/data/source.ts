// Where reader input comes from: a path or URL (fs under Node, fetch elsewhere) or bytes already in memory,
// plus gzip decoding (node:zlib under Node, DecompressionStream in browsers) for .gz files.

import { KilnError } from "../errors.js";
import { isNode, readBytes } from "../io.js";

/** A file to read: a path or URL (Node), a URL (browser), or its bytes. */
export type Source = string | URL | Uint8Array | ArrayBuffer;

export interface SourceOptions {
  /** Name used in error messages when the source is bytes (default "<bytes>"). */
  name?: string;
}

// Hidden from bundlers, which would otherwise try to resolve the Node builtins for a browser build.
const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

/** The name a source goes by in error messages. */
export function sourceName(src: Source, opts: SourceOptions = {}): string {
  if (opts.name !== undefined) return opts.name;
  if (typeof src === "string") return src;
  if (src instanceof URL) return src.protocol === "file:" ? decodeURIComponent(src.pathname) : src.href;
  return "<bytes>";
}

/** The bytes of a source (not copied when already bytes). */
export async function sourceBytes(src: Source): Promise<Uint8Array> {
  if (src instanceof Uint8Array) return src;
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  return readBytes(src);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads a source and gunzips it when it starts with the gzip magic; `name` is for error messages. */
export async function readMaybeGzip(src: Source, opts: SourceOptions = {}): Promise<{ bytes: Uint8Array; name: string }> {
  const name = sourceName(src, opts);
  const raw = await sourceBytes(src);
  return { bytes: isGzip(raw) ? await gunzip(raw, name) : raw, name };
}

/** Decompresses gzip bytes; a truncated or corrupt stream is a KilnError naming the file and how far it got. */
export async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  if (isNode()) return gunzipNode(bytes, name);
  if (typeof DecompressionStream === "function") return gunzipStream(bytes, name);
  throw new KilnError(`${name}: gzip-compressed, and this platform has neither node:zlib nor DecompressionStream`, { code: "load_failed" });
}

async function gunzipNode(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const zlib = (await nodeImport("node:zlib")) as typeof import("node:zlib");
  try {
    return new Uint8Array(zlib.gunzipSync(bytes));
  } catch (e) {
    // Decode what can be decoded, to say where the stream broke off.
    let decoded = 0;
    try {
      decoded = zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).length;
    } catch {
      // the header itself is bad: nothing decodes
    }
    throw gzipError(name, bytes.length, decoded, e);
  }
}

/** The browser path (exported for tests: Node has DecompressionStream too). */
export async function gunzipStream(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let decoded = 0;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      decoded += value.length;
    }
  } catch (e) {
    throw gzipError(name, bytes.length, decoded, e);
  }
  const out = new Uint8Array(decoded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function gzipError(name: string, compressed: number, decoded: number, cause: unknown): KilnError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new KilnError(
    `${name}: gzip data is truncated or corrupt (${compressed} compressed bytes; it stops after decompressed offset ${decoded}): ${why}`,
    { code: "load_failed", cause },
  );
}
