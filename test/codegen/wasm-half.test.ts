// f16/bf16 <-> f32 conversions of the wasm kernels (compiler/codegen/wasm/half.ts, vector and scalar paths) and of
// the host (runtime/dtype.ts): every f16 pattern round trip, and hand-derived golden bit patterns at the edges.
import { describe, it, expect, beforeAll } from "vitest";
import type { NamedKernel } from "../../compiler/codegen/kernel.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { instantiate, type Instance } from "./wasm-harness.js";
import { cast, ew, inp, runEw } from "./ew-util.js";

const HALVES = ["f16", "bf16"] as const;
type Half = (typeof HALVES)[number];

// `widen_*`: cast(h, f32); `narrow_*`: cast(x, h). The `_s` variants carry an unused u8 input, which makes the
// kernel take its scalar loop (u8 has no 4-lane load), so both code paths see every value.
const kernels: NamedKernel[] = HALVES.flatMap((h) => [
  { name: `widen_${h}`, spec: ew(1, [[h]], "f32", cast(inp(0), "f32")) },
  { name: `widen_${h}_s`, spec: ew(1, [[h], ["u8", [true]]], "f32", cast(inp(0), "f32")) },
  { name: `narrow_${h}`, spec: ew(1, [["f32"]], h, cast(inp(0), h)) },
  { name: `narrow_${h}_s`, spec: ew(1, [["f32"], ["u8", [true]]], h, cast(inp(0), h)) },
]);

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(kernels);
});

const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0]!;

/** Widens with the wasm kernel (vector or scalar loop) and returns the f32 bit patterns. */
function widen(h: Half, bits: readonly number[], scalar: boolean): number[] {
  const k = kernels.find((x) => x.name === `widen_${h}${scalar ? "_s" : ""}`)!;
  const data = scalar ? [Uint16Array.from(bits), new Uint8Array(1)] : [Uint16Array.from(bits)];
  const out = runEw(inst, k.name, k.spec as never, [bits.length], data) as Float32Array;
  return Array.from(new Uint32Array(out.buffer, out.byteOffset, out.length));
}

/** Narrows f32 bit patterns with the wasm kernel and returns the 16-bit patterns. */
function narrow(h: Half, bits: readonly number[], scalar: boolean): number[] {
  const k = kernels.find((x) => x.name === `narrow_${h}${scalar ? "_s" : ""}`)!;
  const f = new Float32Array(Uint32Array.from(bits.map((b) => b >>> 0)).buffer);
  const data = scalar ? [f, new Uint8Array(1)] : [f];
  return Array.from(runEw(inst, k.name, k.spec as never, [bits.length], data) as Uint16Array);
}

describe("f16/bf16 kernels stay vectorised", () => {
  it("4-lane 16-bit loads and stores, and no per-element conversion call", async () => {
    for (const h of HALVES) {
      const { text } = await buildWasmModule(kernels.filter((k) => k.name === `widen_${h}` || k.name === `narrow_${h}`));
      expect(text).toContain("v128.load16x4_u");
      expect(text).toContain("v128.store64_lane");
      expect(text).toContain("i16x8.narrow_i32x4_u");
      expect(text).not.toContain("call ");
    }
  });
});

