// Accuracy (in f32 ulps, against the float64 reference's functions) and special values of the wasm helpers for
// erf, sin, cos, log1p, expm1, and the rounding family and remainder, in both the f32x4 and the scalar form.
import { describe, it, expect, beforeAll } from "vitest";
import type { ElementwiseKernel, NamedKernel } from "../../compiler/codegen/kernel.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { erf64, remainder64, roundHalfEven, sign64 } from "../../compiler/ops/special-functions.js";
import { instantiate, type Instance } from "./wasm-harness.js";
import { ew, inp, op, runEw } from "./ew-util.js";

const UNARY = ["erf", "sin", "cos", "log1p", "expm1", "sign", "floor", "ceil", "round"] as const;
const REF: Record<(typeof UNARY)[number], (x: number) => number> = {
  erf: erf64, sin: Math.sin, cos: Math.cos, log1p: Math.log1p, expm1: Math.expm1, sign: sign64, floor: Math.floor, ceil: Math.ceil, round: roundHalfEven,
};
const kernels: Record<string, ElementwiseKernel> = {};
for (const o of UNARY) {
  kernels[`${o}_v`] = ew(1, [["f32"]], "f32", op(o as PrimOp, "f32", inp(0)));
  kernels[`${o}_s`] = ew(2, [["f32", [false, true]]], "f32", op(o as PrimOp, "f32", inp(0)));
}
kernels.remainder_v = ew(1, [["f32"], ["f32"]], "f32", op("remainder", "f32", inp(0), inp(1)));
kernels.remainder_s = ew(2, [["f32", [false, true]], ["f32", [false, true]]], "f32", op("remainder", "f32", inp(0), inp(1)));

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(kernels).map(([name, spec]): NamedKernel => ({ name, spec })));
});

const same = (got: number, want: number): boolean => Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));

/** Runs the vector and the scalar form; they must agree bit for bit (one algorithm, written once over Lanes). */
function both(name: string, ...xs: Float32Array[]): Float32Array {
  const n = xs[0]!.length;
  const v = runEw(inst, `${name}_v`, kernels[`${name}_v`]!, [n], xs) as Float32Array;
  const s = runEw(inst, `${name}_s`, kernels[`${name}_s`]!, [n, 1], xs) as Float32Array;
  for (let i = 0; i < n; i++) if (!same(v[i]!, s[i]!)) throw new Error(`${name}: vector ${v[i]} != scalar ${s[i]} at x = ${xs.map((x) => x[i]).join(", ")}`);
  return v;
}

function sweep(lo: number, hi: number, n: number, log = false): number[] {
  return Array.from({ length: n }, (_, i) => {
    const t = i / (n - 1);
    return log ? Math.exp(Math.log(lo) + t * (Math.log(hi) - Math.log(lo))) : lo + t * (hi - lo);
  });
}

/** The spacing of f32 values at |y| (2^-149 among subnormals). */
function ulpOf(y: number): number {
  const a = Math.abs(Math.fround(y));
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23) * (2 ** Math.floor(Math.log2(a)) > a ? 0.5 : 1);
}

/** Largest error in ulps of the correctly rounded result, over xs (rounded to f32 first). */
function maxUlps(name: (typeof UNARY)[number], xs: number[]): { ulps: number; at: number } {
  const x = new Float32Array(xs);
  const got = both(name, x);
  let worst = { ulps: 0, at: NaN };
  for (let i = 0; i < x.length; i++) {
    const want = REF[name](x[i]!);
    const e = Math.abs(got[i]! - want) / ulpOf(want);
    if (e > worst.ulps) worst = { ulps: e, at: x[i]! };
  }
  return worst;
}

function expectSpecial(name: (typeof UNARY)[number], pairs: [number, number][]): void {
  const got = both(name, new Float32Array(pairs.map((p) => p[0])));
  pairs.forEach(([xi, want], i) => {
    if (!same(got[i]!, want)) throw new Error(`${name}(${xi}) = ${got[i]}, want ${want}`);
  });
}

// Stated bounds: the measured maximum (printed) rounded up. "ulps" are of the f32 nearest the exact result.
const BOUNDS: [(typeof UNARY)[number], string, number[], number][] = [
  ["erf", "[-6, 6]", sweep(-6, 6, 200001), 1.5],
  ["erf", "|x| in [1e-38, 1]", [...sweep(1e-38, 1, 20001, true), ...sweep(1e-38, 1, 20001, true).map((v) => -v)], 1.5],
  ["sin", "[-pi, pi]", sweep(-Math.PI, Math.PI, 100001), 1.5],
  ["cos", "[-pi, pi]", sweep(-Math.PI, Math.PI, 100001), 1.5],
  ["sin", "[-100, 100]", sweep(-100, 100, 200001), 1.5],
  ["cos", "[-100, 100]", sweep(-100, 100, 200001), 1.5],
  ["log1p", "(-1, 1]", sweep(-0.99999, 1, 200001), 2.5],
  ["log1p", "[1e-38, 1e38] and [-0.5, -1e-38]", [...sweep(1e-38, 1e38, 100001, true), ...sweep(1e-38, 0.5, 20001, true).map((v) => -v)], 2.5],
  ["expm1", "[-20, 88]", sweep(-20, 88, 200001), 2.5],
  ["expm1", "|x| in [1e-38, 1]", [...sweep(1e-38, 1, 20001, true), ...sweep(1e-38, 1, 20001, true).map((v) => -v)], 2.5],
];

