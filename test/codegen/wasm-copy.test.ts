// Copy kernels (permute, slice, broadcast, concat pieces; 1/2/4/8-byte elements) and iota on the wasm backend.
import { describe, it, expect, beforeAll } from "vitest";
import type { CopyKernel, NamedKernel } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";
import { arrayFor, instantiate, rng, SIZES, type Instance } from "./wasm-harness.js";
import { numel } from "./ew-util.js";

const cases: Record<string, CopyKernel | { kind: "iota"; dtype: "i32" }> = { iota: { kind: "iota", dtype: "i32" } };
for (const dtype of ["f32", "u8", "bool", "i8", "i32", "f16", "bf16", "f64"] as DType[]) {
  for (let rank = 0; rank <= 4; rank++) cases[`copy_${dtype}_${rank}`] = { kind: "copy", dtype, rank };
}

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(cases).map(([name, spec]): NamedKernel => ({ name, spec })));
});

/** Runs a copy and checks it against the definition, including that nothing else in `out` changed. */
function runCopy(dtype: DType, ext: number[], inStride: number[], outStride: number[], inOff: number, outOff: number, inLen: number, outLen: number): void {
  const r = rng(ext.length * 7 + inLen);
  const src = arrayFor(dtype, inLen);
  for (let i = 0; i < inLen; i++) src[i] = Math.floor(r() * 120) - (dtype === "u8" || dtype === "bool" || dtype === "f16" || dtype === "bf16" ? 0 : 60);
  // f16/bf16 NaN patterns with payloads and a signaling NaN: a copy moves bits, it never converts.
  if ((dtype === "f16" || dtype === "bf16") && inLen > 3) [src[0], src[1], src[2]] = dtype === "f16" ? [0x7c01, 0xfe37, 0x8001] : [0x7f81, 0xffc3, 0x8001];
  if (dtype === "f32" && inLen > 2) src[1] = NaN;
  inst.reset();
  const pi = inst.put(src);
  const fill = arrayFor(dtype, outLen).fill(dtype === "bool" ? 1 : 99);
  const po = inst.put(fill);
  inst.run(`copy_${dtype}_${ext.length}`, pi, po, inOff, outOff, ...ext, ...inStride, ...outStride);
  const want = Array.from(fill);
  const idx = new Array<number>(ext.length).fill(0);
  for (let t = 0; t < numel(ext); t++) {
    let rem = t;
    for (let a = ext.length - 1; a >= 0; a--) { idx[a] = rem % ext[a]!; rem = Math.floor(rem / ext[a]!); }
    let io = inOff;
    let oo = outOff;
    idx.forEach((v, a) => { io += v * inStride[a]!; oo += v * outStride[a]!; });
    want[oo] = src[io]!;
  }
  expect(Array.from(inst.read(dtype, po, outLen))).toEqual(want);
}

const contiguous = (ext: number[]): number[] => ext.map((_, a) => numel(ext.slice(a + 1)));

describe("copy", () => {
  it("permute (transpose) of rank 2-4 tensors, each element size", () => {
    for (const dtype of ["f32", "u8", "i8", "i32", "f16", "bf16", "f64"] as DType[]) {
      // [3,5] -> [5,3]
      runCopy(dtype, [5, 3], [1, 5], [3, 1], 0, 0, 15, 15);
      // [2,3,4] with perm (2,0,1): out ext [4,2,3]
      const s = contiguous([2, 3, 4]);
      runCopy(dtype, [4, 2, 3], [s[2]!, s[0]!, s[1]!], contiguous([4, 2, 3]), 0, 0, 24, 24);
      // rank 4, perm (3,1,0,2) of [2,3,4,5]
      const s4 = contiguous([2, 3, 4, 5]);
      runCopy(dtype, [5, 3, 2, 4], [s4[3]!, s4[1]!, s4[0]!, s4[2]!], contiguous([5, 3, 2, 4]), 0, 0, 120, 120);
    }
  });

  it("slice along each axis, with input and output offsets", () => {
    for (const dtype of ["f32", "bool", "i32", "f64"] as DType[]) {
      // [4, 70] sliced [1:3, 5:68] into a bigger buffer at offset 7
      runCopy(dtype, [2, 63], [70, 1], [63, 1], 75, 7, 280, 140);
      // slice along axis 0 only: contiguous rows of 70 (bulk path)
      runCopy(dtype, [3, 70], [70, 1], [70, 1], 70, 0, 280, 210);
      // concat piece: write [3, 5] into columns 4..8 of a [3, 12] output
      runCopy(dtype, [3, 5], [5, 1], [12, 1], 0, 4, 15, 36);
    }
  });

  it("broadcast (stride 0) on each axis and 1-byte dtypes", () => {
    for (const dtype of ["u8", "i8", "bool", "f32"] as DType[]) {
      runCopy(dtype, [4, 6], [0, 1], [6, 1], 0, 0, 6, 24);
      runCopy(dtype, [4, 6], [1, 0], [6, 1], 0, 0, 4, 24);
      runCopy(dtype, [2, 3, 5], [0, 5, 0], [15, 5, 1], 0, 0, 15, 30);
      runCopy(dtype, [300], [0], [1], 2, 0, 3, 300);
    }
  });

  it("long contiguous runs (memory.copy) and every size of a 1-d copy", () => {
    for (const n of [...SIZES, 1000]) {
      runCopy("f32", [n], [1], [1], 3, 5, n + 3, n + 5);
      runCopy("u8", [n], [1], [1], 1, 0, n + 1, n);
    }
    runCopy("f32", [5, 100], [100, 1], [100, 1], 0, 0, 500, 500);
  });

  it("rank 0 copies one element; empty extents copy nothing", () => {
    for (const dtype of ["f32", "u8", "f64", "f16"] as DType[]) runCopy(dtype, [], [], [], 2, 1, 4, 3);
    runCopy("f32", [0, 5], [5, 1], [5, 1], 0, 0, 0, 4);
    runCopy("i32", [3, 0, 2], [0, 2, 1], [0, 2, 1], 0, 0, 0, 4);
  });
});

describe("iota", () => {
  it("writes 0..n-1 for every size", () => {
    for (const n of [...SIZES, 1000]) {
      inst.reset();
      const p = inst.out("i32", n);
      inst.run("iota", p, n);
      expect(Array.from(inst.read("i32", p, n))).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(Array.from(inst.bytes(p + 4 * n, 16)).every((b) => b === 0xab)).toBe(true);
    }
  });
});
