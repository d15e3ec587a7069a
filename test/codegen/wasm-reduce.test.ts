// Reduce kernels (sum, mean, max, min; f32 and i32) over every axis pattern, empty rows and long rows.
import { describe, it, expect, beforeAll } from "vitest";
import type { NamedKernel, ReduceKernel } from "../../compiler/codegen/kernel.js";
import { buildWasmModule } from "../../compiler/codegen/wasm/module.js";
import { arrayFor, expectArray, instantiate, rng, type AnyArray, type Instance } from "./wasm-harness.js";
import { cst, inp, numel, op as eop, randomData } from "./ew-util.js";

type Op = ReduceKernel["op"];
const OPS: Op[] = ["sum", "mean", "max", "min"];

function refReduce(k: ReduceKernel, ext: number[], x: ArrayLike<number>): { vals: number[]; absSum: number[] } {
  const keptExt = ext.filter((_, a) => !k.reduced[a]);
  const n = numel(keptExt);
  const init = k.op === "max" ? -Infinity : k.op === "min" ? Infinity : 0;
  const vals = new Array<number>(n).fill(k.dtype === "i32" && k.op === "max" ? -2147483648 : k.dtype === "i32" && k.op === "min" ? 2147483647 : init);
  const absSum = new Array<number>(n).fill(0);
  const idx = new Array<number>(ext.length).fill(0);
  for (let i = 0; i < numel(ext); i++) {
    let rem = i;
    for (let a = ext.length - 1; a >= 0; a--) { idx[a] = rem % ext[a]!; rem = Math.floor(rem / ext[a]!); }
    let o = 0;
    for (let a = 0; a < ext.length; a++) if (!k.reduced[a]) o = o * ext[a]! + idx[a]!;
    const v = x[i]!;
    if (k.op === "sum" || k.op === "mean") vals[o] = k.dtype === "i32" ? (vals[o]! + v) | 0 : vals[o]! + v;
    else if (k.op === "max") vals[o] = Math.max(vals[o]!, v);
    else vals[o] = Math.min(vals[o]!, v);
    absSum[o] += Math.abs(v);
  }
  if (k.op === "mean") {
    const count = numel(ext.filter((_, a) => k.reduced[a]));
    for (let o = 0; o < n; o++) { vals[o] = vals[o]! / count; absSum[o] = absSum[o]! / count; }
  }
  return { vals, absSum };
}

function run(inst: Instance, name: string, k: ReduceKernel, ext: number[], x: AnyArray): AnyArray {
  inst.reset();
  const p = inst.put(x);
  const n = numel(ext.filter((_, a) => !k.reduced[a]));
  const o = inst.out(k.dtype, n);
  inst.run(name, p, o, ...ext);
  expect(Array.from(inst.bytes(o + 4 * n, 16)).every((b) => b === 0xab)).toBe(true);
  return inst.read(k.dtype, o, n);
}

function check(inst: Instance, name: string, k: ReduceKernel, ext: number[], x: AnyArray): void {
  const got = run(inst, name, k, ext, x);
  const { vals, absSum } = refReduce(k, ext, x);
  if (k.op === "max" || k.op === "min" || k.dtype === "i32") {
    expectArray(got, vals, {}, `${name} ext=[${ext}]`);
  } else {
    // f32 accumulation in a different order: error bound relative to the sum of magnitudes.
    for (let i = 0; i < vals.length; i++) {
      const tol = 2e-6 * absSum[i]! + 1e-30;
      if (!(Math.abs(got[i]! - vals[i]!) <= tol || (Number.isNaN(got[i]!) && Number.isNaN(vals[i]!)))) {
        throw new Error(`${name} ext=[${ext}] [${i}]: got ${got[i]} want ${vals[i]}`);
      }
    }
  }
}

const patterns = (rank: number): boolean[][] =>
  Array.from({ length: 2 ** rank }, (_, m) => Array.from({ length: rank }, (_, a) => ((m >> a) & 1) === 1));

const cases: Record<string, ReduceKernel> = {};
for (let rank = 0; rank <= 4; rank++) {
  patterns(rank).forEach((reduced, p) => {
    for (const op of OPS) {
      for (const dtype of ["f32", "i32"] as const) {
        if (op === "mean" && dtype === "i32") continue;
        cases[`${op}_${dtype}_${rank}_${p}`] = { kind: "reduce", op, dtype, rank, reduced };
      }
    }
  });
}

let inst: Instance;
beforeAll(async () => {
  inst = await instantiate(Object.entries(cases).map(([name, spec]): NamedKernel => ({ name, spec })));
});

const EXTS: Record<number, number[][]> = {
  0: [[]],
  1: [[1], [3], [4], [5], [17], [255], [257], [1000]],
  2: [[3, 5], [4, 17], [17, 4], [1, 33], [2, 257], [7, 1]],
  3: [[2, 3, 17], [3, 5, 4], [5, 1, 9]],
  4: [[2, 3, 4, 5], [3, 2, 1, 17]],
};

