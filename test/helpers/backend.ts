// Test helpers: compile a source or a hand-built IR graph, run it on the wasm backend through the real runtime,
// and compare with the float64 reference interpreter using dtype-aware tolerances.
import { expect } from "vitest";
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { Graph, IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { RandomStreams } from "../../runtime/random.js";
import type { RefTensor } from "../../compiler/ops/types.js";
import { referenceParams } from "../../compiler/cli/run.js";
import type { DType } from "../../compiler/ir/types.js";

export function irOf(src: string, file = "test.kiln"): IRModule {
  const r = compileToIR(src, file);
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { [file]: src }));
  return r.ir;
}

export async function wasmModule(ir: IRModule, seed = 0): Promise<KilnModule> {
  const b = await buildWasm(ir, "test");
  return loadKilnModule(b.manifest, b.wasm, { seed });
}

export interface Input {
  dtype: DType;
  shape: number[];
  data: number[];
}

/** f32 values in [-1, 1) of `shape` from a 32-bit LCG seeded with `seed` (cheap, reproducible test data). */
export function lcgInput(shape: number[], seed: number): Input {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "f32", shape, data: Array.from({ length: n }, () => Math.fround(((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1)) };
}

/**
 * Runs `fn` on wasm and on the reference (same params), returns both. The reference draws random_uniform values
 * from fresh streams of the seed: the values a freshly loaded module's first call draws.
 */
export async function runBoth(ir: IRModule, fn: string, inputs: Record<string, Input>, opts: { seed?: number; module?: KilnModule } = {}) {
  const g = ir.functions.find((x) => x.name === fn);
  if (!g) throw new Error(`no function ${fn}`);
  const mod = opts.module ?? (await wasmModule(ir, opts.seed ?? 0));
  const given: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) given[k] = new Tensor(v.dtype, v.shape, v.data);
  const w = mod.call(fn, given);
  const wasm = Array.isArray(w) ? w : [w];
  const ref = evaluateGraph(g, inputs, referenceParams(ir, opts.seed ?? 0), {}, { random: new RandomStreams(opts.seed ?? 0) });
  return { wasm, ref, graph: g };
}

/** Tolerance: exact for ints/bools; for floats |a - b| <= atol + rtol * |b|, NaN/Inf must match. */
export function expectClose(actual: Tensor, expected: RefTensor, what: string, rtol = 2e-6, atol = 1e-6): void {
  expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  const a = actual.data as ArrayLike<number>;
  const exact = expected.dtype !== "f32" && expected.dtype !== "f64";
  for (let i = 0; i < expected.data.length; i++) {
    const x = Number(a[i]);
    const y = expected.data[i];
    if (Number.isNaN(y) || !Number.isFinite(y)) {
      if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) throw new Error(`${what}[${i}]: got ${x}, expected ${y}`);
      continue;
    }
    const tol = exact ? 0 : atol + rtol * Math.abs(y);
    if (!(Math.abs(x - y) <= tol)) throw new Error(`${what}[${i}]: got ${x}, expected ${y} (tolerance ${tol})`);
  }
}

export function graphOf(ir: IRModule, name: string): Graph {
  return ir.functions.find((g) => g.name === name)!;
}
