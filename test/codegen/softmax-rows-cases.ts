// Shared by softmax-rows.test.ts (plain build) and softmax-rows.relaxed.test.ts: softmax and log_softmax rows on the
// row kernel (codegen/plan-rows.ts, wasm/softmax-rows.ts) against the float64 reference, against the same program
// built without fusion (the separate max / sub,exp,sum / div kernels: special values must come out the same), and
// against PyTorch's float32 results (softmax-rows-goldens.json, from scripts/torch-softmax-rows-goldens.py).
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, lcgInput, type Input } from "../helpers/backend.js";
import { compileBoth } from "../passes/fusion-helpers.js";

export type Build = "plain" | "relaxed";

async function run(ir: IRModule, build: Build, x: Input): Promise<{ out: Float32Array; kernels: string[] }> {
  const b = await buildWasm(ir, "t", { wat: false });
  const m = await loadKilnModule(b.manifest, build === "relaxed" ? b.wasmRelaxed : b.wasm, { threads: 1 });
  try {
    const y = m.call("f", { x: new Tensor("f32", x.shape, x.data) });
    const out = Float32Array.from((Array.isArray(y) ? y[0]! : y).data as ArrayLike<number>);
    return { out, kernels: b.manifest.functions[0]!.steps.map((s) => s.ops.join(",")) };
  } finally {
    m.dispose();
  }
}

/** Rows of length c: random values in [-10, 10), then -inf masks, an all -inf row, +inf, NaN, huge and tiny values. */
export function specialRows(c: number): Input {
  const R = 8;
  const x = lcgInput([R, c], 17 + c).data.map((v) => v * 10);
  const set = (r: number, j: number, v: number) => { if (j < c) x[r * c + j] = v; };
  for (let j = 0; j < c; j += 3) set(1, j, -Infinity); // masked positions (row 1 keeps the others)
  for (let j = 0; j < c; j++) set(2, j, -Infinity); // all masked: NaN, as x - max is -inf - -inf
  set(3, c - 1, Infinity);
  set(4, c >> 1, NaN);
  for (let j = 0; j < c; j++) set(5, j, (j % 2 ? -1 : 1) * 1e37 * ((j % 7) + 1)); // huge, with differences still finite
  for (let j = 0; j < c; j++) set(6, j, (j % 3) * 1e-40);
  for (let j = 0; j < c; j++) set(7, j, -90 - j); // exps far below the fast path's range
  return { dtype: "f32", shape: [R, c], data: x };
}

const SRC = {
  softmax: (s: string) => `fn f(x: f32[${s}]) -> f32[${s}] { return softmax(x, axis: -1) }`,
  log_softmax: (s: string) => `fn f(x: f32[${s}]) -> f32[${s}] { return log_softmax(x, axis: -1) }`,
};

/** The row kernel's result vs the reference (tolerance) and vs the unfused build (NaN, inf and zeros identical). */
export async function checkRows(mode: keyof typeof SRC, x: Input, build: Build, unfusedRel = 4e-7): Promise<void> {
  const { fused, plain } = compileBoth(SRC[mode](x.shape.join(", ")));
  const a = await run(fused, build, x);
  expect(a.kernels, "one row kernel").toEqual([mode]);
  const b = await run(plain, build, x);
  expect(b.kernels.length).toBeGreaterThan(2);
  const ref = evaluateGraph(fused.functions[0]!, { x }, new Map())[0]!;
  const what = `${mode} ${build} [${x.shape.join(", ")}]`;
  // log_softmax's log(sum) has f32's absolute error (about 6e-8) whatever its size: an absolute tolerance there.
  expectClose(new Tensor("f32", x.shape, a.out), ref, what, 4e-6, mode === "softmax" ? 1e-30 : 1e-6);
  for (let i = 0; i < a.out.length; i++) {
    const [u, v] = [a.out[i]!, b.out[i]!];
    if (!Number.isFinite(v) || v === 0) expect(Object.is(u, v) || (Number.isNaN(u) && Number.isNaN(v)), `${what}[${i}]: ${u} vs unfused ${v}`).toBe(true);
    // log_softmax's log(sum) near 0 (a short row, one score far above the rest) keeps f32's absolute error of a sum
    // added in another order (the unfused kernel's): 2 ulp of 1 more there.
    else expect(Math.abs(u - v), `${what}[${i}]: ${u} vs unfused ${v}`).toBeLessThanOrEqual(unfusedRel * Math.abs(v) + (mode === "softmax" ? 1e-38 : 2.4e-7));
  }
}

const dec = (v: number | string) => (typeof v === "number" ? v : v === "nan" ? NaN : v === "inf" ? Infinity : -Infinity);

/** Each golden row from PyTorch, one program per row length. */
export async function checkTorchGoldens(build: Build): Promise<void> {
  const goldens = JSON.parse(readFileSync(new URL("./softmax-rows-goldens.json", import.meta.url), "utf8")) as { rows: Record<string, (number | string)[]>[] };
  for (const row of goldens.rows) {
    const xs = row.x!.map(dec);
    for (const mode of ["softmax", "log_softmax"] as const) {
      const { fused } = compileBoth(SRC[mode](`1, ${xs.length}`));
      const { out, kernels } = await run(fused, build, { dtype: "f32", shape: [1, xs.length], data: xs });
      expect(kernels).toEqual([mode]);
      row[mode]!.map(dec).forEach((want, i) => {
        const got = out[i]!;
        if (!Number.isFinite(want)) expect(got, `${mode} torch row of ${xs.length} [${i}]`).toBe(want);
        // A few ulp between two f32 implementations (exp, sum order, reciprocal); log(sum) near log(1) = 0 has f32's
        // absolute error (both libraries): 2 ulp of 1 more for log_softmax.
        else expect(Math.abs(got - want), `${mode} torch row of ${xs.length} [${i}]: ${got} vs ${want}`).toBeLessThanOrEqual(4e-7 * Math.abs(want) + (mode === "softmax" ? 1e-44 : 2.4e-7));
      });
    }
  }
}
