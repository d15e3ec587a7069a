// Readers against hand-made files (bytes built per the IDX, .npy and CSV specs): content, gzip, and corrupt files
// rejected with the file name and the offset / row / column.

import { describe, expect, test } from "vitest";
import { gzipSync } from "node:zlib";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseIdx, readIdx, parseNpy, readNpy, parseCsv, readCsv, IDX_IMAGES_MAGIC } from "../../runtime/data/index.js";
import { gunzipStream } from "../../runtime/data/source.js";
import { bytesOf, expectKilnError, expectKilnErrorAsync, idxBytes, npyBytes } from "./helpers.js";

describe("IDX", () => {
  test("u8 images (magic 2051) and labels (2049), big-endian dims", () => {
    const img = idxBytes(0x08, [2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    expect(new DataView(img.buffer).getUint32(0, false)).toBe(2051);
    const t = parseIdx(img, { name: "img.idx", expectMagic: IDX_IMAGES_MAGIC });
    expect([t.dtype, t.shape]).toEqual(["u8", [2, 2, 3]]);
    expect(t.toArray()).toEqual([[[0, 1, 2], [3, 4, 5]], [[250, 251, 252], [253, 254, 255]]]);
    const lab = parseIdx(idxBytes(0x08, [3], [7, 0, 9]));
    expect(new DataView(idxBytes(0x08, [3], [7, 0, 9]).buffer).getUint32(0, false)).toBe(2049);
    expect(lab.toArray()).toEqual([7, 0, 9]);
  });

  test("other element types decode big-endian", () => {
    expect(parseIdx(idxBytes(0x09, [3], [-1, 127, -128])).toArray()).toEqual([-1, 127, -128]);
    expect(parseIdx(idxBytes(0x0b, [2], [-300, 300])).toArray()).toEqual([-300, 300]);
    expect(parseIdx(idxBytes(0x0c, [2], [-70000, 123456789])).toArray()).toEqual([-70000, 123456789]);
    expect(parseIdx(idxBytes(0x0d, [2], [1.5, -2.25])).toArray()).toEqual([1.5, -2.25]);
    expect(parseIdx(idxBytes(0x0e, [1], [Math.PI])).toArray()).toEqual([Math.PI]);
  });

  test("gzip, from bytes and from a path", async () => {
    const raw = idxBytes(0x08, [2, 2], [1, 2, 3, 4]);
    expect((await readIdx(gzipSync(raw))).toArray()).toEqual([[1, 2], [3, 4]]);
    const dir = mkdtempSync(join(tmpdir(), "kiln-idx-"));
    writeFileSync(join(dir, "a.idx.gz"), gzipSync(raw));
    writeFileSync(join(dir, "b.idx"), raw);
    expect((await readIdx(join(dir, "a.idx.gz"))).toArray()).toEqual([[1, 2], [3, 4]]);
    expect((await readIdx(join(dir, "b.idx"))).shape).toEqual([2, 2]);
  });

  test("truncated, trailing and wrong-magic files name the file and offset", async () => {
    const ok = idxBytes(0x08, [2, 3], [1, 2, 3, 4, 5, 6]);
    expectKilnError(() => parseIdx(ok.subarray(0, 12), { name: "t.idx" }), /IDX file t\.idx is truncated: the data ends at offset 12.*need exactly 18 bytes/);
    expectKilnError(() => parseIdx(ok.subarray(0, 7), { name: "t.idx" }), /t\.idx is truncated in its header.*offset 7/);
    const extra = new Uint8Array(20);
    extra.set(ok);
    expectKilnError(() => parseIdx(extra, { name: "x.idx" }), /x\.idx has 2 trailing bytes starting at offset 18/);
    expectKilnError(() => parseIdx(ok, { name: "m.idx", expectMagic: 2049 }), /m\.idx has a bad magic number 2050 .*at offset 0; expected 2049/);
    expectKilnError(() => parseIdx(Uint8Array.from([1, 2, 3, 4, 5]), { name: "z.idx" }), /z\.idx has a bad magic number.*offset 0/);
    const gz = gzipSync(ok);
    await expectKilnErrorAsync(readIdx(gz.subarray(0, gz.length - 12), { name: "cut.gz" }), /cut\.gz: gzip data is truncated or corrupt/);
    const shortPayload = gzipSync(ok.subarray(0, 15));
    await expectKilnErrorAsync(readIdx(shortPayload, { name: "short.gz" }), /short\.gz is truncated: the data ends at offset 15/);
  });
});

describe("gzip without node:zlib (the browser path)", () => {
  test("DecompressionStream decodes, and reports a cut stream with the file name", async () => {
    const raw = idxBytes(0x08, [3, 5], Array.from({ length: 15 }, (_, i) => i * 17));
    const gz = gzipSync(raw);
    expect(Array.from(await gunzipStream(gz, "a.gz"))).toEqual(Array.from(raw));
    await expectKilnErrorAsync(gunzipStream(gz.subarray(0, gz.length - 10), "cut.gz"), /cut\.gz: gzip data is truncated or corrupt/);
  });
});

describe(".npy", () => {
  const f32 = new Float32Array([1, 2.5, -3, 4, 5, 6]);

  test("v1 <f4 [2, 3] and v2 <f8", () => {
    const t = parseNpy(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", bytesOf(f32)));
    expect([t.dtype, t.shape, t.toArray()]).toEqual(["f32", [2, 3], [[1, 2.5, -3], [4, 5, 6]]]);
    const d = parseNpy(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytesOf(new Float64Array([0.1, -1e300])), 2));
    expect(d.toArray()).toEqual([0.1, -1e300]);
  });

  test("integer, byte and bool dtypes; 0-d and 1-d shapes", () => {
    expect(parseNpy(npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", bytesOf(new Int32Array([-1, 0, 7])))).toArray()).toEqual([-1, 0, 7]);
    const i8 = parseNpy(npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", bytesOf(new BigInt64Array([-5n, 2147483647n]))));
    expect([i8.dtype, i8.toArray()]).toEqual(["i32", [-5, 2147483647]]);
    expect(parseNpy(npyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", Uint8Array.from([0, 255]))).toArray()).toEqual([0, 255]);
    expect(parseNpy(npyBytes("{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", Uint8Array.from([0xff, 1]))).toArray()).toEqual([-1, 1]);
    const b = parseNpy(npyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", Uint8Array.from([1, 0, 1])));
    expect([b.dtype, b.toArray()]).toEqual(["bool", [1, 0, 1]]);
    const s = parseNpy(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", bytesOf(new Float32Array([9]))));
    expect([s.shape, s.toArray()]).toEqual([[], 9]);
  });

  test("files written by numpy 2.4 (np.save, base64 here) read back", () => {
    const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));
    const f4 = parseNpy(b64("k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8="));
    expect(f4.toArray()).toEqual([[0, 0.25, 0.5], [0.75, 1, 1.25]]); // np.arange(6, dtype="<f4").reshape(2, 3) / 4
    const i8 = parseNpy(b64("k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr9/////////wUAAAAAAAAA////fwAAAAA="));
    expect(i8.toArray()).toEqual([-3, 5, 2147483647]);
    const b1 = parseNpy(b64("k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE="));
    expect(b1.toArray()).toEqual([1, 0, 1]);
  });

  test("data at an odd byte offset of a larger buffer is still read", async () => {
    const file = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", bytesOf(f32));
    const big = new Uint8Array(file.length + 1);
    big.set(file, 1);
    expect(parseNpy(big.subarray(1)).toFlatArray()).toEqual(Array.from(f32));
    expect((await readNpy(gzipSync(file))).toFlatArray()).toEqual(Array.from(f32));
  });

  test("Fortran order, big-endian, unsupported dtypes and truncation are KilnErrors naming file and dtype", () => {
    const h = (descr: string, fortran = "False", shape = "(2,)") => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    expectKilnError(() => parseNpy(npyBytes(h("<f4", "True", "(1, 2)"), bytesOf(new Float32Array(2))), { name: "f.npy" }), /f\.npy is in Fortran order.*<f4/);
    expectKilnError(() => parseNpy(npyBytes(h(">f4"), bytesOf(new Float32Array(2))), { name: "b.npy" }), /b\.npy has big-endian dtype >f4/);
    expectKilnError(() => parseNpy(npyBytes(h("<c8"), new Uint8Array(16)), { name: "c.npy" }), /c\.npy has unsupported dtype <c8/);
    expectKilnError(() => parseNpy(npyBytes(h("<U3"), new Uint8Array(24)), { name: "u.npy" }), /unsupported dtype <U3/);
    expectKilnError(() => parseNpy(npyBytes(h("<f4", "False", "(3,)"), bytesOf(new Float32Array(2))), { name: "t.npy" }), /t\.npy is truncated: .*offset 140 but the file ends at offset 136/);
    expectKilnError(() => parseNpy(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), { name: "x.npy" }), /x\.npy does not start with the \.npy magic/);
    expectKilnError(() => parseNpy(npyBytes(h("<i8"), bytesOf(new BigInt64Array([1n, 1n << 40n]))), { name: "big.npy" }), /big\.npy element 1 .*outside the i32 range/);
  });
});

describe("CSV", () => {
  test("header row, numeric columns, CRLF, a label column", () => {
    const t = parseCsv("a,b,label\r\n1,2.5,0\r\n-3,4e2,2\r\n", { labelColumn: "label" });
    expect(t.columns).toEqual(["a", "b"]);
    expect([t.data.dtype, t.data.shape, t.data.toArray()]).toEqual(["f32", [2, 2], [[1, 2.5], [-3, 400]]]);
    expect(t.labels!.toArray()).toEqual([0, 2]);
    expect(t.labelName).toBe("label");
  });

  test("no header (auto-detected or forced), other delimiters, nan/inf", () => {
    const t = parseCsv("1;2\n3;nan\n", { delimiter: ";", dtype: "f64" });
    expect(t.columns).toBeNull();
    expect(t.data.toFlatArray()).toEqual([1, 2, 3, NaN]);
    expect(parseCsv("1,2\n", { header: true }).columns).toEqual(["1", "2"]);
    expect(parseCsv("x\n-inf\n").data.toFlatArray()).toEqual([-Infinity]);
  });

  test("ragged rows and non-numeric cells name the file, row and column", async () => {
    expectKilnError(() => parseCsv("a,b\n1,2\n3\n", { name: "r.csv" }), /CSV file r\.csv: row 2 \(line 3\) has 1 cells, expected 2/);
    expectKilnError(() => parseCsv("a,b\n1,2\n3,x7\n", { name: "n.csv" }), /n\.csv: row 2 \(line 3\), column 2 "b": "x7" is not a number/);
    expectKilnError(() => parseCsv("1,2\n3,\n", { name: "e.csv" }), /e\.csv: row 2 \(line 2\), column 2: "" is not a number/);
    expectKilnError(() => parseCsv("a,y\n1,0.5\n", { name: "l.csv", labelColumn: "y" }), /label 0\.5 is not an integer/);
    expectKilnError(() => parseCsv("a\n1\n", { labelColumn: "y" }), /no label column "y"/);
    const dir = mkdtempSync(join(tmpdir(), "kiln-csv-"));
    writeFileSync(join(dir, "bad.csv"), "1,2\n3,4,5\n");
    await expectKilnErrorAsync(readCsv(join(dir, "bad.csv")), /bad\.csv: row 2 \(line 2\) has 3 cells/);
  });
});
