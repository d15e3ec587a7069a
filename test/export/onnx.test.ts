// kiln export --format onnx: exported models run in onnxruntime (node and web, under Node) with Kiln's outputs
// within f32 tolerance, pass the ONNX checker (Debian's python3-onnx), use standard ops, and bad input is an error.
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { decodeModel } from "../../compiler/export/onnx/proto.js";
import { closeness, kiln, labels, lcg, moduleWithWeights, python, pythonWith, tensorOf, tmp } from "./helpers.js";

type Ort = typeof ortNode;
ortWeb.env.wasm.numThreads = 1;
ortWeb.env.logLevel = "error";

interface Case {
  file: string;
  fn: string;
  inputs: Record<string, { dtype: "f32" | "i32"; shape: number[]; data: Float32Array | Int32Array }>;
  dims?: Record<string, number>;
  /** ONNX op types the model must contain (the fused/composite ops written back as standard ones). */
  ops: string[];
}

// layer_norm (and a few elementwise ops, and argmax's expansion) in a small model written here.
const LN_FILE = join(tmp(), "block.kiln");
writeFileSync(LN_FILE, `model Block {
  param w: f32[16, 16] = xavier()
  param g: f32[16] = normal(std: 0.5)
  param b: f32[16] = normal(std: 0.5)
  fn forward(x: f32[B, T, 16]) -> f32[B, T, 16] {
    let h = layer_norm(x @ w, g, b)
    return tanh(h) + sigmoid(h) * 0.5
  }
  fn pick(x: f32[B, T, 16]) -> i32[B, T] {
    return argmax(forward(x), axis: -1)
  }
}
`);

// The issue-16 layers (norms, pooling with ceil_mode / count_include_pad, adaptive pooling, conv1d, a GRU cell,
// conv_transpose2d: its zero insertion as Unsqueeze + Pad + Reshape + Slice; a depthwise conv2d, the
// depthwise_conv2d primitive, as one Conv with group = channels).
const LAYERS_FILE = join(tmp(), "layers.kiln");
writeFileSync(LAYERS_FILE, `model Layers {
  param w: f32[4, 4, 3] = he()
  param g: f32[4] = normal(std: 0.5)
  param b: f32[4] = normal(std: 0.5)
  param wi: f32[12, 4] = xavier()
  param wh: f32[12, 4] = xavier()
  param wt: f32[4, 2, 3, 3] = he()
  param wd: f32[4, 1, 3, 3] = he()
  fn forward(x: f32[B, 4, 7, 9]) -> f32[B, 4, 3, 2] {
    let h = instance_norm(group_norm(x, 2, g, b), g, b)
    h = avg_pool2d(h, 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false)
    h = max_pool2d(h, 2, ceil_mode: true)
    return adaptive_avg_pool2d(h, [3, 2])
  }
  fn seq(x: f32[B, 4, 9]) -> f32[B, 4, 7] { return conv1d(x, w, b) }
  fn cell(x: f32[B, 4], h: f32[B, 4]) -> f32[B, 4] { return gru_cell(x, h, wi, wh) }
  fn dw(x: f32[B, 4, 7, 9]) -> f32[B, 4, 4, 5] { return conv2d(x, wd, b, stride: 2, padding: 1, groups: 4) }
  fn up(x: f32[B, 4, 3, 4]) -> f32[B, 4, 6, 7] { return conv_transpose2d(x, wt, b, stride: 2, padding: 1, output_padding: [1, 0], groups: 2) }
}
`);

