// safetensors save/load: an 8-byte little-endian header length N, N bytes of JSON (space-padded to a multiple of
// 8) mapping names to {dtype, shape, data_offsets} plus an optional "__metadata__" string map, then the data.

import { KilnError } from "./errors.js";
import { isTensor, Tensor } from "./tensor.js";
import { allocTypedArray, dtypeBytes, type DType } from "./dtype.js";
import { isNode } from "./io.js";
import { sourceBytes, sourceName, type Source, type SourceOptions } from "./data/source.js";

const TO_ST: Record<DType, string> = { f32: "F32", f16: "F16", bf16: "BF16", f64: "F64", i32: "I32", i8: "I8", u8: "U8", bool: "BOOL" };
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
// The reference implementation's dtype order (increasing alignment); files list tensors by it, descending, then by
// name, so every tensor's data is aligned to its element size and our bytes match the reference writer's.
const ST_RANK: Record<DType, number> = { bool: 0, u8: 1, i8: 2, f16: 3, bf16: 4, i32: 5, f32: 6, f64: 7 };

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

/**
 * The bytes of a safetensors file. Data is laid out by descending dtype (see ST_RANK), then name, the header
 * listing tensors in that same order after `__metadata__`.
 */
export function serializeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors);
  for (const n of names) {
    if (n === "__metadata__") throw new KilnError(`safetensors: "__metadata__" cannot name a tensor`, { code: "bad_option", tensor: n });
    if (!isTensor(tensors[n])) throw new KilnError(`safetensors: "${n}" is not a Tensor`, { code: "bad_option", tensor: n });
  }
  names.sort((a, b) => ST_RANK[tensors[b]!.dtype] - ST_RANK[tensors[a]!.dtype] || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = checkMetadata(metadata);
  let offset = 0;
  for (const n of names) {
    const t = tensors[n]!;
    header[n] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const n of names) {
    const d = tensors[n]!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** Parses safetensors bytes (validated: header bounds, dtypes, shapes, offsets). Tensors are copies. */
export function parseSafetensors(bytes: Uint8Array, opts: SourceOptions = {}): SafetensorsFile {
  const name = opts.name ?? "<bytes>";
  if (bytes.length < 8) throw stError(name, `too short (${bytes.length} bytes) for the 8-byte header length at offset 0`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) throw stError(name, `header length ${n} runs past the end of the file (${bytes.length - 8} bytes follow offset 8)`);
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch (e) {
    throw stError(name, `header (offsets 8 to ${headerEnd}) is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw stError(name, "header is not a JSON object (offset 8)");
  const data = bytes.subarray(headerEnd);
  const metadata = readMetadata((header as Record<string, unknown>).__metadata__, name);
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__").map(([k, v]) => readEntry(k, v, name, data.length));
  checkLayout(entries, name, data.length);
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const arr = allocTypedArray(e.dtype, e.count);
    new Uint8Array(arr.buffer).set(data.subarray(e.begin, e.end));
    tensors[e.name] = new Tensor(e.dtype, e.shape, arr);
  }
  return { tensors, metadata };
}

/** Loads a safetensors file from a path/URL or bytes. */
export async function loadSafetensors(src: Source, opts: SourceOptions = {}): Promise<SafetensorsFile> {
  return parseSafetensors(await sourceBytes(src), { name: sourceName(src, opts) });
}

/** A parsed file, from a path/URL, bytes, or a file already parsed (the loaders of weights and checkpoints). */
export async function safetensorsFileOf(src: Source | SafetensorsFile): Promise<SafetensorsFile> {
  if (src instanceof Uint8Array) return parseSafetensors(src);
  if (typeof src === "object" && src !== null && "tensors" in src && "metadata" in src) return src as SafetensorsFile;
  return loadSafetensors(src as Source);
}

/** Writes a safetensors file (Node only). */
export async function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  if (!isNode()) throw new KilnError("saveSafetensors: writing files needs Node; use serializeSafetensors for the bytes", { code: "bad_option" });
  const fs = (await nodeImport("node:fs/promises")) as typeof import("node:fs/promises");
  await fs.writeFile(path, serializeSafetensors(tensors, metadata));
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

function readEntry(name: string, v: unknown, file: string, dataLen: number): Entry {
  const bad = (what: string) => stError(file, `tensor "${name}": ${what}`, name);
  if (typeof v !== "object" || v === null) throw bad("header entry is not an object");
  const { dtype, shape, data_offsets: offs } = v as Record<string, unknown>;
  const d = typeof dtype === "string" ? FROM_ST[dtype] : undefined;
  if (d === undefined) throw bad(`unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.values(TO_ST).join(" ")})`);
  if (!Array.isArray(shape) || !shape.every((x) => Number.isSafeInteger(x) && x >= 0)) throw bad(`bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((x) => Number.isSafeInteger(x) && x >= 0) || offs[0] > offs[1]) {
    throw bad(`bad data_offsets ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as [number, number];
  if (end > dataLen) throw bad(`data_offsets [${begin}, ${end}] run past the end of the data section (${dataLen} bytes)`);
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  if (end - begin !== count * dtypeBytes(d)) {
    throw bad(`shape [${shape.join(", ")}] of ${dtype} needs ${count * dtypeBytes(d)} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype: d, shape: shape as number[], count, begin, end };
}

// The spec requires the tensors to tile the data section exactly: no overlaps, no holes.
function checkLayout(entries: Entry[], file: string, dataLen: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.begin < at) {
      throw stError(file, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap tensor "${sorted[i - 1]!.name}" (which ends at ${at})`, e.name);
    }
    if (e.begin > at) throw stError(file, `tensor "${e.name}": data_offsets start at ${e.begin}, leaving a hole after offset ${at}`, e.name);
    at = e.end;
  }
  if (at !== dataLen) throw stError(file, `${dataLen - at} bytes of data follow the last tensor (data offset ${at})`);
}

function readMetadata(m: unknown, file: string): Record<string, string> {
  if (m === undefined) return {};
  if (typeof m !== "object" || m === null || Array.isArray(m) || !Object.values(m).every((v) => typeof v === "string")) {
    throw stError(file, "__metadata__ is not a map of strings to strings");
  }
  return { ...(m as Record<string, string>) };
}

function checkMetadata(m: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string") throw new KilnError(`safetensors: metadata "${k}" must be a string, got ${typeof v}`, { code: "bad_option" });
  }
  return m;
}

function stError(file: string, what: string, tensor?: string): KilnError {
  return new KilnError(`safetensors file ${file}: ${what}`, { code: "load_failed", ...(tensor ? { tensor } : {}) });
}
