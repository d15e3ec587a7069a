// Accuracy and special values of the wasm math helpers (exp, log, tanh, sigmoid, pow), in both the f32x4
// (vector loop) and scalar forms, against float64 Math.
import { describe, it, expect, beforeAll } from "vitest";
import type { ElementwiseKernel, NamedKernel } from "../../compiler/codegen/kernel.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { instantiate, type Instance } from "./wasm-harness.js";
import { ew, inp, op, runEw } from "./ew-util.js";
import { refPow } from "./ew-ref.js";

const UNARY = ["exp", "log", "tanh", "sigmoid"] as const;
const kernels: Record<string, ElementwiseKernel> = {};
for (const o of UNARY) {
  kernels[`${o}_v`] = ew(1, [["f32"]], "f32", op(o as PrimOp, "f32", inp(0)));
  kernels[`${o}_s`] = ew(2, [["f32", [false, true]]], "f32", op(o as PrimOp, "f32", inp(0)));
}
kernels.pow_v = ew(1, [["f32"], ["f32"]], "f32", op("pow", "f32", inp(0), inp(1)));
kernels.pow_s = ew(2, [["f32", [false, true]], ["f32", [false, true]]], "f32", op("pow", "f32", inp(0), inp(1)));

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(kernels).map(([name, spec]): NamedKernel => ({ name, spec })));
});

/** Runs the vector and the scalar form; they must agree bit for bit (same algorithm). */
function both(name: string, xs: Float32Array[]): Float32Array {
  const n = xs[0]!.length;
  const v = runEw(inst, `${name}_v`, kernels[`${name}_v`]!, [n], xs) as Float32Array;
  const s = runEw(inst, `${name}_s`, kernels[`${name}_s`]!, [n, 1], xs) as Float32Array;
  for (let i = 0; i < n; i++) {
    if (!(Object.is(v[i], s[i]) || (Number.isNaN(v[i]) && Number.isNaN(s[i])))) {
      throw new Error(`${name}: vector ${v[i]} != scalar ${s[i]} at x = ${xs.map((x) => x[i]).join(", ")}`);
    }
  }
  return v;
}

function sweep(lo: number, hi: number, n: number, log = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / (n - 1);
    a[i] = log ? Math.exp(Math.log(lo) + t * (Math.log(hi) - Math.log(lo))) : lo + t * (hi - lo);
  }
  return a;
}

const same = (got: number, want: number): boolean => Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));

function expectSpecial(name: string, pairs: [number, number][]): void {
  const x = new Float32Array(pairs.map((p) => p[0]));
  const got = both(name, [x]);
  pairs.forEach(([xi, want], i) => {
    if (!same(got[i]!, want)) throw new Error(`${name}(${xi}) = ${got[i]}, want ${want}`);
  });
}