const img = (n: number, seed: number) => ({ dtype: "f32" as const, shape: [n, 1, 28, 28], data: lcg(n * 784, seed) });
const CASES: Case[] = [
  { file: "dsl-examples/mlp.kiln", fn: "MLP.forward", inputs: { x: { dtype: "f32", shape: [3, 784], data: lcg(3 * 784, 1) } }, ops: ["MatMul", "Relu"] },
  { file: "dsl-examples/mlp.kiln", fn: "MLP.predict", inputs: { x: { dtype: "f32", shape: [5, 784], data: lcg(5 * 784, 2) } }, ops: ["Softmax"] },
  { file: "dsl-examples/mlp.kiln", fn: "MLP.loss", inputs: { x: { dtype: "f32", shape: [4, 784], data: lcg(4 * 784, 3) }, labels: { dtype: "i32", shape: [4], data: labels(4, 10, 4) } }, ops: ["LogSoftmax"] },
  { file: "dsl-examples/mnist_cnn.kiln", fn: "MnistCNN.forward", inputs: { x: img(2, 5) }, ops: ["Conv", "MaxPool"] },
  { file: "dsl-examples/mnist_cnn.kiln", fn: "MnistCNN.loss", inputs: { x: img(3, 6), labels: { dtype: "i32", shape: [3], data: labels(3, 10, 7) } }, ops: ["Conv", "LogSoftmax"] },
  { file: "dsl-examples/attention.kiln", fn: "attention", inputs: { q: { dtype: "f32", shape: [2, 3, 16], data: lcg(96, 8) }, k: { dtype: "f32", shape: [2, 5, 16], data: lcg(160, 9) }, v: { dtype: "f32", shape: [2, 5, 16], data: lcg(160, 10) } }, ops: ["Softmax", "MatMul"] },
  { file: LN_FILE, fn: "Block.forward", inputs: { x: { dtype: "f32", shape: [2, 3, 16], data: lcg(96, 12) } }, ops: ["LayerNormalization", "Tanh"] },
  { file: LN_FILE, fn: "Block.pick", inputs: { x: { dtype: "f32", shape: [2, 3, 16], data: lcg(96, 13) } }, ops: ["LayerNormalization"] },
  { file: "dsl-examples/resnet_small.kiln", fn: "ResNetSmall.forward", inputs: { x: img(2, 18) }, ops: ["Conv", "ReduceMean"] },
  { file: LAYERS_FILE, fn: "Layers.forward", inputs: { x: { dtype: "f32", shape: [2, 4, 7, 9], data: lcg(504, 14) } }, ops: ["MatMul"] },
  { file: LAYERS_FILE, fn: "Layers.seq", inputs: { x: { dtype: "f32", shape: [2, 4, 9], data: lcg(72, 15) } }, ops: ["Conv"] },
  { file: LAYERS_FILE, fn: "Layers.dw", inputs: { x: { dtype: "f32", shape: [2, 4, 7, 9], data: lcg(504, 20) } }, ops: ["Conv"] },
  { file: LAYERS_FILE, fn: "Layers.up", inputs: { x: { dtype: "f32", shape: [2, 4, 3, 4], data: lcg(96, 19) } }, ops: ["Pad"] },
  { file: LAYERS_FILE, fn: "Layers.cell", inputs: { x: { dtype: "f32", shape: [3, 4], data: lcg(12, 16) }, h: { dtype: "f32", shape: [3, 4], data: lcg(12, 17) } }, ops: ["Sigmoid", "Tanh"] },
  { file: "dsl-examples/attention.kiln", fn: "SelfAttention.forward", inputs: { x: { dtype: "f32", shape: [7, 32], data: lcg(224, 11) } }, ops: ["Softmax"] },
];

async function runOrt(ort: Ort, bytes: Uint8Array, c: Case): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, ort === ortNode ? {} : { executionProviders: ["wasm"] });
  const feeds: Record<string, ortNode.Tensor> = {};
  for (const [k, v] of Object.entries(c.inputs)) feeds[k] = new ort.Tensor(v.dtype === "f32" ? "float32" : "int32", v.data, v.shape);
  const r = await s.run(feeds);
  return Float32Array.from(r[s.outputNames[0]].data as Float32Array | Int32Array);
}