describe("reduce over every axis pattern", () => {
  for (let rank = 0; rank <= 4; rank++) {
    it(`rank ${rank}: sum/mean/max/min, f32 and i32`, () => {
      const r = rng(rank * 13 + 1);
      patterns(rank).forEach((_, p) => {
        for (const op of OPS) for (const dtype of ["f32", "i32"] as const) {
          const name = `${op}_${dtype}_${rank}_${p}`;
          const k = cases[name];
          if (!k) continue;
          for (const ext of EXTS[rank]!) check(inst, name, k, ext, randomData(dtype, numel(ext), r, -100, 100));
        }
      });
    });
  }

  it("f32 max/min propagate NaN; -inf/+inf inputs", () => {
    const x = new Float32Array([1, NaN, 3, -Infinity, 5, 6, 7, 8, 9]);
    expectArray(run(inst, "max_f32_1_1", cases.max_f32_1_1!, [9], x), [NaN]);
    expectArray(run(inst, "min_f32_1_1", cases.min_f32_1_1!, [9], x), [NaN]);
    const y = new Float32Array([1, 2, -Infinity, 4, 5]);
    expectArray(run(inst, "min_f32_1_1", cases.min_f32_1_1!, [5], y), [-Infinity]);
    expectArray(run(inst, "max_f32_1_1", cases.max_f32_1_1!, [5], y), [5]);
  });

  it("i32 sum wraps; i32 max/min over extremes", () => {
    const x = new Int32Array([2147483647, 1, 5, -2147483648, 2147483647, 7]);
    expectArray(run(inst, "sum_i32_1_1", cases.sum_i32_1_1!, [6], x), [(2147483647 + 1 + 5 - 2147483648 + 2147483647 + 7) | 0]);
    expectArray(run(inst, "max_i32_1_1", cases.max_i32_1_1!, [6], x), [2147483647]);
    expectArray(run(inst, "min_i32_1_1", cases.min_i32_1_1!, [6], x), [-2147483648]);
  });

  it("empty reductions give sum 0, mean NaN, max -inf, min +inf (i32: INT_MIN / INT_MAX)", () => {
    // rank 2, reduce axis 1 (pattern 2), rows of length 0
    const want: Record<string, number> = { sum_f32: 0, mean_f32: NaN, max_f32: -Infinity, min_f32: Infinity, sum_i32: 0, max_i32: -2147483648, min_i32: 2147483647 };
    for (const [key, v] of Object.entries(want)) {
      const [op, dt] = key.split("_") as [Op, "f32" | "i32"];
      expectArray(run(inst, `${key}_2_2`, cases[`${key}_2_2`]!, [3, 0], arrayFor(dt, 0)), [v, v, v], {}, key);
      expectArray(run(inst, `${key}_1_1`, cases[`${key}_1_1`]!, [0], arrayFor(dt, 0)), [v], {}, key);
      // reduce everything of a [0, 4] tensor
      expectArray(run(inst, `${key}_2_3`, cases[`${key}_2_3`]!, [0, 4], arrayFor(dt, 0)), [v], {}, key);
      // kept axis empty: nothing to write
      expect(run(inst, `${key}_2_2`, cases[`${key}_2_2`]!, [0, 5], arrayFor(dt, 0)).length).toBe(0);
      void op;
    }
  });
});

// Short reduced inner axes (pooling windows, reduce-short.ts: four rows in the lanes for L <= 16; L = 4 by
// shuffles). Row counts around multiples of 4 (the scalar tail), lengths either side of 4 and of the 16 limit,
// and an outer reduced axis (outputs updated more than once).
describe("reduce over a short inner axis", () => {
  it("rank 2, inner axis reduced: every op and dtype, L = 1..17, rows 1..203", () => {
    const r = rng(77);
    for (const op of OPS) for (const dtype of ["f32", "i32"] as const) {
      const name = `${op}_${dtype}_2_2`;
      const k = cases[name];
      if (!k) continue;
      for (const rows of [1, 3, 4, 7, 64, 203]) for (const len of [1, 2, 3, 4, 5, 8, 9, 16, 17]) {
        check(inst, name, k, [rows, len], randomData(dtype, rows * len, r, -100, 100));
      }
    }
  });

  it("rank 3: kept axes merged before the short axis, and an outer reduced axis", () => {
    const r = rng(78);
    for (const op of OPS) for (const dtype of ["f32", "i32"] as const) {
      for (const [p, ext] of [[4, [5, 6, 4]], [4, [3, 3, 9]], [5, [3, 7, 4]], [5, [2, 9, 9]], [5, [4, 5, 2]]] as const) {
        const name = `${op}_${dtype}_3_${p}`;
        const k = cases[name];
        if (k) check(inst, name, k, [...ext], randomData(dtype, numel([...ext]), r, -100, 100));
      }
    }
  });

  it("f32 max/min over 2x2 and 3x3 windows: a NaN in any tap of any row wins, a -inf tap elsewhere", () => {
    for (const len of [4, 9]) {
      for (let at = 0; at < 6 * len; at += 1) {
        const x = Float32Array.from({ length: 6 * len }, (_, i) => (i % 3) - 1);
        x[at] = NaN;
        x[(at + 5) % x.length] = -Infinity;
        // Math.max/min propagate NaN like f32x4.max/min.
        const rows = Array.from({ length: 6 }, (_, row) => Array.from(x.subarray(row * len, (row + 1) * len)));
        const want = rows.map((v) => Math.max(...v));
        const wantMin = rows.map((v) => Math.min(...v));
        expect(want.filter(Number.isNaN).length).toBe(1);
        expectArray(run(inst, "max_f32_2_2", cases.max_f32_2_2!, [6, len], x), want, {}, `max len ${len} NaN at ${at}`);
        expectArray(run(inst, "min_f32_2_2", cases.min_f32_2_2!, [6, len], x), wantMin, {}, `min len ${len} NaN at ${at}`);
      }
    }
  });
});

