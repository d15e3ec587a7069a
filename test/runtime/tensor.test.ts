import { describe, expect, test } from "vitest";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";

describe("Tensor", () => {
  test("typed array per dtype, size, get, toArray", () => {
    const t = new Tensor("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.size).toBe(6);
    expect(t.get(1, 2)).toBe(6);
    expect(t.get(-1, 0)).toBe(4);
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(new Tensor("i32", [2]).data).toBeInstanceOf(Int32Array);
    expect(new Tensor("i8", [2]).data).toBeInstanceOf(Int8Array);
    expect(new Tensor("u8", [2]).data).toBeInstanceOf(Uint8Array);
    expect(new Tensor("bool", [2]).data).toBeInstanceOf(Uint8Array);
    expect(new Tensor("f64", [2]).data).toBeInstanceOf(Float64Array);
    expect(new Tensor("f16", [2]).data).toBeInstanceOf(Uint16Array);
    expect(new Tensor("bf16", [2]).data).toBeInstanceOf(Uint16Array);
    expect(new Tensor("f32", [], [7]).toArray()).toBe(7);
  });

  test("checks", () => {
    expect(() => new Tensor("f32", [2, 2], [1, 2, 3])).toThrow(KilnError);
    expect(() => new Tensor("f32", [2], new Int32Array(2) as unknown as Float32Array)).toThrow(/Int32Array/);
    expect(() => new Tensor("i32", [1], [1.5])).toThrow(/not a valid i32/);
    expect(() => new Tensor("f32", [2], [1, 2]).get(2)).toThrow(/out of range/);
    expect(() => new Tensor("f32", [2], [1, 2]).get(0, 0)).toThrow(/expected 1 indices/);
  });

  test("toString is numpy-like and elides big tensors", () => {
    expect(new Tensor("f32", [2, 2], [1, 2.5, -3, 4]).toString()).toBe(
      "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], dtype=f32, shape=[2, 2])",
    );
    expect(new Tensor("i32", [3], [1, 20, 3]).toString()).toBe("tensor([ 1, 20,  3], dtype=i32, shape=[3])");
    expect(new Tensor("bool", [2], [1, 0]).toString()).toBe("tensor([ true, false], dtype=bool, shape=[2])");
    const big = new Tensor("f32", [100, 100], Float32Array.from({ length: 10000 }, (_, i) => i));
    const s = big.toString();
    expect(s).toContain("...");
    expect(s.split("\n").length).toBeLessThan(12);
    expect(s).toContain("9999.");
    expect(s).toContain("shape=[100, 100]");
  });

  test("f16 / bf16 conversions", () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.33325, 4);
    for (const x of [0.1, 1.5, -7.25, 1000, 6e-5]) expect(f16BitsToF32(f32ToF16Bits(x))).toBeCloseTo(x, 2);
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(3.140625))).toBe(3.140625);
    const h = new Tensor("f16", [2], [0.5, -1]);
    expect(h.toArray()).toEqual([0.5, -1]);
  });
});