describe("kiln export --format onnx", () => {
  const byFile = new Map<string, Promise<{ dir: string; mod: Awaited<ReturnType<typeof moduleWithWeights>>["mod"] }>>();
  const exported = (file: string) => {
    if (!byFile.has(file)) {
      byFile.set(file, (async () => {
        const dir = tmp();
        const { mod, weights } = await moduleWithWeights(file, 3, dir);
        const r = await kiln("export", file, "--format", "onnx", "--weights", weights, "--out", join(dir, "onnx"));
        if (r.code !== 0) throw new Error(r.err);
        return { dir: join(dir, "onnx"), mod };
      })());
    }
    return byFile.get(file)!;
  };

  for (const c of CASES) {
    it(`${c.fn} (${c.file}) matches Kiln in onnxruntime-node and onnxruntime-web`, async () => {
      const { dir, mod } = await exported(c.file);
      const bytes = readFileSync(join(dir, `${c.fn}.onnx`));
      const ops = decodeModel(bytes).graph!.node!.map((n) => n.opType);
      for (const op of c.ops) expect(ops, `${c.fn} ops`).toContain(op);
      const given = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, tensorOf(v.dtype, v.shape, v.data)]));
      const want = mod.call(c.fn, given);
      const w = Float32Array.from((Array.isArray(want) ? want[0] : want).data as Float32Array | Int32Array);
      for (const ort of [ortNode, ortWeb as unknown as Ort]) {
        const got = await runOrt(ort, bytes, c);
        expect(closeness(got, w), `${c.fn} on ${ort === ortNode ? "onnxruntime-node" : "onnxruntime-web"}: got ${got.slice(0, 4)}, Kiln ${w.slice(0, 4)}`).toBeLessThanOrEqual(1);
      }
    });
  }

  it("the exported models pass the ONNX checker (python3-onnx, full check with shape inference)", async () => {
    if (!pythonWith("onnx checker", ["onnx"])) return;
    const dirs = await Promise.all(["dsl-examples/mlp.kiln", "dsl-examples/mnist_cnn.kiln", "dsl-examples/attention.kiln", LN_FILE].map(async (f) => (await exported(f)).dir));
    const files = dirs.flatMap((d) => readdirSync(d).map((f) => join(d, f)));
    const out = python("import onnx, sys\nfor f in sys.argv[1:]:\n    m = onnx.load(f)\n    onnx.checker.check_model(m, full_check=True)\n    print('ok', m.opset_import[0].version, f)", files);
    expect(out.trim().split("\n")).toHaveLength(files.length);
    expect(out).toContain("ok 17");
  });

  it("named dims stay symbolic: one model runs at any batch size", async () => {
    const { dir } = await exported("dsl-examples/mlp.kiln");
    const m = decodeModel(readFileSync(join(dir, "MLP.forward.onnx")));
    const dims = m.graph!.input![0].type!.tensorType!.shape!.dim!;
    expect(dims[0].dimParam).toBe("B");
    expect(Number(dims[1].dimValue)).toBe(784);
    expect(m.graph!.initializer!.map((t) => t.name)).toEqual(expect.arrayContaining(["MLP.w1", "MLP.b1", "MLP.w2", "MLP.b2"]));
  });
});

describe("kiln export --format onnx: bad input", () => {
  it("a weights file for another model names the missing tensor and writes nothing", async () => {
    const dir = tmp();
    const { weights } = await moduleWithWeights("dsl-examples/mlp.kiln", 0, dir);
    const out = join(dir, "cnn");
    const r = await kiln("export", "dsl-examples/mnist_cnn.kiln", "--format", "onnx", "--weights", weights, "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toContain("has no tensor 'MnistCNN.c1' (f32[16, 1, 3, 3])");
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes("partial"))).toEqual([]);
  });

  it("a tensor with the wrong shape or dtype is named", async () => {
    const dir = tmp();
    const { serializeSafetensors } = await import("../../runtime/safetensors.js");
    const { Tensor } = await import("../../runtime/tensor.js");
    const base = { "MLP.w1": new Tensor("f32", [784, 128]), "MLP.b1": new Tensor("f32", [128]), "MLP.w2": new Tensor("f32", [128, 10]) };
    writeFileSync(join(dir, "shape.safetensors"), serializeSafetensors({ ...base, "MLP.b2": new Tensor("f32", [11]) }));
    writeFileSync(join(dir, "dtype.safetensors"), serializeSafetensors({ ...base, "MLP.b2": new Tensor("i32", [10]) }));
    writeFileSync(join(dir, "extra.safetensors"), serializeSafetensors({ ...base, "MLP.b2": new Tensor("f32", [10]), "MLP.w3": new Tensor("f32", [1]) }));
    const shape = await kiln("export", "dsl-examples/mlp.kiln", "--format", "onnx", "--weights", join(dir, "shape.safetensors"), "--out", join(dir, "o"));
    expect(shape.err).toContain("tensor 'MLP.b2' has shape [11], the module's param is f32[10]");
    const dtype = await kiln("export", "dsl-examples/mlp.kiln", "--format", "onnx", "--weights", join(dir, "dtype.safetensors"), "--out", join(dir, "o"));
    expect(dtype.err).toContain("tensor 'MLP.b2' is i32, the module's param is f32[10]");
    const extra = await kiln("export", "dsl-examples/mlp.kiln", "--format", "onnx", "--weights", join(dir, "extra.safetensors"), "--out", join(dir, "o"));
    expect(extra.err).toContain("tensor 'MLP.w3' matches no param");
    for (const r of [shape, dtype, extra]) expect(r.code).toBe(1);
    expect(existsSync(join(dir, "o"))).toBe(false);
  });

  it("a Kiln-only feature is named with its source line: data-dependent branches, training steps", async () => {
    const dyn = await kiln("export", "dsl-examples/dynamic.kiln", "--format", "onnx", "--fn", "branchy", "--out", join(tmp(), "d"));
    expect(dyn.code).toBe(1);
    expect(dyn.err).toMatch(/dsl-examples\/dynamic\.kiln:\d+:\d+: cannot export branchy to ONNX: it branches or loops on a run-time value/);
    const step = await kiln("export", "dsl-examples/mnist_mlp.kiln", "--format", "onnx", "--fn", "Train.step", "--out", join(tmp(), "s"));
    expect(step.code).toBe(1);
    expect(step.err).toMatch(/mnist_mlp\.kiln:\d+:\d+: cannot export Train\.step to ONNX: it is a training step/);
  });

  it("an op with no ONNX mapping is an error naming the op and its line", async () => {
    const dir = tmp();
    const src = join(dir, "drop.kiln");
    // dropout with training: true outside a train block draws from Kiln's seeded streams: no ONNX equivalent.
    writeFileSync(src, "model M {\n  param w: f32[4, 4] = ones()\n  fn f(x: f32[B, 4]) -> f32[B, 4] {\n    return x @ w\n  }\n}\n\nfn g(x: f32[B, 4]) -> f32[B, 4] {\n  return dropout(x, p: 0.5, training: true)\n}\n");
    const r = await kiln("export", src, "--format", "onnx", "--out", join(dir, "o"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/drop\.kiln:9:\d+: cannot export g to ONNX: random_uniform/);
    expect(existsSync(join(dir, "o"))).toBe(false);
  });

  it("flags: --format is required, other commands' flags are refused", async () => {
    expect((await kiln("export", "dsl-examples/mlp.kiln")).err).toContain("kiln export needs --format");
    expect((await kiln("export", "dsl-examples/mlp.kiln", "--format", "tflite")).err).toContain("--format must be");
    const r = await kiln("export", "dsl-examples/mlp.kiln", "--format", "onnx", "--epochs", "2");
    expect(r.code).toBe(2);
    expect(r.err).toContain("--epochs is an option of kiln train, not of kiln export");
  });
});

