// WebGPU side of inputs stored in 16 bits: the mixed MLP's x (f32 for the caller, f16/bf16 in the buffer,
// converted on the host at upload) gives wasm's answers within the tolerance test/webgpu/half-mixed.test.ts
// documents; a GPU-resident f32 tensor for such an input is converted on the GPU, bit for bit as the host does.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { wasmModule } from "../helpers/backend.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { webgpuEnv } from "../webgpu/helpers.js";
import { UNIT, expectWithin, loadMode, modesOf } from "../webgpu/half-helpers.js";
import { compile } from "./helpers.js";
import { buildWgsl } from "../../compiler/compile.js";
import { loadKilnModuleWebGPU } from "../../runtime/webgpu/module.js";

const env = await webgpuEnv("16-bit stored inputs on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);
const SRC = readFileSync("dsl-examples/mlp_train.kiln", "utf8");
const B = 6;

function inputs(): { x: Tensor; labels: Tensor } {
  const rng = new Rng(5);
  return {
    x: new Tensor("f32", [B, 784], Float32Array.from({ length: B * 784 }, () => rng.uniform())),
    labels: new Tensor("i32", [B], Int32Array.from({ length: B }, () => Math.floor(rng.uniform() * 10))),
  };
}
const f32Of = (t: Tensor): number[] => [...(t.data as Float32Array)];
const read = async (t: unknown): Promise<Tensor> => (t as { read(): Promise<Tensor> }).read();

describe.skipIf(!env.h)("an input stored in 16 bits on WebGPU", { timeout: 180_000 }, () => {
  for (const H of ["f16", "bf16"] as const) {
    for (const mode of MODES) {
      if (H === "bf16" && mode === "native") continue;
      it(`mixed-${H}, ${mode}: forward and one SGD step agree with wasm`, async () => {
        const ir = compile(SRC, "mlp_train.kiln", `mixed-${H}`);
        const wasm = await wasmModule(ir, 5);
        const gpu = await loadMode(env, ir, mode, undefined, 5);
        expect(gpu.manifest.functions.find((f) => f.name === "Sgd.step")!.inputs[0]!.storage).toBe(H);
        const { x, labels } = inputs();
        const fw = wasm.call("MLP.forward", { x }) as Tensor;
        const fg = await read(gpu.call("MLP.forward", { x }));
        // As in half-mixed.test.ts: both backends round the same operands and sum in f32 in different orders; a
        // hidden value that differs in its last f32 bits may round to a neighbouring 16-bit value: 8u of the scale.
        const scale = Math.max(...f32Of(fw).map(Math.abs));
        expectWithin(f32Of(fg), f32Of(fw), () => 8 * UNIT[H] * scale, `${H} forward`);
        const lw = (wasm.call("Sgd.step", { x, labels }) as Tensor).data[0]!;
        const lg = (await read(gpu.call("Sgd.step", { x, labels }))).data[0]!;
        expect(Math.abs(lg - lw)).toBeLessThanOrEqual(8 * UNIT[H] * Math.abs(lw));
        gpu.dispose();
      });
    }
  }

  it("a GPU-resident f32 tensor for a stored-low input is converted on the GPU, as the host converts it", async () => {
    // g's output is a GpuTensor of x's shape; f's x is read only by a matmul, so it is stored in 16 bits.
    const src = "model M {\n param w: f32[4, 3] = ones()\n fn f(x: f32[B, 4]) -> f32[B, 3] { return x @ w }\n fn g(x: f32[B, 4]) -> f32[B, 4] { return x * 1.001 }\n}";
    for (const H of ["f16", "bf16"] as const) {
      const ir = compile(src, "t.kiln", `mixed-${H}`);
      for (const mode of MODES) {
        if (H === "bf16" && mode === "native") continue;
        const gpu = await loadMode(env, ir, mode);
        expect(gpu.manifest.functions.find((f) => f.name === "M.f")!.inputs[0]).toMatchObject({ storage: H, convert: expect.any(String) });
        // 1001 rows of values that round differently in 16 bits (ties included: k/8 * 1.001 is rarely exact).
        const n = 1001;
        const x = new Tensor("f32", [n, 4], Float32Array.from({ length: n * 4 }, (_, i) => (i % 97) / 8 - 6));
        const onGpu = gpu.call("M.g", { x });
        const viaGpu = f32Of(await read(gpu.call("M.f", { x: onGpu })));
        const viaHost = f32Of(await read(gpu.call("M.f", { x: await read(onGpu) })));
        expect(viaGpu, `${H} ${mode}`).toEqual(viaHost);
        gpu.dispose();
      }
    }
  });

  it("a module without the conversion kernel refuses a GPU-resident tensor for such an input, naming it", async () => {
    const src = "model M {\n param w: f32[4, 3] = ones()\n fn f(x: f32[B, 4]) -> f32[B, 3] { return x @ w }\n fn g(x: f32[B, 4]) -> f32[B, 4] { return x + 1.0 }\n}";
    const b = buildWgsl(compile(src, "t.kiln", "mixed-f16"), "old");
    for (const f of b.manifest.functions) for (const i of f.inputs) delete (i as { convert?: string }).convert;
    const gpu = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: env.h!.device, f16: MODES[0]! });
    const x = new Tensor("f32", [2, 4], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const onGpu = gpu.call("M.g", { x });
    expect(() => gpu.call("M.f", { x: onGpu })).toThrow(/input "x" \(f32\) is stored as f16/);
    // From the host it works: 1 + 1.0 rounded to f16 is exact, so each row sums (x + 1) over 4 columns.
    expect(f32Of(await read(gpu.call("M.f", { x: await read(onGpu) })))).toEqual([14, 14, 14, 30, 30, 30]);
    gpu.dispose();
  });
});