// Short axes with a fused prologue (reduce-short.ts shortRowsExpr): max-pool backward's first-maximum index,
// min over taps of where(x == rowmax, iota, BIG), with x walked (gathered), rowmax broadcast along the taps,
// iota along the rows; and a float sum of x * w + c with c broadcast along both. The reference is plain JS.
describe("short inner axis with a prologue", () => {
  const BIG = 1 << 30;
  const firstIdx: ReduceKernel = {
    kind: "reduce", op: "min", dtype: "i32", rank: 2, reduced: [false, true],
    prologue: {
      inputs: [{ dtype: "f32", bcast: [false, false] }, { dtype: "f32", bcast: [false, true] }, { dtype: "i32", bcast: [true, false] }],
      expr: eop("where", "i32", eop("eq", "bool", inp(0), inp(1)), inp(2), cst(BIG, "i32")),
    },
  };
  const fma: ReduceKernel = {
    kind: "reduce", op: "sum", dtype: "f32", rank: 2, reduced: [false, true],
    prologue: {
      inputs: [{ dtype: "f32", bcast: [false, false] }, { dtype: "f32", bcast: [true, false] }, { dtype: "f32", bcast: [true, true] }],
      expr: eop("add", "f32", eop("mul", "f32", inp(0), inp(1)), inp(2)),
    },
  };
  let pinst: Instance;
  beforeAll(async () => {
    pinst = await instantiate([{ name: "first_idx", spec: firstIdx }, { name: "fma", spec: fma }]);
  });

  it("first index of the row maximum (ties to the first), rows 1..203, L = 1..17", () => {
    const r = rng(91);
    for (const rows of [1, 3, 4, 7, 64, 203]) for (const len of [1, 2, 3, 4, 5, 9, 16, 17]) {
      // Small integers, so ties are common.
      const x = Float32Array.from({ length: rows * len }, () => Math.floor(r() * 4));
      const mx = Float32Array.from({ length: rows }, (_, i) => Math.max(...x.subarray(i * len, (i + 1) * len)));
      const iota = Int32Array.from({ length: len }, (_, i) => i);
      pinst.reset();
      const args = [pinst.put(x), pinst.put(mx), pinst.put(iota)];
      const o = pinst.out("i32", rows);
      pinst.run("first_idx", ...args, o, rows, len);
      const want = Array.from({ length: rows }, (_, i) => Array.from(x.subarray(i * len, (i + 1) * len)).indexOf(mx[i]!));
      expectArray(pinst.read("i32", o, rows), want, {}, `first_idx [${rows}, ${len}]`);
    }
  });

  it("sum of x * w + c, w broadcast along the rows and c along both", () => {
    const r = rng(92);
    for (const rows of [1, 5, 8, 203]) for (const len of [1, 3, 4, 9, 16]) {
      const x = randomData("f32", rows * len, r, -10, 10) as Float32Array;
      const w = randomData("f32", len, r, -10, 10) as Float32Array;
      const c = Float32Array.of(0.5);
      pinst.reset();
      const args = [pinst.put(x), pinst.put(w), pinst.put(c)];
      const o = pinst.out("f32", rows);
      pinst.run("fma", ...args, o, rows, len);
      const got = pinst.read("f32", o, rows);
      for (let i = 0; i < rows; i++) {
        let want = 0;
        let mag = 0;
        for (let t = 0; t < len; t++) { const v = Math.fround(Math.fround(x[i * len + t]! * w[t]!) + 0.5); want += v; mag += Math.abs(v); }
        expect(Math.abs(got[i]! - want), `fma [${rows}, ${len}] row ${i}`).toBeLessThanOrEqual(2e-6 * mag + 1e-30);
      }
    }
  });
});

describe("reduce errors", () => {
  it("rejects mean over i32 and f16 inputs", async () => {
    await expect(buildWasmModule([{ name: "r", spec: { kind: "reduce", op: "mean", dtype: "i32", rank: 1, reduced: [true] } }])).rejects.toThrow(/mean needs f32/);
    await expect(buildWasmModule([{ name: "r", spec: { kind: "reduce", op: "sum", dtype: "f16", rank: 1, reduced: [true] } }])).rejects.toThrow("wasm backend: dtype f16 not supported yet");
  });
});