describe("exp", () => {
  it("relative error <= 3e-7 * (1 + |x|) over the normal range", () => {
    const x = sweep(-87.3, 88.7, 100003);
    const got = both("exp", [x]);
    let worst = 0;
    let worstRaw = 0;
    for (let i = 0; i < x.length; i++) {
      const w = Math.exp(x[i]!);
      const rel = Math.abs(got[i]! - w) / w;
      worstRaw = Math.max(worstRaw, rel);
      worst = Math.max(worst, rel / (1 + Math.abs(x[i]!)));
    }
    console.log(`exp: max rel error ${worstRaw.toExponential(2)}, max rel/(1+|x|) ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(3e-7);
    expect(worstRaw).toBeLessThanOrEqual(3e-7);
  });

  it("subnormal results are within one subnormal step", () => {
    const x = sweep(-103.9, -87.4, 5001);
    const got = both("exp", [x]);
    for (let i = 0; i < x.length; i++) expect(Math.abs(got[i]! - Math.exp(x[i]!))).toBeLessThanOrEqual(2 ** -149);
  });

  it("special values", () => {
    expectSpecial("exp", [[0, 1], [-0, 1], [Infinity, Infinity], [-Infinity, 0], [NaN, NaN], [88.8, Infinity], [89, Infinity],
      [1000, Infinity], [-104, 0], [-1000, 0], [3.4e38, Infinity], [-3.4e38, 0]]);
    const [near] = both("exp", [new Float32Array([88.72])]);
    expect(Number.isFinite(near!)).toBe(true);
    expect(Math.abs(near! - Math.exp(Math.fround(88.72))) / Math.exp(Math.fround(88.72))).toBeLessThan(3e-7);
  });
});

describe("log", () => {
  it("relative error over the positive normal range, absolute near 1", () => {
    const x = sweep(1.2e-38, 3.4e38, 100003, true);
    const near1 = sweep(0.5, 2, 20001);
    const all = new Float32Array([...x, ...near1]);
    const got = both("log", [all]);
    let worstRel = 0;
    let worstAbs = 0;
    for (let i = 0; i < all.length; i++) {
      const w = Math.log(all[i]!);
      const err = Math.abs(got[i]! - w);
      worstAbs = Math.max(worstAbs, err);
      if (Math.abs(w) > 1e-30) worstRel = Math.max(worstRel, err / Math.abs(w));
    }
    console.log(`log: max rel error ${worstRel.toExponential(2)}, max abs error ${worstAbs.toExponential(2)}`);
    expect(worstRel).toBeLessThanOrEqual(3e-7);
    expect(worstAbs).toBeLessThanOrEqual(1e-5);
  });

  it("subnormal inputs", () => {
    const x = sweep(1.4e-45, 1.17e-38, 2001, true);
    const got = both("log", [x]);
    for (let i = 0; i < x.length; i++) {
      const w = Math.log(x[i]!);
      expect(Math.abs(got[i]! - w) / Math.abs(w)).toBeLessThanOrEqual(3e-7);
    }
  });

  it("special values", () => {
    expectSpecial("log", [[1, 0], [0, -Infinity], [-0, -Infinity], [-1, NaN], [-1e-45, NaN], [-Infinity, NaN], [Infinity, Infinity], [NaN, NaN]]);
  });
});

describe("tanh and sigmoid", () => {
  it("tanh absolute error <= 2e-7, and relative accuracy for tiny x", () => {
    const x = new Float32Array([...sweep(-12, 12, 100001), ...sweep(-0.7, 0.7, 20001)]);
    const got = both("tanh", [x]);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(got[i]! - Math.tanh(x[i]!)));
    console.log(`tanh: max abs error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(2e-7);
    const tiny = sweep(1e-30, 1e-3, 2001, true);
    const gt = both("tanh", [tiny]);
    for (let i = 0; i < tiny.length; i++) expect(Math.abs(gt[i]! - Math.tanh(tiny[i]!)) / Math.tanh(tiny[i]!)).toBeLessThan(2e-7);
  });

  it("tanh special values", () => {
    expectSpecial("tanh", [[0, 0], [-0, -0], [20, 1], [-20, -1], [Infinity, 1], [-Infinity, -1], [NaN, NaN], [1e-10, Math.fround(1e-10)], [-1e-10, Math.fround(-1e-10)]]);
  });

  it("sigmoid absolute error <= 2e-7, stable at both ends", () => {
    const x = sweep(-40, 40, 100001);
    const got = both("sigmoid", [x]);
    let worst = 0;
    let worstRelNeg = 0;
    for (let i = 0; i < x.length; i++) {
      const w = 1 / (1 + Math.exp(-x[i]!));
      worst = Math.max(worst, Math.abs(got[i]! - w));
      if (x[i]! < 0) worstRelNeg = Math.max(worstRelNeg, Math.abs(got[i]! - w) / w);
    }
    console.log(`sigmoid: max abs error ${worst.toExponential(2)}, max rel error for x < 0 ${worstRelNeg.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(2e-7);
    expect(worstRelNeg).toBeLessThan(1e-5);
    expectSpecial("sigmoid", [[0, 0.5], [Infinity, 1], [-Infinity, 0], [100, 1], [-200, 0], [NaN, NaN]]);
  });
});

describe("pow", () => {
  it("relative error <= 1e-5 for moderate values, both signs of base", () => {
    const n = 40000;
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    let seed = 7;
    const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < n; i++) {
      a[i] = Math.exp((r() - 0.5) * 12) * (i % 4 === 0 ? -1 : 1);
      b[i] = i % 4 === 0 ? Math.round((r() - 0.5) * 16) : (r() - 0.5) * 16;
    }
    const got = both("pow", [a, b]);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const w = refPow(a[i]!, b[i]!);
      if (Math.abs(w) < 1e-30 || Math.abs(w) > 1e30) continue;
      worst = Math.max(worst, Math.abs(got[i]! - w) / Math.abs(w));
    }
    console.log(`pow: max rel error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it("special values", () => {
    const cases: [number, number, number][] = [
      [-2, 3, -8], [-2, 2, 4], [-2, -3, -0.125], [-2, 0.5, NaN], [-8, 1 / 3, NaN], [0, -1, Infinity], [-0, -1, -Infinity], [-0, -2, Infinity], [-0, 0.5, 0],
      [0, 2, 0], [0, 0, 1], [NaN, 0, 1], [2, NaN, NaN], [NaN, 2, NaN], [2, 0, 1], [1, 5, 1], [2, 10, 1024], [4, 0.5, 2],
      [Infinity, -1, 0], [Infinity, 2, Infinity], [-Infinity, 3, -Infinity], [-Infinity, 2, Infinity], [-2, 1e10, Infinity],
      [-0.5, 1e10, 0], [2, 200, Infinity], [2, -200, 0], [-1, 2 ** 24, 1], [-1, 2 ** 24 - 1, -1],
    ];
    const a = new Float32Array(cases.map((c) => c[0]));
    const b = new Float32Array(cases.map((c) => c[1]));
    const got = both("pow", [a, b]);
    cases.forEach(([x, y, want], i) => {
      const g = got[i]!;
      const ok = same(g, want) || (Number.isFinite(want) && want !== 0 && Math.abs(g - want) / Math.abs(want) < 1e-6);
      if (!ok) throw new Error(`pow(${x}, ${y}) = ${g}, want ${want}`);
    });
  });
});