describe("wasm math helpers: accuracy in ulps against the float64 reference", () => {
  for (const [name, range, xs, bound] of BOUNDS) {
    it(`${name} on ${range}: at most ${bound} ulps`, () => {
      const w = maxUlps(name, xs);
      console.log(`${name} on ${range}: max error ${w.ulps.toFixed(2)} ulps (at x = ${w.at})`);
      expect(w.ulps).toBeLessThanOrEqual(bound);
    });
  }

  // Far from 0 the three-part pi/4 leaves an absolute error, which near a zero of sin or cos is many ulps.
  it("sin and cos on [-8192, 8192] and [-1e5, 1e5]: absolute error at most 2e-7 and 1e-6", () => {
    for (const [hi, bound] of [[8192, 2e-7], [1e5, 1e-6]] as const) {
      const x = new Float32Array(sweep(-hi, hi, 200001));
      for (const name of ["sin", "cos"] as const) {
        const got = both(name, x);
        let worst = 0;
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(got[i]! - REF[name](x[i]!)));
        console.log(`${name} on [-${hi}, ${hi}]: max absolute error ${worst.toExponential(2)}`);
        expect(worst, name).toBeLessThanOrEqual(bound);
      }
    }
  });

  it("floor, ceil, round and sign are exact", () => {
    const xs = [...sweep(-1000, 1000, 40001), ...sweep(-3, 3, 13), 8388607.5, -8388607.5, 2 ** 30 + 128, 1e-30, -1e-30];
    for (const name of ["floor", "ceil", "round", "sign"] as const) expect(maxUlps(name, xs).ulps, name).toBe(0);
  });
});

describe("wasm math helpers: special values", () => {
  it("erf", () => expectSpecial("erf", [[0, 0], [-0, -0], [Infinity, 1], [-Infinity, -1], [NaN, NaN], [4, 1], [-10, -1]]));
  it("sin and cos", () => {
    expectSpecial("sin", [[0, 0], [-0, -0], [Infinity, NaN], [-Infinity, NaN], [NaN, NaN], [1e-30, Math.fround(1e-30)]]);
    expectSpecial("cos", [[0, 1], [-0, 1], [Infinity, NaN], [NaN, NaN]]);
  });
  it("log1p and expm1", () => {
    expectSpecial("log1p", [[0, 0], [-0, -0], [-1, -Infinity], [-2, NaN], [Infinity, Infinity], [-Infinity, NaN], [NaN, NaN], [1e-30, Math.fround(1e-30)]]);
    expectSpecial("expm1", [[0, 0], [-0, -0], [Infinity, Infinity], [-Infinity, -1], [NaN, NaN], [100, Infinity], [-100, -1], [1e-30, Math.fround(1e-30)]]);
  });
  it("round is half to even; sign(±0) and sign(NaN) are +0 (torch.sign)", () => {
    expectSpecial("round", [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-2.5, -2], [-0.3, -0], [Infinity, Infinity], [NaN, NaN]]);
    expectSpecial("sign", [[-0, 0], [0, 0], [NaN, 0], [-Infinity, -1], [1e-45, 1]]);
    expectSpecial("floor", [[-0.5, -1], [-0, -0], [Infinity, Infinity], [NaN, NaN]]);
    expectSpecial("ceil", [[-0.5, -0], [0.5, 1], [-Infinity, -Infinity], [NaN, NaN]]);
  });
});

describe("remainder (torch.remainder)", () => {
  it("is exact against the float64 definition while |a / b| < 2^29, with the divisor's sign", () => {
    let seed = 11;
    const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const n = 20000;
    const a = new Float32Array(n), b = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = (r() - 0.5) * Math.exp((r() - 0.5) * 20);
      b[i] = (r() - 0.5) * Math.exp((r() - 0.5) * 10);
      if (Math.abs(a[i]! / b[i]!) >= 2 ** 29) b[i] = a[i]!;
    }
    const got = both("remainder", a, b);
    for (let i = 0; i < n; i++) {
      const want = Math.fround(remainder64(a[i]!, b[i]!));
      if (!same(got[i]!, want)) throw new Error(`remainder(${a[i]}, ${b[i]}) = ${got[i]}, want ${want}`);
    }
  });

  it("special values, as torch.remainder gives them", () => {
    // torch.remainder(torch.tensor([5., -5, 5, -5, 0, -0., -4, 1, -1, inf, 3]), torch.tensor([3., 3, -3, -3, 2, 2, 2, inf, inf, 2, 0]))
    // -> [2., 1., -1., -2., 0., -0., -0., 1., inf, nan, nan]
    const a = new Float32Array([5, -5, 5, -5, 0, -0, -4, 1, -1, Infinity, 3]);
    const b = new Float32Array([3, 3, -3, -3, 2, 2, 2, Infinity, Infinity, 2, 0]);
    const want = [2, 1, -1, -2, 0, -0, -0, 1, Infinity, NaN, NaN];
    const got = both("remainder", a, b);
    want.forEach((w, i) => expect(same(got[i]!, w), `remainder(${a[i]}, ${b[i]}) = ${got[i]}, want ${w}`).toBe(true));
    want.forEach((w, i) => expect(same(remainder64(a[i]!, b[i]!), w), `reference remainder(${a[i]}, ${b[i]})`).toBe(true));
  });
});