describe("kiln export --format onnx: int8 weights from kiln quantize", () => {
  it("mnist_mlp's int8 linear layers become QuantizeLinear (per row) + MatMulInteger and match Kiln's int8 module in onnxruntime", async () => {
    const dir = tmp();
    const { weights } = await moduleWithWeights("dsl-examples/mnist_mlp.kiln", 6, dir);
    const q = join(dir, "q.safetensors");
    expect((await kiln("quantize", "dsl-examples/mnist_mlp.kiln", "--weights", weights, "--out", q)).code).toBe(0);
    const r = await kiln("export", "dsl-examples/mnist_mlp.kiln", "--format", "onnx", "--weights", q, "--fn", "forward", "--out", join(dir, "onnx"));
    expect(r.code, r.err).toBe(0);
    const bytes = readFileSync(join(dir, "onnx", "MnistMLP.forward.onnx"));
    const model = decodeModel(bytes);
    const ops = model.graph!.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === "MatMulInteger")).toHaveLength(2);
    expect(ops).toContain("QuantizeLinear");
    expect(model.graph!.initializer!.find((t) => t.name === "MnistMLP.w1.q")!.dataType).toBe(3);
    // Kiln's int8 module: the compiled module with the quantized file loaded (it switches to the int8 kernels).
    const { buildWasm } = await import("../../compiler/compile.js");
    const { loadKilnModule } = await import("../../runtime/wasm/module.js");
    const { loadWeights } = await import("../../runtime/quantize/io.js");
    const { irOfFile } = await import("./helpers.js");
    const b = await buildWasm(irOfFile("dsl-examples/mnist_mlp.kiln"), "m");
    const mod = await loadKilnModule(b.manifest, b.wasm);
    expect(await loadWeights(mod, readFileSync(q))).toBeDefined();
    const x = lcg(3 * 784, 31).map((v) => (v + 1) / 2);
    const want = (mod.call("MnistMLP.forward", { x }, { batch: 3 }) as { data: Float32Array }).data;
    const c: Case = { file: "", fn: "", inputs: { x: { dtype: "f32", shape: [3, 784], data: x } }, ops: [] };
    for (const ort of [ortNode, ortWeb as unknown as Ort]) {
      const got = await runOrt(ort, bytes, c);
      expect(closeness(got, want, 1e-5, 1e-6), `int8 on ${ort === ortNode ? "onnxruntime-node" : "onnxruntime-web"}: ${got.slice(0, 3)} vs ${want.slice(0, 3)}`).toBeLessThanOrEqual(1);
    }
    if (pythonWith("onnx checker (int8)", ["onnx"])) python("import onnx, sys\nonnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", [join(dir, "onnx", "MnistMLP.forward.onnx")]);
  });
});
