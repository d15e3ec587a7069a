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

const asRef = (t: Tensor) => ({ dtype: t.dtype, shape: t.shape, data: Float64Array.from(t.data as ArrayLike<number>) });

/**
 * A param after a training step. Adam moves a weight by about lr whichever way its gradient points, so a weight
 * whose gradient is rounding noise (mathematically zero, like a conv bias before batch_norm) may move either way
 * on two backends: where Adam's first moment is below 1e-6 on both, the weights may differ by two Adam steps
 * (lr is 1e-3 in the examples).
 */
function checkParam(what: string, got: Tensor, want: Tensor, moments?: [Tensor, Tensor]): void {
  const [a, b] = [got.data as Float32Array, want.data as Float32Array];
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d <= 1e-5 + 1e-4 * Math.abs(b[i]!)) continue;
    const noise = moments && Math.abs(moments[0].data[i] as number) < 1e-6 && Math.abs(moments[1].data[i] as number) < 1e-6;
    if (!(noise && d <= 2.5e-3)) throw new Error(`${what}[${i}]: got ${a[i]}, expected ${b[i]}${noise ? " (a noise gradient, beyond one Adam step)" : ""}`);
  }
}

/**
 * Two training steps on WebGPU and wasm from the same seed: the outputs of both, and every param (weights and
 * optimizer state) after the first. Later params are not compared: noise moves (checkParam) feed into the
 * statistics batch_norm keeps, so the two runs drift apart legitimately; the second loss still shows the update.
 */
async function checkTrainingStep(ir: IRModule, fn: string, inputs: Record<string, Input>): Promise<void> {
  const gpu = await gpuModule(env, ir, 1);
  const wasm = await wasmModule(ir, 1);
  try {
    for (let step = 0; step < 2; step++) {
      const got = await Promise.all(list(gpu.call(fn, tensors(inputs)) as GpuTensor | GpuTensor[]).map((t) => t.read()));
      const want = list(wasm.call(fn, tensors(inputs)));
      // After a step the weights may differ by noise-gradient moves (checkParam), which the next loss feels a little.
      got.forEach((t, i) => expectClose(t, asRef(want[i]!), `${fn} step ${step} output ${i}`, step === 0 ? 1e-4 : 1e-3, 1e-5));
      if (step > 0) continue;
      for (const p of ir.params) {
        const m = ir.params.find((q) => q.role === "state" && q.name.endsWith(`.m.${p.name}`));
        const moments = m ? ([await gpu.getParam(m.name), wasm.getParam(m.name)] as [Tensor, Tensor]) : undefined;
        checkParam(`${fn} step ${step}: param ${p.name}`, await gpu.getParam(p.name), wasm.getParam(p.name), moments);
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
