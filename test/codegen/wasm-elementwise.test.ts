// Elementwise kernels on the wasm backend: every op, dtype, size and broadcast pattern against a float64 reference.
import { describe, it, expect, beforeAll } from "vitest";
import type { NamedKernel, ElementwiseKernel } from "../../compiler/codegen/kernel.js";
import type { DType } from "../../compiler/ir/types.js";
import type { PrimOp } from "../../compiler/ops/types.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { arrayFor, expectArray, instantiate, rng, SIZES, type Instance, type Tol } from "./wasm-harness.js";
import { cast, cst, ew, inp, inShape, numel, op, randomData, refEw, runEw } from "./ew-util.js";

const EXACT: Tol = {};

/** Builds all kernels in one module, then checks each case. */
async function build(cases: Record<string, ElementwiseKernel>): Promise<Instance> {
  return instantiate(Object.entries(cases).map(([name, spec]): NamedKernel => ({ name, spec })));
}

function check(inst: Instance, name: string, k: ElementwiseKernel, ext: number[], data: ReturnType<typeof randomData>[], tol: Tol = EXACT): void {
  const got = runEw(inst, name, k, ext, data);
  const want = refEw(k, ext, data);
  expectArray(got, want, tol, `${name} ext=[${ext}]`);
}

describe("unary f32 ops", () => {
  const ops: [PrimOp, Tol, number, number][] = [
    ["neg", EXACT, -10, 10], ["abs", EXACT, -10, 10], ["relu", EXACT, -10, 10], ["sqrt", EXACT, 0, 100],
    ["rsqrt", EXACT, 0.01, 100], ["exp", { rel: 2e-6 }, -20, 20], ["log", { abs: 1e-6, rel: 1e-6 }, 1e-3, 1e3],
    ["tanh", { abs: 2e-7 }, -6, 6], ["sigmoid", { abs: 2e-7 }, -20, 20],
  ];
  const cases: Record<string, ElementwiseKernel> = {};
  for (const [o] of ops) {
    cases[`${o}_vec`] = ew(1, [["f32"]], "f32", op(o, "f32", inp(0)));
    // An inner axis of extent 1 that cannot merge with the outer one: every element takes the scalar path.
    cases[`${o}_scalar`] = ew(2, [["f32", [false, true]]], "f32", op(o, "f32", inp(0)));
  }
  let inst: Instance;
  beforeAll(async () => { inst = await build(cases); });

  for (const [o, tol, lo, hi] of ops) {
    it(`${o} at every size, vector and scalar paths`, () => {
      const r = rng(o.length * 7919);
      for (const n of SIZES) {
        const x = randomData("f32", n, r, lo, hi);
        if (n > 2) { x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; }
        check(inst, `${o}_vec`, cases[`${o}_vec`]!, [n], [x], tol);
        check(inst, `${o}_scalar`, cases[`${o}_scalar`]!, [n, 1], [x], tol);
      }
    });
  }

  it("special values: -0, NaN and infinities", () => {
    const x = new Float32Array([-0, 0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38]);
    for (const o of ["neg", "abs", "relu", "sqrt", "rsqrt"] as const) check(inst, `${o}_vec`, cases[`${o}_vec`]!, [8], [x]);
  });
});

