// Elementwise kernels reading and writing f16/bf16 (storage; f32 in registers) on the wasm backend, against a
// float64 reference on the decoded inputs: unary and binary ops, mixed-precision casts, broadcast inputs, constants,
// compares and integer casts, at every size (vector loop + scalar tail) and on the scalar-only path.
import { describe, it, beforeAll } from "vitest";
import type { ElementwiseKernel, EwExpr, NamedKernel } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { arrayFor, instantiate, rng, SIZES, type AnyArray, type Instance } from "./wasm-harness.js";
import { cast, cst, ew, inp, inShape, numel, op, runEw } from "./ew-util.js";

type Half = "f16" | "bf16";
const HALVES: readonly Half[] = ["f16", "bf16"];
const enc = (d: DType, x: number): number => (d === "f16" ? f32ToF16Bits(x) : d === "bf16" ? f32ToBf16Bits(x) : x);
const dec = (d: DType, x: number): number => (d === "f16" ? f16BitsToF32(x) : d === "bf16" ? bf16BitsToF32(x) : x);
const round = (d: DType, x: number): number => dec(d, enc(d, Math.fround(x)));

/**
 * Half an ulp of format d at |y| (the most round-to-nearest can move y): significand bits p = 11 (binary16),
 * 8 (bfloat16), 24 (binary32), so ulp(y) = 2^(floor(log2|y|) - p + 1), with f16 subnormals spaced 2^-24.
 */
function halfUlp(d: DType, y: number): number {
  const p = d === "f16" ? 11 : d === "bf16" ? 8 : 24;
  const e = Math.max(Math.floor(Math.log2(Math.abs(y))), d === "f16" ? -14 : -126);
  return 2 ** (e - p);
}

/**
 * f32 compute error before the final rounding: the f32 ops are correctly rounded (half an f32 ulp); exp/log/
 * tanh/sigmoid come from math.ts, whose f32 tests (wasm-elementwise.test.ts) bound them by rel 2e-6 + abs 2e-7.
 */
const F32_ERR = (o: string, y: number): number =>
  ["exp", "log", "tanh", "sigmoid"].includes(o) ? 2e-6 * Math.abs(y) + 2e-7 : halfUlp("f32", y);

interface Case {
  k: ElementwiseKernel;
  /** float64 value of one output element from the decoded inputs. */
  f: (v: number[]) => number;
  /** op name for the compute-error allowance. */
  o: string;
  lo: number;
  hi: number;
}

const cases: Record<string, Case> = {};
const UNARY: [PrimOp, (x: number) => number, number, number][] = [
  ["neg", (x) => -x, -10, 10], ["abs", Math.abs, -10, 10], ["relu", (x) => (Number.isNaN(x) ? NaN : Math.max(x, 0)), -10, 10],
  ["sqrt", Math.sqrt, 0, 100], ["exp", Math.exp, -10, 10], ["log", Math.log, 1e-3, 1e3], ["tanh", Math.tanh, -4, 4],
  ["sigmoid", (x) => 1 / (1 + Math.exp(-x)), -10, 10],
];
const BINARY: [PrimOp, (x: number, y: number) => number][] = [
  ["add", (x, y) => x + y], ["sub", (x, y) => x - y], ["mul", (x, y) => x * y], ["div", (x, y) => x / y],
  ["maximum", Math.max], ["minimum", Math.min],
];
const BCAST = [[false, false], [false, true], [true, false], [true, true]];

