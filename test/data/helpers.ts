// Test helpers for the data pipeline: hand-built file bytes per each format's spec (IDX, .npy) and small
// assertion helpers for KilnErrors.

import { expect } from "vitest";
import { KilnError } from "../../runtime/errors.js";

/** IDX bytes: magic (0, 0, type, rank), big-endian u32 dims, big-endian elements. */
export function idxBytes(type: number, dims: number[], values: number[]): Uint8Array {
  const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[type]!;
  const out = new Uint8Array(4 + 4 * dims.length + values.length * size);
  const v = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  const off = 4 + 4 * dims.length;
  values.forEach((x, i) => {
    if (type === 0x08) v.setUint8(off + i, x);
    else if (type === 0x09) v.setInt8(off + i, x);
    else if (type === 0x0b) v.setInt16(off + 2 * i, x, false);
    else if (type === 0x0c) v.setInt32(off + 4 * i, x, false);
    else if (type === 0x0d) v.setFloat32(off + 4 * i, x, false);
    else v.setFloat64(off + 8 * i, x, false);
  });
  return out;
}

/** .npy bytes per the format spec: magic, version, LE header length, dict padded with spaces + "\n" to 64 bytes. */
export function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const lenBytes = version === 1 ? 2 : 4;
  const pre = 8 + lenBytes;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  const text = header + " ".repeat(total - pre - header.length - 1) + "\n";
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, text.length, true);
  else v.setUint32(8, text.length, true);
  out.set(new TextEncoder().encode(text), pre);
  out.set(data, total);
  return out;
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts fn throws a KilnError whose message matches every pattern. */
export function expectKilnError(fn: () => unknown, ...patterns: RegExp[]): KilnError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KilnError);
  for (const p of patterns) expect((err as Error).message).toMatch(p);
  return err as KilnError;
}

export async function expectKilnErrorAsync(p: Promise<unknown>, ...patterns: RegExp[]): Promise<KilnError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KilnError);
  for (const pat of patterns) expect((err as Error).message).toMatch(pat);
  return err as KilnError;
}