describe("binary ops with broadcasting", () => {
  const fops: PrimOp[] = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"];
  const iops: PrimOp[] = ["add", "sub", "mul", "div", "maximum", "minimum"];
  const patterns = [[false, false], [false, true], [true, false], [true, true]];
  const cases: Record<string, ElementwiseKernel> = {};
  for (const [dt, list] of [["f32", fops], ["i32", iops]] as const) {
    for (const o of list) {
      patterns.forEach((pa, i) => patterns.forEach((pb, j) => {
        cases[`${dt}_${o}_${i}${j}`] = ew(2, [[dt, pa], [dt, pb]], dt, op(o, dt, inp(0), inp(1)));
      }));
      cases[`${dt}_${o}_r3`] = ew(3, [[dt, [false, true, false]], [dt, [true, false, true]]], dt, op(o, dt, inp(0), inp(1)));
    }
  }
  let inst: Instance;
  beforeAll(async () => { inst = await build(cases); });

  for (const [dt, list] of [["f32", fops], ["i32", iops]] as const) {
    for (const o of list) {
      it(`${dt} ${o}: every broadcast pattern of two rank-2 operands, rank 3 mixed`, () => {
        const r = rng(o.length * 31 + dt.length);
        const lo = o === "pow" ? 0.1 : -10;
        const tol = o === "pow" ? { rel: 1e-5, abs: 1e-30 } : EXACT;
        for (const ext of [[5, 7], [3, 17], [1, 1], [4, 1], [1, 9], [2, 257], [0, 5], [5, 0]]) {
          patterns.forEach((pa, i) => patterns.forEach((pb, j) => {
            const k = cases[`${dt}_${o}_${i}${j}`]!;
            const a = randomData(dt, numel(inShape(ext, pa)), r, lo, 10);
            const b = randomData(dt, numel(inShape(ext, pb)), r, o === "pow" ? -4 : -10, o === "pow" ? 4 : 10);
            check(inst, `${dt}_${o}_${i}${j}`, k, ext, [a, b], tol);
          }));
        }
        const k3 = cases[`${dt}_${o}_r3`]!;
        for (const ext of [[3, 4, 5], [2, 1, 9], [4, 3, 1]]) {
          const a = randomData(dt, numel(inShape(ext, k3.inputs[0]!.bcast)), r, lo, 10);
          const b = randomData(dt, numel(inShape(ext, k3.inputs[1]!.bcast)), r, o === "pow" ? -4 : -10, o === "pow" ? 4 : 10);
          check(inst, `${dt}_${o}_r3`, k3, ext, [a, b], tol);
        }
      });
    }
  }

  it("f32 maximum/minimum propagate NaN and order -0 < 0 like Math.max/min", () => {
    const a = new Float32Array([NaN, 1, -0, 0, -Infinity, NaN]);
    const b = new Float32Array([1, NaN, 0, -0, Infinity, NaN]);
    check(inst, "f32_maximum_00", cases["f32_maximum_00"]!, [1, 6], [a, b]);
    check(inst, "f32_minimum_00", cases["f32_minimum_00"]!, [1, 6], [a, b]);
  });

  it("i32 division truncates, x/0 = 0 and INT_MIN/-1 wraps (no trap)", () => {
    const a = new Int32Array([7, -7, 7, -7, 5, -2147483648, -2147483648, 0, 123]);
    const b = new Int32Array([2, 2, -2, -2, 0, -1, 0, 0, 1]);
    const got = runEw(inst, "i32_div_00", cases["i32_div_00"]!, [1, 9], [a, b]);
    expect(Array.from(got)).toEqual([3, -3, -3, 3, 0, -2147483648, 0, 0, 123]);
  });

  it("i32 add/sub/mul wrap", () => {
    const a = new Int32Array([2147483647, -2147483648, 65536, -3]);
    const b = new Int32Array([1, 1, 65536, 5]);
    expect(Array.from(runEw(inst, "i32_add_00", cases["i32_add_00"]!, [1, 4], [a, b]))).toEqual([-2147483648, -2147483647, 131072, 2]);
    expect(Array.from(runEw(inst, "i32_sub_00", cases["i32_sub_00"]!, [1, 4], [a, b]))).toEqual([2147483646, 2147483647, 0, -8]);
    expect(Array.from(runEw(inst, "i32_mul_00", cases["i32_mul_00"]!, [1, 4], [a, b]))).toEqual([2147483647, -2147483648, 0, -15]);
  });
});