for (const h of HALVES) {
  const c32 = (e: EwExpr) => cast(e, "f32");
  for (const [o, f, lo, hi] of UNARY) {
    // The precision pass's pattern: widen, compute in f32, round on store.
    cases[`${o}_${h}_mixed`] = { k: ew(1, [[h]], h, cast(op(o, "f32", c32(inp(0))), h)), f: ([x]) => f(x!), o, lo, hi };
    // The op typed in the format itself: computed in f32, rounded to the format.
    cases[`${o}_${h}_direct`] = { k: ew(1, [[h]], h, op(o, h, inp(0))), f: ([x]) => f(x!), o, lo, hi };
    // An inner axis of extent 1 that cannot merge with the outer one: only the scalar path runs.
    cases[`${o}_${h}_scalar`] = { k: ew(2, [[h, [false, true]]], h, op(o, h, inp(0))), f: ([x]) => f(x!), o, lo, hi };
  }
  for (const [o, f] of BINARY) {
    BCAST.forEach((b, i) => {
      cases[`${o}_${h}_b${i}`] = { k: ew(2, [[h, [b[0]!, false]], [h, [false, b[1]!]]], h, op(o, h, inp(0), inp(1))), f: ([x, y]) => f(x!, y!), o, lo: -10, hi: 10 };
    });
  }
  // f16 in, f32 out and the reverse, with an f32 operand (a cast folded into a fused kernel).
  cases[`mul_${h}_to_f32`] = { k: ew(1, [[h], ["f32"]], "f32", op("mul", "f32", c32(inp(0)), inp(1))), f: ([x, y]) => x! * y!, o: "mul", lo: -10, hi: 10 };
  cases[`add_f32_to_${h}`] = { k: ew(2, [["f32", [true, false]], [h]], h, cast(op("add", "f32", inp(0), c32(inp(1))), h)), f: ([x, y]) => x! + y!, o: "add", lo: -10, hi: 10 };
  // A constant of the format is rounded to it first: 0.1 is 0x2e66 = 0.0999755859375 in f16, 0x3dcd = 0.10009765625 in bf16.
  const tenth = h === "f16" ? 0.0999755859375 : 0.10009765625;
  cases[`mulc_${h}`] = { k: ew(1, [[h]], h, op("mul", h, inp(0), cst(0.1, h))), f: ([x]) => x! * tenth, o: "mul", lo: -10, hi: 10 };
  // A constant fill (how the planner pads): no inputs, every element the rounded constant.
  cases[`fill_${h}`] = { k: ew(1, [], h, cst(0.1, h)), f: () => tenth, o: "", lo: 0, hi: 0 };
  // Compares and integer casts are exact.
  cases[`lt_${h}`] = { k: ew(1, [[h], [h]], "bool", op("lt", "bool", inp(0), inp(1))), f: ([x, y]) => (x! < y! ? 1 : 0), o: "", lo: -3, hi: 3 };
  cases[`to_i32_${h}`] = { k: ew(1, [[h]], "i32", cast(inp(0), "i32")), f: ([x]) => (Number.isNaN(x) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(x!))) + 0), o: "", lo: -300, hi: 300 };
  cases[`from_i32_${h}`] = { k: ew(1, [["i32"]], h, cast(inp(0), h)), f: ([x]) => x!, o: "", lo: -5000, hi: 5000 };
  cases[`where_${h}`] = { k: ew(1, [["bool"], [h], [h]], h, op("where", h, inp(0), inp(1), inp(2))), f: ([c, x, y]) => (c ? x! : y!), o: "", lo: -10, hi: 10 };
}
// Between the two formats: f16 -> bf16 rounds (8-bit significand), bf16 -> f16 rounds and may overflow.
cases.f16_to_bf16 = { k: ew(1, [["f16"]], "bf16", cast(inp(0), "bf16")), f: ([x]) => x!, o: "", lo: -60000, hi: 60000 };
cases.bf16_to_f16 = { k: ew(1, [["bf16"]], "f16", cast(inp(0), "f16")), f: ([x]) => x!, o: "", lo: -1e5, hi: 1e5 };

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(cases).map(([name, c]): NamedKernel => ({ name, spec: c.k })));
});

/** Random input data in the input's dtype (values drawn in [lo, hi], then stored in that dtype). */
function data(d: DType, n: number, r: () => number, lo: number, hi: number): AnyArray {
  const a = arrayFor(d, n);
  for (let i = 0; i < n; i++) {
    const x = lo + (hi - lo) * r();
    a[i] = d === "bool" ? (r() < 0.5 ? 1 : 0) : d === "i32" ? Math.round(x) : enc(d, x);
  }
  if (d !== "bool" && d !== "i32" && n >= 4) [NaN, Infinity, -Infinity, -0].forEach((v, i) => (a[i] = enc(d, v)));
  return a;
}

function check(name: string, ext: number[], seed: number): void {
  const c = cases[name]!;
  const r = rng(seed);
  const ins = c.k.inputs.map((inp) => data(inp.dtype, numel(inShape(ext, inp.bcast)), r, c.lo, c.hi));
  const got = runEw(inst, name, c.k, ext, ins);
  const out = c.k.out;
  const idx = new Array<number>(ext.length).fill(0);
  for (let o = 0; o < numel(ext); o++) {
    let rem = o;
    for (let a = ext.length - 1; a >= 0; a--) { idx[a] = rem % ext[a]!; rem = Math.floor(rem / ext[a]!); }
    const vals = c.k.inputs.map((inp, i) => {
      const shape = inShape(ext, inp.bcast);
      let off = 0;
      for (let a = 0; a < ext.length; a++) off = off * shape[a]! + (inp.bcast[a] ? 0 : idx[a]!);
      return dec(inp.dtype, ins[i]![off]!);
    });
    const exact = c.f(vals);
    const g = dec(out, got[o]!);
    let ok: boolean;
    if (out === "bool" || out === "i32" || !Number.isFinite(exact) || !Number.isFinite(round(out, exact)) || c.o === "") {
      // Exact cases: the correctly rounded value itself (NaN matches NaN, -0 must stay -0).
      const want = out === "bool" || out === "i32" ? exact : round(out, exact);
      ok = Object.is(g, want) || (Number.isNaN(g) && Number.isNaN(want));
    } else {
      ok = Math.abs(g - exact) <= halfUlp(out, exact) + F32_ERR(c.o, exact) && enc(out, g) === got[o];
    }
    if (!ok) throw new Error(`${name} ext=[${ext}] [${o}]: got ${g} for inputs ${vals.join(", ")}; exact ${exact}`);
  }
}

describe("f16/bf16 elementwise kernels against float64", () => {
  for (const name of Object.keys(cases)) {
    it(name, () => {
      const k = cases[name]!.k;
      SIZES.forEach((n, s) => {
        if (k.rank === 1) check(name, [n], s + 1);
        else if (name.includes("_scalar")) check(name, [n, 1], s + 1);
        else { check(name, [3, n], s + 1); check(name, [n, 5], s + 100); }
      });
    });
  }
});
