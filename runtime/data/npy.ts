// .npy reader (numpy's array file): "\x93NUMPY", version, a little-endian header length (u16 in v1, u32 in v2/v3),
// a Python-dict header (descr, fortran_order, shape), then the C-order elements. Little-endian dtypes only.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { DType } from "../dtype.js";
import { readMaybeGzip, type Source, type SourceOptions } from "./source.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

// numpy descr -> Kiln dtype. <i8 (numpy's default int) narrows to i32, checked element by element.
const DESCRS: Record<string, { dtype: DType; bytes: number }> = {
  "<f4": { dtype: "f32", bytes: 4 },
  "<f8": { dtype: "f64", bytes: 8 },
  "<f2": { dtype: "f16", bytes: 2 },
  "<i4": { dtype: "i32", bytes: 4 },
  "<i8": { dtype: "i32", bytes: 8 },
  "|u1": { dtype: "u8", bytes: 1 },
  "|i1": { dtype: "i8", bytes: 1 },
  "|b1": { dtype: "bool", bytes: 1 },
};

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/** Reads a .npy file (optionally gzip-compressed) into a Tensor. */
export async function readNpy(src: Source, opts: SourceOptions = {}): Promise<Tensor> {
  const { bytes, name } = await readMaybeGzip(src, opts);
  return parseNpy(bytes, { name });
}

/** Parses .npy bytes. */
export function parseNpy(bytes: Uint8Array, opts: SourceOptions = {}): Tensor {
  const name = opts.name ?? "<bytes>";
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw npyError(name, `does not start with the .npy magic "\\x93NUMPY" (offset 0)`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major < 1 || major > 3) throw npyError(name, `has unsupported format version ${major}.${bytes[7]} (offset 6); versions 1-3 are supported`);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw npyError(name, `is truncated in its preamble (ends at offset ${bytes.length})`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) {
    throw npyError(name, `is truncated: its header runs to offset ${dataStart} but the file has ${bytes.length} bytes`);
  }
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(8 + lenBytes, dataStart));
  const header = parseHeader(text, name);
  const type = DESCRS[header.descr];
  if (header.descr.startsWith(">")) throw npyError(name, `has big-endian dtype ${header.descr}; only little-endian data is supported`, header.descr);
  if (type === undefined) {
    throw npyError(name, `has unsupported dtype ${header.descr} (supported: ${Object.keys(DESCRS).join(" ")})`, header.descr);
  }
  if (header.fortranOrder) throw npyError(name, `is in Fortran order (fortran_order: True, dtype ${header.descr}); save it C-ordered (np.ascontiguousarray)`, header.descr);
  const count = header.shape.reduce((a, b) => a * b, 1);
  const end = dataStart + count * type.bytes;
  if (bytes.length < end) {
    throw npyError(name, `is truncated: shape (${header.shape.join(", ")}) of ${header.descr} needs data up to offset ${end} but the file ends at offset ${bytes.length}`, header.descr);
  }
  if (bytes.length > end) throw npyError(name, `has ${bytes.length - end} trailing bytes after offset ${end}`, header.descr);
  return new Tensor(type.dtype, header.shape, decode(bytes, view, dataStart, count, header.descr, name));
}

function decode(bytes: Uint8Array, view: DataView, off: number, n: number, descr: string, name: string) {
  const type = DESCRS[descr]!;
  const out = new Tensor(type.dtype, [n]).data;
  if (descr === "<i8") {
    for (let i = 0; i < n; i++) {
      const v = view.getBigInt64(off + 8 * i, true);
      if (v < -2147483648n || v > 2147483647n) {
        throw npyError(name, `element ${i} (offset ${off + 8 * i}) is ${v}, outside the i32 range that <i8 data is narrowed to`, descr);
      }
      out[i] = Number(v);
    }
    return out;
  }
  if (descr === "|b1") {
    for (let i = 0; i < n; i++) out[i] = bytes[off + i] ? 1 : 0;
    return out;
  }
  // Byte copy into the fresh (aligned) array: the host is little-endian on every platform Kiln targets.
  new Uint8Array(out.buffer, 0, n * type.bytes).set(bytes.subarray(off, off + n * type.bytes));
  return out;
}

/** Parses the header dict: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`. */
function parseHeader(text: string, name: string): NpyHeader {
  // The regexes below read the first occurrence of a key; a header naming one twice is ambiguous, not valid.
  for (const key of ["descr", "fortran_order", "shape"]) {
    const n = text.match(new RegExp(`['"]${key}['"]\\s*:`, "g"))?.length ?? 0;
    if (n > 1) throw npyError(name, `has a malformed header: the key '${key}' appears ${n} times`);
  }
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined || !text.trimStart().startsWith("{")) {
    throw npyError(name, `has a malformed header (offset 10): ${JSON.stringify(text.trim().slice(0, 120))}`);
  }
  const parts = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const shape = parts.map((p) => (/^\d+L?$/.test(p) ? parseInt(p, 10) : NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw npyError(name, `has a malformed shape (${shapeText}) in its header`, descr);
  return { descr, fortranOrder: fortran === "True", shape };
}

function npyError(name: string, what: string, descr?: string): KilnError {
  return new KilnError(`.npy file ${name} ${what}`, { code: "load_failed", tensor: name, ...(descr ? { actual: descr } : {}) });
}
