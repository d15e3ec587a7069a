// kiln import on WebGPU: every model family the wasm import suites check (MNIST MLP/CNN, the BERT-like encoder, the
// GPT-like decoder, the three with a symbolic sequence length too, resnet18, mobilenet_v2, squeezenet1_1; random weights, exported once here by
// test/import/make_models.py and make_nets.py) is compiled for the WGSL target and run at batch 1 and 2-3 on WebGPU; goldens:
// onnxruntime-node on the same inputs. Skips, saying why, without torch or without a WebGPU adapter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildWgsl } from "../../compiler/compile.js";
import { loadKilnModuleWebGPU } from "../../runtime/webgpu/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import { closeness, lcg, python, pythonWith, tmp } from "../export/helpers.js";
import { webgpuEnv } from "../webgpu/helpers.js";
import { importToIR, ortOutput } from "./helpers.js";

const HAVE_TORCH = pythonWith("kiln import on WebGPU", ["torch", "torchvision", "onnx"]);
const env = HAVE_TORCH ? await webgpuEnv("kiln import on WebGPU") : {};
afterAll(() => env.h?.device.destroy());

/** Token ids in [0, vocab) from the seeded generator (as in transformers.test.ts). */
const ids = (n: number, vocab: number, seed: number) => Int32Array.from(lcg(n, seed), (v) => Math.min(vocab - 1, Math.floor(((v + 1) / 2) * vocab)));

const NETS = ["encoder", "encoder17", "encoder_causal", "gpt", "encoder_seq", "encoder_causal_seq", "gpt_seq", "resnet18", "resnet18_bn", "mobilenet_v2", "squeezenet1_1"];
const image = (c: number, hw: number, seed: number) => (batch: number) => ({ shape: [batch, c, hw, hw], x: lcg(batch * c * hw * hw, seed + batch) });
const tokens = (vocab: number, seed: number) => (batch: number) => ({ shape: [batch, 16], x: ids(batch * 16, vocab, seed + batch) });
// The *_seq models' sequence length is symbolic too: batch 1 runs 5 tokens, batch 3 runs 11, from one module.
const tokensSeq = (vocab: number, seed: number) => (batch: number) => ({ shape: [batch, batch === 1 ? 5 : 11], x: ids(batch * (batch === 1 ? 5 : 11), vocab, seed + batch) });
// Batch 1 and a second batch size, so the symbolic batch dim is bound on the GPU too. The vision nets were exported
// with a fixed 64x64 input (only the batch is symbolic). mnist_cnn13 and resnet18_bn keep BatchNormalization nodes
// (batch_norm in the program); encoder17 has LayerNormalization; encoder_causal nn.Transformer's -inf causal mask.
const CASES: { name: string; batches: number[]; input: (batch: number) => { shape: number[]; x: Float32Array | Int32Array } }[] = [
  { name: "mnist_mlp", batches: [1, 3], input: image(1, 28, 7) },
  { name: "mnist_cnn", batches: [1, 3], input: image(1, 28, 8) },
  { name: "mnist_cnn13", batches: [1, 3], input: image(1, 28, 9) },
  { name: "encoder", batches: [1, 3], input: tokens(50, 11) },
  { name: "encoder17", batches: [1, 3], input: tokens(50, 12) },
  { name: "encoder_causal", batches: [1, 3], input: tokens(50, 13) },
  { name: "gpt", batches: [1, 3], input: tokens(40, 14) },
  { name: "encoder_seq", batches: [1, 3], input: tokensSeq(50, 15) },
  { name: "encoder_causal_seq", batches: [1, 3], input: tokensSeq(50, 16) },
  { name: "gpt_seq", batches: [1, 3], input: tokensSeq(40, 17) },
  { name: "resnet18", batches: [1, 2], input: image(3, 64, 20) },
  { name: "resnet18_bn", batches: [1], input: image(3, 64, 23) },
  { name: "mobilenet_v2", batches: [1, 2], input: image(3, 64, 26) },
  { name: "squeezenet1_1", batches: [1, 2], input: image(3, 64, 29) },
];

describe.skipIf(!HAVE_TORCH || !env.h)("kiln import: imported models on WebGPU against onnxruntime-node", () => {
  const dir = tmp();
  beforeAll(() => {
    python(readFileSync(join(__dirname, "make_models.py"), "utf8"), [dir], { timeout: 300_000 });
    python(readFileSync(join(__dirname, "make_nets.py"), "utf8"), [dir, ...NETS], { timeout: 300_000 });
  }, 600_000);

  for (const c of CASES) {
    it(`${c.name}: the imported program on WebGPU matches onnxruntime-node at batch ${c.batches.join(" and ")}`, async () => {
      const { ir, weights } = await importToIR(dir, c.name);
      const b = buildWgsl(ir, c.name);
      const mod = await loadKilnModuleWebGPU(b.manifest, b.wgsl, { device: env.h!.device });
      try {
        for (const [k, t] of Object.entries(weights)) mod.setParam(k, t);
        const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"))!;
        const input = fn.inputs[0]!;
        for (const batch of c.batches) {
          const { shape, x } = c.input(batch);
          const dims = Object.fromEntries(input.shape.flatMap((d, k) => (typeof d === "string" ? [[d, shape[k]!]] : [])));
          const out = mod.call(fn.name, { [input.name]: new Tensor(x instanceof Int32Array ? "i32" : "f32", shape, x) }, { dims });
          const got = (await (out instanceof GpuTensor ? out : out[0]!).read()).data as Float32Array;
          const want = await ortOutput(join(dir, `${c.name}.onnx`), x, shape);
          expect(got.length).toBe(want.length);
          const worst = closeness(got, want, 1e-4, 1e-5);
          console.log(`[webgpu import] ${c.name} batch ${batch}: worst |kiln - ort| / (1e-5 + 1e-4 |ort|) = ${worst.toFixed(3)}`);
          expect(worst, `${got.slice(0, 4)} vs ${want.slice(0, 4)}`).toBeLessThanOrEqual(1);
        }
        // Past the 16-row position table the WebGPU call is refused too (the same check when dims are bound).
        if (c.name.endsWith("_seq")) expect(() => mod.call(fn.name, { [input.name]: new Tensor("i32", [1, 17], ids(17, 40, 1)) }, { dims: { batch: 1, seq: 17 } })).toThrow(/dimension seq is 17, but the slice \[0:seq\]/);
      } finally {
        mod.dispose();
      }
    }, 120_000);
  }
});