const ALL16 = Array.from({ length: 65536 }, (_, i) => i);
const isNaN16 = (h: Half, b: number): boolean => (h === "f16" ? (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0 : (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0);

describe("every 16-bit pattern: widen exactly, narrow back to itself", () => {
  for (const h of HALVES) {
    for (const scalar of [false, true]) {
      it(`${h} ${scalar ? "scalar" : "vector"} kernels`, () => {
        const wide = widen(h, ALL16, scalar);
        // Widening is exact: f16 by the binary16 definition (host decoder), bf16 is the top half of the f32.
        // NaNs keep sign and payload: f16 mantissa m lands in f32 bits 22..13, exponent all ones.
        for (const b of ALL16) {
          const want = h === "bf16" ? (b << 16) >>> 0
            : isNaN16(h, b) ? (((b & 0x8000) << 16) | 0x7f800000 | ((b & 0x3ff) << 13)) >>> 0
            : f32Bits(f16BitsToF32(b));
          if (wide[b] !== want) throw new Error(`${h} widen 0x${b.toString(16)}: got 0x${wide[b]!.toString(16)} want 0x${want.toString(16)}`);
        }
        const back = narrow(h, wide, scalar);
        // Non-NaN patterns come back unchanged; a NaN comes back quiet (f16 bit 9 / bf16 bit 6 set), same payload.
        const quiet = h === "f16" ? 0x200 : 0x40;
        const bad = ALL16.filter((b) => back[b] !== (isNaN16(h, b) ? b | quiet : b));
        expect(bad.slice(0, 5).map((b) => `0x${b.toString(16)} -> 0x${back[b]!.toString(16)}`)).toEqual([]);
      });
    }
  }
});

// Golden f16 patterns, derived from the binary16 definition (1 sign, 5 exponent bits biased by 15, 10 mantissa
// bits; subnormals m * 2^-24) and round-to-nearest-even. [f32 value, f16 bits].
const F16_GOLDEN: [number, number][] = [
  [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800],
  [65504, 0x7bff], // max finite: (2 - 2^-10) * 2^15
  [65519, 0x7bff], // below the tie 65520 = 65504 + ulp/2 (ulp 32)
  [65520, 0x7c00], // the tie: 65504 has an odd mantissa (0x3ff), so it rounds up to 2^16, which is Inf
  [-65520, 0xfc00], [65536, 0x7c00], [1e10, 0x7c00], [3.4028234663852886e38, 0x7c00],
  [2 ** -24, 0x0001], // smallest subnormal
  [2 ** -25, 0x0000], // half of it: tie between 0 and 2^-24, to the even 0
  [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above that tie
  [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units of 2^-24: to the even 2
  [5 * 2 ** -25, 0x0002], // tie between 2 and 3 units: to 2
  [1023 * 2 ** -24, 0x03ff], // largest subnormal
  [2 ** -14 - 2 ** -25, 0x0400], // tie between 0x3ff (odd) and the smallest normal 0x400
  [2 ** -14, 0x0400], // smallest normal
  [2 ** -26, 0x0000], [-(2 ** -26), 0x8000], [1e-45, 0x0000], // f32 subnormal input
  [-0, 0x8000], [0, 0x0000],
  [1 + 2 ** -11, 0x3c00], // tie between 1 (even) and 1 + 2^-10
  [1 + 2 ** -11 + 2 ** -23, 0x3c01], // just above the tie
  [1 + 2 ** -11 - 2 ** -23, 0x3c00], // just below
  [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 (odd) and 0x3c02
  [2 - 2 ** -11, 0x4000], // tie between 0x3bff (odd) and 2: the carry moves into the exponent
  [Infinity, 0x7c00], [-Infinity, 0xfc00],
];
// Golden bf16 patterns: bfloat16 is the top 16 bits of binary32 (8 exponent bits, 7 mantissa bits), rounded to
// nearest even. [f32 bits, bf16 bits].
const BF16_GOLDEN: [number, number][] = [
  [0x3f800000, 0x3f80], // 1
  [0x3f808000, 0x3f80], // 1 + 2^-8: tie between 1 (even) and 1 + 2^-7
  [0x3f808001, 0x3f81], // just above the tie
  [0x3f807fff, 0x3f80], // just below
  [0x3f818000, 0x3f82], // 1 + 3 * 2^-8: tie between 0x3f81 (odd) and 0x3f82
  [0x7f7f7fff, 0x7f7f], // below the tie above the max finite bf16 (2 - 2^-7) * 2^127
  [0x7f7f8000, 0x7f80], // that tie: 0x7f7f is odd, rounds up into Inf
  [0x7f7fffff, 0x7f80], // max f32 overflows to Inf
  [0xff7fffff, 0xff80],
  [0x00008000, 0x0000], // subnormal tie to even 0
  [0x00018000, 0x0002], // subnormal tie between 1 (odd) and 2
  [0x00000001, 0x0000], // smallest f32 subnormal
  [0x80000000, 0x8000], // -0
  [0x7f800000, 0x7f80], [0xff800000, 0xff80], // ±Inf
  [0x7fc00000, 0x7fc0], // quiet NaN
  [0x7f800001, 0x7fc0], // signaling NaN, payload only in the low bits: quiet, so it stays NaN
  [0xff800001, 0xffc0],
];

describe("golden narrowing", () => {
  for (const scalar of [false, true]) {
    it(`f16 ${scalar ? "scalar" : "vector"}`, () => {
      const bits = F16_GOLDEN.map(([x]) => f32Bits(x));
      expect(narrow("f16", bits, scalar).map((b) => b.toString(16))).toEqual(F16_GOLDEN.map(([, b]) => b.toString(16)));
      // NaN: quiet NaN 0x7e00 (f32 0x7fc00000 has its payload in bit 22 only -> f16 bit 9, the quiet bit).
      expect(narrow("f16", [0x7fc00000, 0xffc00000, 0x7f800001], scalar)).toEqual([0x7e00, 0xfe00, 0x7e00]);
    });
    it(`bf16 ${scalar ? "scalar" : "vector"}`, () => {
      const bits = BF16_GOLDEN.map(([x]) => x);
      expect(narrow("bf16", bits, scalar).map((b) => b.toString(16))).toEqual(BF16_GOLDEN.map(([, b]) => b.toString(16)));
    });
  }

  it("host conversions (runtime/dtype.ts) give the same golden patterns", () => {
    expect(F16_GOLDEN.map(([x]) => f32ToF16Bits(x).toString(16))).toEqual(F16_GOLDEN.map(([, b]) => b.toString(16)));
    expect(BF16_GOLDEN.filter(([x]) => !Number.isNaN(fromBits(x))).map(([x]) => f32ToBf16Bits(fromBits(x)).toString(16)))
      .toEqual(BF16_GOLDEN.filter(([x]) => !Number.isNaN(fromBits(x))).map(([, b]) => b.toString(16)));
    expect(isNaN16("f16", f32ToF16Bits(NaN)) && isNaN16("bf16", f32ToBf16Bits(NaN))).toBe(true);
    // Host round trip of every non-NaN pattern.
    for (const h of HALVES) {
      const dec = h === "f16" ? f16BitsToF32 : bf16BitsToF32;
      const enc = h === "f16" ? f32ToF16Bits : f32ToBf16Bits;
      const bad = ALL16.filter((b) => !isNaN16(h, b) && enc(dec(b)) !== b);
      expect(bad).toEqual([]);
    }
  });

  it("wasm and host narrowing agree on random f32 bit patterns", () => {
    let s = 12345;
    const bits: number[] = [];
    for (let i = 0; i < 20000; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bits.push(i % 2 ? s : (s & 0x87ffffff) | 0x30000000); // half of them near the f16 range
    }
    for (const h of HALVES) {
      const enc = h === "f16" ? f32ToF16Bits : f32ToBf16Bits;
      for (const scalar of [false, true]) {
        const got = narrow(h, bits, scalar);
        const bad = bits.filter((b, i) => !Number.isNaN(fromBits(b)) && got[i] !== enc(fromBits(b)));
        expect(bad.slice(0, 5).map((b) => b.toString(16))).toEqual([]);
      }
    }
  });
});