describe("compare, where, cast, narrow ints, unary i32", () => {
  const cmps: PrimOp[] = ["eq", "ne", "lt", "le", "gt", "ge"];
  const small: DType[] = ["f32", "i32", "bool", "u8", "i8"];
  const cases: Record<string, ElementwiseKernel> = {};
  for (const dt of ["f32", "i32", "u8"] as const) for (const c of cmps) {
    cases[`${c}_${dt}`] = ew(1, [[dt], [dt]], "bool", op(c, "bool", inp(0), inp(1)));
  }
  for (const from of small) for (const to of small) cases[`cast_${from}_${to}`] = ew(1, [[from]], to, cast(inp(0), to));
  cases.where_bool = ew(2, [["bool", [false, false]], ["f32", [true, false]], ["f32", [false, true]]], "f32", op("where", "f32", inp(0), inp(1), inp(2)));
  cases.where_i32 = ew(1, [["bool"], ["i32"], ["i32"]], "i32", op("where", "i32", inp(0), inp(1), inp(2)));
  // Vector path with a bool intermediate: where(a > b, a * 2, cast(a < 0) + b)
  const a = inp(0), b = inp(1);
  cases.where_fused = ew(1, [["f32"], ["f32"]], "f32",
    op("where", "f32", op("gt", "bool", a, b), op("mul", "f32", a, cst(2, "f32")), op("add", "f32", cast(op("lt", "bool", a, cst(0, "f32")), "f32"), b)));
  cases.where_fused_i32 = ew(1, [["i32"], ["i32"]], "i32",
    op("where", "i32", op("ne", "bool", a, b), op("maximum", "i32", a, b), cast(op("le", "bool", a, cst(0, "i32")), "i32")));
  // Vector casts between f32, i32 and bool intermediates.
  // The loss scaler's update: where(flag, w - 0.1 * g, w) with a bool flag broadcast everywhere, and a u8 column
  // broadcast along the inner axis: both are loaded once per row and splatted, so the vector loop still runs.
  cases.where_flag = ew(2, [["bool", [true, true]], ["f32"], ["f32"]], "f32",
    op("where", "f32", inp(0), op("sub", "f32", inp(1), op("mul", "f32", cst(0.1, "f32"), inp(2))), inp(1)));
  cases.u8_row = ew(2, [["u8", [false, true]], ["f32"]], "f32", op("mul", "f32", cast(inp(0), "f32"), inp(1)));
  cases.cast_chain = ew(1, [["f32"], ["f32"]], "f32", op("where", "f32", cast(a, "bool"), b, cast(cast(b, "i32"), "f32")));
  cases.cast_chain_i32 = ew(1, [["i32"], ["i32"]], "i32", op("add", "i32", cast(cast(a, "bool"), "i32"), cast(cast(b, "f32"), "i32")));
  for (const o of ["neg", "abs", "relu"] as const) cases[`${o}_i32`] = ew(1, [["i32"]], "i32", op(o, "i32", inp(0)));
  cases.u8_add = ew(1, [["u8"], ["u8"]], "u8", op("add", "u8", a, b));
  cases.i8_mul = ew(1, [["i8"], ["i8"]], "i8", op("mul", "i8", a, b));
  cases.i8_neg = ew(1, [["i8"]], "i8", op("neg", "i8", a));
  cases.u8_max = ew(2, [["u8", [false, true]], ["u8", [true, false]]], "u8", op("maximum", "u8", a, b));
  let inst: Instance;
  beforeAll(async () => { inst = await build(cases); });

  it("compares give bool 0/1 (NaN compares unequal)", () => {
    const r = rng(5);
    for (const dt of ["f32", "i32", "u8"] as const) for (const c of cmps) for (const n of SIZES) {
      const x = randomData(dt, n, r, -3, 3);
      const y = randomData(dt, n, r, -3, 3);
      for (let i = 0; i < n; i += 3) y[i] = x[i]!; // plenty of equal pairs
      if (dt === "f32" && n > 4) { x[1] = NaN; y[2] = NaN; x[3] = -0; y[3] = 0; }
      check(inst, `${c}_${dt}`, cases[`${c}_${dt}`]!, [n], [x, y]);
    }
  });

  it("casts between f32, i32, bool, u8, i8 (truncating, saturating, wrapping)", () => {
    const specials: Record<string, number[]> = {
      f32: [0, -0, 0.5, -0.5, 1.9, -1.9, 255.5, 256, 300.7, -129.2, 1e10, -1e10, NaN, Infinity, -Infinity, 2147483520],
      i32: [0, 1, -1, 127, 128, 255, 256, -128, -129, 2147483647, -2147483648, 16777217, 1000],
      bool: [0, 1, 1, 0],
      u8: [0, 1, 127, 128, 255],
      i8: [0, 1, -1, 127, -128],
    };
    for (const from of small) for (const to of small) {
      const x = arrayFor(from, specials[from]!);
      check(inst, `cast_${from}_${to}`, cases[`cast_${from}_${to}`]!, [x.length], [x]);
      const r = randomData(from, 257, rng(from.length + to.length), -300, 300);
      check(inst, `cast_${from}_${to}`, cases[`cast_${from}_${to}`]!, [257], [r]);
    }
  });

  it("a narrow input broadcast along the inner axis (bool flag, u8 per row) keeps the right answers", () => {
    const r = rng(12);
    for (const ext of [[1, 1], [3, 5], [4, 17], [2, 257]]) {
      for (const name of ["where_flag", "u8_row"] as const) {
        const k = cases[name]!;
        for (let rep = 0; rep < 2; rep++) {
          const data = k.inputs.map((i) => randomData(i.dtype, numel(inShape(ext, i.bcast)), r));
          if (name === "where_flag") (data[0] as Uint8Array)[0] = rep; // both values of the flag
          check(inst, name, k, ext, data);
        }
      }
    }
  });

  it("where with bool condition, broadcast branches, and fused vector forms", () => {
    const r = rng(11);
    for (const ext of [[1, 1], [3, 5], [4, 17], [2, 257]]) {
      const k = cases.where_bool!;
      const data = k.inputs.map((i) => randomData(i.dtype, numel(inShape(ext, i.bcast)), r));
      check(inst, "where_bool", k, ext, data);
    }
    for (const n of SIZES) {
      check(inst, "where_i32", cases.where_i32!, [n], [randomData("bool", n, r), randomData("i32", n, r), randomData("i32", n, r)]);
      const x = randomData("f32", n, r);
      const y = randomData("f32", n, r);
      for (let i = 0; i < n; i += 4) y[i] = x[i]!;
      check(inst, "where_fused", cases.where_fused!, [n], [x, y]);
      check(inst, "where_fused_i32", cases.where_fused_i32!, [n], [randomData("i32", n, r), randomData("i32", n, r)]);
      const z = randomData("f32", n, r, -3, 3);
      for (let i = 0; i < n; i += 3) z[i] = 0;
      if (n > 5) { z[1] = NaN; z[4] = -0; }
      check(inst, "cast_chain", cases.cast_chain!, [n], [z, randomData("f32", n, r, -5, 5)]);
      const zi = randomData("i32", n, r);
      for (let i = 0; i < n; i += 3) zi[i] = 0;
      check(inst, "cast_chain_i32", cases.cast_chain_i32!, [n], [zi, randomData("i32", n, r)]);
    }
  });

  it("i32 neg/abs/relu (INT_MIN wraps)", () => {
    const x = new Int32Array([0, 1, -1, 5, -5, 2147483647, -2147483648, 3, -7]);
    for (const o of ["neg", "abs", "relu"]) check(inst, `${o}_i32`, cases[`${o}_i32`]!, [x.length], [x]);
    for (const n of SIZES) check(inst, "abs_i32", cases.abs_i32!, [n], [randomData("i32", n, rng(n))]);
  });

  it("u8/i8 arithmetic wraps to the dtype", () => {
    const r = rng(3);
    for (const n of SIZES) {
      check(inst, "u8_add", cases.u8_add!, [n], [randomData("u8", n, r), randomData("u8", n, r)]);
      check(inst, "i8_mul", cases.i8_mul!, [n], [randomData("i8", n, r), randomData("i8", n, r)]);
      check(inst, "i8_neg", cases.i8_neg!, [n], [randomData("i8", n, r)]);
    }
    expect(Array.from(runEw(inst, "u8_add", cases.u8_add!, [2], [new Uint8Array([250, 255]), new Uint8Array([10, 1])]))).toEqual([4, 0]);
    check(inst, "u8_max", cases.u8_max!, [5, 3], [randomData("u8", 5, r), randomData("u8", 3, r)]);
  });
});

