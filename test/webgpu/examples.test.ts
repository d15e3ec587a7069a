// Every dsl-example, every function, on WebGPU against the float64 reference interpreter (seeded params, inputs
// drawn from the signature with small values for the symbolic dims). Training steps, which update params, are
// compared with the wasm backend step by step (the wasm suites check those against hand-computed updates).
// Skips, saying why, where no WebGPU adapter exists.
import { afterAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import type { Graph, IRModule } from "../../compiler/ir/graph.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import { expectClose, irOf, wasmModule, type Input } from "../helpers/backend.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("dsl-examples on WebGPU");
afterAll(() => env.h?.device.destroy());

const EXAMPLES = readdirSync("dsl-examples").filter((f) => f.endsWith(".kiln")).map((f) => f.slice(0, -5)).sort();
const DIM_VALUES = [3, 5, 2, 4, 6];

/** Inputs for a function: floats in [-1.5, 1.5), ints in [0, 3) (valid labels and trip counts), random bools. */
function inputsFor(g: Graph, rng: Rng): Record<string, Input> {
  const dims = new Map<string, number>();
  const out: Record<string, Input> = {};
  for (const io of g.inputs) {
    const t = g.nodes[io.node]!.type;
    const shape = t.shape.map((d) => (typeof d === "number" ? d : dims.get(d) ?? (dims.set(d, DIM_VALUES[dims.size % DIM_VALUES.length]!), dims.get(d)!)));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Array.from({ length: n }, () => {
      if (t.dtype === "f32") return Math.fround(rng.uniform(-1.5, 1.5));
      if (t.dtype === "bool") return rng.uniform(0, 1) < 0.5 ? 1 : 0;
      return Math.floor(rng.uniform(0, 3));
    });
    out[io.name] = { dtype: t.dtype, shape, data };
  }
  return out;
}

const tensors = (inputs: Record<string, Input>) => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)]));
const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Two training steps on WebGPU and wasm from the same seed: outputs and every param agree. */
async function checkTrainingStep(ir: IRModule, fn: string, inputs: Record<string, Input>): Promise<void> {
  const gpu = await gpuModule(env, ir, 1);
  const wasm = await wasmModule(ir, 1);
  try {
    for (let step = 0; step < 2; step++) {
      const got = await Promise.all(list(gpu.call(fn, tensors(inputs)) as GpuTensor | GpuTensor[]).map((t) => t.read()));
      const want = list(wasm.call(fn, tensors(inputs)));
      got.forEach((t, i) => expectClose(t, { dtype: want[i]!.dtype, shape: want[i]!.shape, data: Float64Array.from(want[i]!.data as ArrayLike<number>) }, `${fn} step ${step} output ${i}`, 1e-4, 1e-5));
      for (const p of ir.params) {
        const w = wasm.getParam(p.name);
        expectClose(await gpu.getParam(p.name), { dtype: w.dtype, shape: w.shape, data: Float64Array.from(w.data as ArrayLike<number>) }, `${fn} step ${step}: param ${p.name}`, 1e-4, 1e-5);
      }
    }
  } finally {
    gpu.dispose();
  }
}

describe.skipIf(!env.h)("dsl-examples on WebGPU match the reference", () => {
  it("finds the examples", () => expect(EXAMPLES.length).toBeGreaterThanOrEqual(4));

  for (const name of EXAMPLES) {
    it(name, async () => {
      const ir = irOf(readFileSync(`dsl-examples/${name}.kiln`, "utf8"), `dsl-examples/${name}.kiln`);
      const mod = await gpuModule(env, ir, 1);
      try {
        for (const g of ir.functions) {
          const inputs = inputsFor(g, new Rng(g.name.length * 131 + 7));
          if (g.updates?.length) {
            await checkTrainingStep(ir, g.name, inputs);
            continue;
          }
          const { gpu, ref } = await runGpuVsRef(env, ir, g.name, inputs, { seed: 1, module: mod });
          expect(gpu.length, g.name).toBe(ref.length);
          gpu.forEach((t, i) => expectClose(t, ref[i]!, `${name}.kiln ${g.name} output ${i} on WebGPU`, 1e-4, 1e-5));
        }
      } finally {
        mod.dispose();
      }
    }, 120_000);
  }

  it("MLP.forward and predict on WebGPU equal wasm for the same seed", async () => {
    const ir = irOf(readFileSync("dsl-examples/mlp.kiln", "utf8"));
    const [gpu, wasm] = [await gpuModule(env, ir, 2), await wasmModule(ir, 2)];
    try {
      const x = new Tensor("f32", [3, 784], Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)));
      for (const fn of ["MLP.forward", "MLP.predict"]) {
        const y = gpu.call(fn, { x }) as GpuTensor;
        expect(y).toBeInstanceOf(GpuTensor);
        const want = wasm.call(fn, { x }) as Tensor;
        const got = await y.read();
        expect(got.shape).toEqual([3, 10]);
        got.data.forEach((v, i) => expect(Math.abs(v - (want.data[i] as number)), `${fn}[${i}]`).toBeLessThan(1e-5));
      }
    } finally {
      gpu.dispose();
    }
  }, 60_000);
});
