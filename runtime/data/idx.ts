// IDX reader (the MNIST file format): a 4-byte magic (0, 0, element type, rank), big-endian u32 dims, then the
// elements in row-major order, big-endian. gzip-compressed files are decoded first.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { DType } from "../dtype.js";
import { readMaybeGzip, isGzip, type Source, type SourceOptions } from "./source.js";

/** MNIST's magic numbers: u8 images of rank 3, u8 labels of rank 1. */
export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

export interface IdxOptions extends SourceOptions {
  /** Reject any other magic number (e.g. IDX_IMAGES_MAGIC). */
  expectMagic?: number;
}

// IDX element type code -> Kiln dtype and element size. i16 has no Kiln dtype: it widens to i32.
const IDX_TYPES: Record<number, { dtype: DType; bytes: number; name: string }> = {
  0x08: { dtype: "u8", bytes: 1, name: "unsigned byte" },
  0x09: { dtype: "i8", bytes: 1, name: "signed byte" },
  0x0b: { dtype: "i32", bytes: 2, name: "short" },
  0x0c: { dtype: "i32", bytes: 4, name: "int" },
  0x0d: { dtype: "f32", bytes: 4, name: "float" },
  0x0e: { dtype: "f64", bytes: 8, name: "double" },
};

/** Reads an IDX file (raw or gzip-compressed) into a Tensor of its dims. */
export async function readIdx(src: Source, opts: IdxOptions = {}): Promise<Tensor> {
  const { bytes, name } = await readMaybeGzip(src, opts);
  return parseIdx(bytes, { ...opts, name });
}

/** Parses raw (not gzip) IDX bytes. */
export function parseIdx(bytes: Uint8Array, opts: IdxOptions = {}): Tensor {
  const name = opts.name ?? "<bytes>";
  if (isGzip(bytes)) throw idxError(name, 0, "is gzip-compressed: use readIdx, which decompresses");
  if (bytes.length < 4) throw idxError(name, bytes.length, `is truncated: the 4-byte magic number ends at offset 4 but the file has ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = IDX_TYPES[bytes[2]!];
  if (bytes[0] !== 0 || bytes[1] !== 0 || type === undefined || (opts.expectMagic !== undefined && magic !== opts.expectMagic)) {
    const want = opts.expectMagic !== undefined ? `${opts.expectMagic}` : "0x0000TTRR (type 08/09/0B/0C/0D/0E, rank RR)";
    throw idxError(name, 0, `has a bad magic number ${magic} (0x${magic.toString(16).padStart(8, "0")}) at offset 0; expected ${want}`);
  }
  const rank = bytes[3]!;
  const headerEnd = 4 + 4 * rank;
  if (bytes.length < headerEnd) {
    throw idxError(name, bytes.length, `is truncated in its header: ${rank} dims need ${headerEnd} bytes, the file ends at offset ${bytes.length}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const end = headerEnd + count * type.bytes;
  if (bytes.length !== end) {
    const what = bytes.length < end ? `is truncated: the data ends at offset ${bytes.length}` : `has ${bytes.length - end} trailing bytes starting at offset ${end}`;
    throw idxError(name, Math.min(bytes.length, end), `${what}; dims [${dims.join(", ")}] of ${type.name} need exactly ${end} bytes`);
  }
  return new Tensor(type.dtype, dims, decode(view, headerEnd, count, bytes[2]!, type.dtype));
}

function decode(view: DataView, off: number, n: number, code: number, dtype: DType) {
  const out = new Tensor(dtype, [n]).data;
  // Byte types: a typed-array set converts 0..255 to the target type (wrapping for i8).
  if (code === 0x08 || code === 0x09) {
    out.set(new Uint8Array(view.buffer, view.byteOffset + off, n));
    return out;
  }
  const get =
    code === 0x0b ? (i: number) => view.getInt16(off + 2 * i, false)
    : code === 0x0c ? (i: number) => view.getInt32(off + 4 * i, false)
    : code === 0x0d ? (i: number) => view.getFloat32(off + 4 * i, false)
    : (i: number) => view.getFloat64(off + 8 * i, false);
  for (let i = 0; i < n; i++) out[i] = get(i);
  return out;
}

function idxError(name: string, offset: number, what: string): KilnError {
  return new KilnError(`IDX file ${name} ${what} (offset ${offset})`, { code: "load_failed", tensor: name });
}