describe("ranks 0-4, random broadcast patterns, shared subexpressions, constants", () => {
  const cases: Record<string, ElementwiseKernel> = {};
  const r = rng(2024);
  const exts: Record<number, number[][]> = { 0: [[]], 1: [[0], [1], [5], [17]], 2: [[3, 5], [1, 4], [6, 1]], 3: [[2, 3, 4], [3, 1, 5], [1, 1, 9]], 4: [[2, 3, 4, 5], [2, 1, 3, 4], [1, 2, 1, 6], [3, 2, 2, 0]] };
  const patternsFor: Record<number, boolean[][][]> = {};
  for (let rank = 0; rank <= 4; rank++) {
    patternsFor[rank] = [];
    for (let p = 0; p < (rank === 0 ? 1 : 6); p++) {
      const pat = [0, 1, 2].map(() => Array.from({ length: rank }, () => r() < 0.4));
      patternsFor[rank]!.push(pat);
      const [a, b, c] = [inp(0), inp(1), inp(2)];
      cases[`f_${rank}_${p}`] = ew(rank, [["f32", pat[0]], ["f32", pat[1]], ["f32", pat[2]]], "f32", op("add", "f32", op("mul", "f32", a, b), c));
      cases[`m_${rank}_${p}`] = ew(rank, [["u8", pat[0]], ["f32", pat[1]], ["i32", pat[2]]], "f32",
        op("sub", "f32", op("mul", "f32", cast(a, "f32"), b), cast(c, "f32")));
      cases[`i_${rank}_${p}`] = ew(rank, [["i32", pat[0]], ["i32", pat[1]], ["i32", pat[2]]], "i32", op("sub", "i32", op("mul", "i32", a, b), c));
    }
  }
  // A DAG: t = a + b is used three times, u = exp(t) twice.
  const t = op("add", "f32", inp(0), inp(1));
  const u = op("exp", "f32", t);
  cases.dag = ew(1, [["f32"], ["f32"]], "f32", op("div", "f32", op("mul", "f32", t, u), op("add", "f32", u, op("abs", "f32", t))));
  cases.consts = ew(1, [["f32"]], "f32", op("where", "f32", op("gt", "bool", inp(0), cst(0.25, "f32")), op("maximum", "f32", inp(0), cst(1.5, "f32")), cst(-2, "f32")));
  cases.iconsts = ew(1, [["i32"]], "i32", op("add", "i32", op("mul", "i32", inp(0), cst(3, "i32")), cast(cst(1, "bool"), "i32")));
  cases.scalar_out = ew(0, [["f32"]], "f32", op("mul", "f32", inp(0), cst(2, "f32")));
  cases.copy_only = ew(2, [["f32", [true, false]]], "f32", inp(0));
  cases.fill = ew(2, [], "f32", cst(3.5, "f32"));
  cases.fill_bool = ew(1, [], "bool", op("lt", "bool", cst(1, "i32"), cst(2, "i32")));
  let inst: Instance;
  beforeAll(async () => { inst = await build(cases); });

  for (let rank = 0; rank <= 4; rank++) {
    it(`rank ${rank}: f32 (vector), mixed u8/i32 (scalar) and i32 kernels`, () => {
      const rr = rng(rank + 100);
      patternsFor[rank]!.forEach((pat, p) => {
        for (const ext of exts[rank]!) {
          for (const [pre, types] of [["f", ["f32", "f32", "f32"]], ["m", ["u8", "f32", "i32"]], ["i", ["i32", "i32", "i32"]]] as const) {
            const data = pat.map((bc, i) => randomData(types[i]!, numel(inShape(ext, bc)), rr));
            check(inst, `${pre}_${rank}_${p}`, cases[`${pre}_${rank}_${p}`]!, ext, data, pre === "i" ? EXACT : { rel: 1e-6, abs: 1e-6 });
          }
        }
      });
    });
  }

  it("shared subexpressions are computed once and correctly", () => {
    const rr = rng(9);
    for (const n of SIZES) check(inst, "dag", cases.dag!, [n], [randomData("f32", n, rr, -3, 3), randomData("f32", n, rr, -3, 3)], { rel: 1e-6, abs: 1e-7 });
  });

  it("constants of each dtype, rank-0 output, identity copy", () => {
    const rr = rng(10);
    for (const n of SIZES) {
      check(inst, "consts", cases.consts!, [n], [randomData("f32", n, rr, -3, 3)]);
      check(inst, "iconsts", cases.iconsts!, [n], [randomData("i32", n, rr)]);
    }
    check(inst, "scalar_out", cases.scalar_out!, [], [new Float32Array([21])]);
    check(inst, "copy_only", cases.copy_only!, [4, 7], [randomData("f32", 7, rr)]);
    check(inst, "fill", cases.fill!, [3, 5], []);
    check(inst, "fill_bool", cases.fill_bool!, [6], []);
  });
});

describe("unsupported dtypes", () => {
  // f16/bf16 are storage formats the kernels convert (wasm-half*.test.ts); f64 has no wasm kernels.
  for (const d of ["f64"] as const) {
    it(`${d} is rejected with a clear error`, async () => {
      const k = ew(1, [[d]], d, op("neg", d, inp(0)));
      await expect(buildWasmModule([{ name: "k", spec: k }])).rejects.toThrow(`wasm backend: dtype ${d} not supported yet`);
      const c = ew(1, [["f32"]], d, cast(inp(0), d));
      await expect(buildWasmModule([{ name: "c", spec: c }])).rejects.toThrow(/dtype .* not supported yet.*kernel "c"/);
    });
  }
  it("float-only ops reject integer operands", async () => {
    const k = ew(1, [["i32"]], "i32", op("exp", "i32", inp(0)));
    await expect(buildWasmModule([{ name: "k", spec: k }])).rejects.toThrow(/exp needs a float operand/);
  });
});
