// safetensors: a golden file hand-built per the spec (load and byte-exact save), round trips of every dtype,
// metadata, and rejection of malformed files with the file and tensor named.

import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../../runtime/tensor.js";
import { loadSafetensors, parseSafetensors, saveSafetensors, serializeSafetensors } from "../../runtime/safetensors.js";
import { expectKilnError } from "./helpers.js";

/** A safetensors file from its parts, per the spec: u64 LE header length, JSON padded with spaces to 8, data. */
function stFile(json: string, data: number[], pad = true): Uint8Array {
  const text = pad ? json + " ".repeat((8 - (json.length % 8)) % 8) : json;
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(new TextEncoder().encode(text), 8);
  out.set(data, 8 + text.length);
  return out;
}

const F32_1_2 = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]; // 1.0f, 2.0f little-endian

describe("safetensors golden file", () => {
  const golden = stFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_1_2);

  test("the hand-built bytes are what the spec says", () => {
    expect(Array.from(golden.subarray(0, 8))).toEqual([56, 0, 0, 0, 0, 0, 0, 0]); // 54 JSON bytes + 2 spaces
    expect(golden.length).toBe(8 + 56 + 8);
  });

  test("loads", () => {
    const { tensors, metadata } = parseSafetensors(golden);
    expect(Object.keys(tensors)).toEqual(["x"]);
    expect([tensors.x!.dtype, tensors.x!.shape, tensors.x!.toArray()]).toEqual(["f32", [2], [1, 2]]);
    expect(metadata).toEqual({});
  });

  test("saves byte for byte", () => {
    expect(Array.from(serializeSafetensors({ x: new Tensor("f32", [2], [1, 2]) }))).toEqual(Array.from(golden));
  });

  test("an empty file and a metadata-only file", () => {
    expect(Array.from(serializeSafetensors({}))).toEqual(Array.from(stFile("{}", [])));
    expect(Array.from(serializeSafetensors({})).slice(0, 8)).toEqual([8, 0, 0, 0, 0, 0, 0, 0]);
    const meta = serializeSafetensors({}, { framework: "pt" });
    expect(Array.from(meta)).toEqual(Array.from(stFile('{"__metadata__":{"framework":"pt"}}', [])));
    expect(meta.length).toBe(8 + 40);
  });

  test("metadata comes first in the header", () => {
    const bytes = serializeSafetensors({ x: new Tensor("f32", [2], [1, 2]) }, { format: "pt" });
    const want = stFile('{"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32_1_2);
    expect(Array.from(bytes)).toEqual(Array.from(want));
    expect(parseSafetensors(bytes).metadata).toEqual({ format: "pt" });
  });
});

describe("safetensors round trips", () => {
  test("every dtype, scalars and empty tensors, via a file", async () => {
    const tensors = {
      w: new Tensor("f32", [2, 3], [1, -2, 3.5, 4, 5, 6]),
      h: new Tensor("f16", [2], Uint16Array.from([0x3c00, 0xc000])),
      bh: new Tensor("bf16", [1], Uint16Array.from([0x3f80])),
      d: new Tensor("f64", [], [Math.E]),
      i: new Tensor("i32", [3], [-1, 0, 2147483647]),
      s: new Tensor("i8", [2], [-128, 127]),
      u: new Tensor("u8", [0, 4]),
      b: new Tensor("bool", [3], [1, 0, 1]),
    };
    const path = join(mkdtempSync(join(tmpdir(), "kiln-st-")), "m.safetensors");
    await saveSafetensors(path, tensors, { step: "10" });
    const back = await loadSafetensors(path);
    expect(back.metadata).toEqual({ step: "10" });
    for (const [k, t] of Object.entries(tensors)) {
      const g = back.tensors[k]!;
      expect([g.dtype, g.shape, Array.from(g.data)]).toEqual([t.dtype, t.shape, Array.from(t.data)]);
    }
    // The reference writer's order (dtype descending: F64 F32 I32 BF16 F16 I8 U8 BOOL, then name): aligned data.
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    expect(Object.keys(header)).toEqual(["__metadata__", "d", "w", "i", "bh", "h", "s", "u", "b"]);
    for (const k of Object.keys(tensors)) expect(header[k].data_offsets[0] % (k === "d" ? 8 : 1)).toBe(0);
  });
});

describe("safetensors validation", () => {
  const entry = (name: string, dtype: string, shape: number[], offs: [number, number]) => `"${name}":{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${offs}]}`;

  test("header length beyond the file", () => {
    const f = stFile("{}", []);
    new DataView(f.buffer).setBigUint64(0, 1000n, true);
    expectKilnError(() => parseSafetensors(f, { name: "big.st" }), /safetensors file big\.st: header length 1000 runs past the end of the file/);
    expectKilnError(() => parseSafetensors(new Uint8Array(5), { name: "tiny.st" }), /tiny\.st: too short/);
  });

  test("unknown dtype, bad offsets, overlaps, holes: file and tensor named", () => {
    const cases: Array<[string, number[], RegExp]> = [
      [`{${entry("a", "I64", [1], [0, 8])}}`, Array(8).fill(0), /f\.st: tensor "a": unknown or unsupported dtype "I64"/],
      [`{${entry("a", "F32", [2], [0, 12])}}`, Array(8).fill(0), /tensor "a": data_offsets \[0, 12\] run past the end of the data section \(8 bytes\)/],
      [`{${entry("a", "F32", [3], [0, 8])}}`, Array(8).fill(0), /tensor "a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/],
      [`{${entry("a", "F32", [2], [0, 8])},${entry("b", "F32", [1], [4, 8])}}`, Array(8).fill(0), /tensor "b": data_offsets \[4, 8\] overlap tensor "a"/],
      [`{${entry("a", "F32", [1], [4, 8])}}`, Array(8).fill(0), /tensor "a": data_offsets start at 4, leaving a hole after offset 0/],
      [`{${entry("a", "F32", [1], [0, 4])}}`, Array(8).fill(0), /4 bytes of data follow the last tensor/],
      [`{"a":{"dtype":"F32","shape":[1]}}`, Array(4).fill(0), /tensor "a": bad data_offsets undefined/],
      [`{"a":`, [], /header \(offsets 8 to \d+\) is not valid JSON/],
      [`{"__metadata__":{"k":1}}`, [], /__metadata__ is not a map of strings to strings/],
    ];
    for (const [json, data, re] of cases) {
      const err = expectKilnError(() => parseSafetensors(stFile(json, data), { name: "f.st" }), /f\.st/, re);
      if (/tensor "/.test(err.message)) expect(err.tensor).toMatch(/^[ab]$/);
    }
  });

  test("save rejects non-tensors and reserved names", () => {
    expectKilnError(() => serializeSafetensors({ __metadata__: new Tensor("f32", [1]) }), /"__metadata__" cannot name a tensor/);
    expectKilnError(() => serializeSafetensors({ a: [1, 2] as unknown as Tensor }), /"a" is not a Tensor/);
  });
});
