// kiln import: PyTorch MNIST models (random weights, exported here by Debian's torch) become .kiln programs whose
// outputs on wasm equal onnxruntime-node's; unsupported ops are listed with counts and node names before anything
// is written; bad input is a one-line error, never a stack trace.
import { beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { parseSafetensors } from "../../runtime/safetensors.js";
import { closeness, kiln, lcg, moduleWithWeights, python, pythonWith, tmp } from "../export/helpers.js";
import { mnistDir } from "../../compiler/cli/data.js";
import { loadMnist } from "../../runtime/data/mnist.js";

const HAVE_TORCH = pythonWith("kiln import (torch.onnx.export models)", ["torch", "onnx"]);
const SCRIPT = readFileSync(join(__dirname, "make_models.py"), "utf8");

async function kilnOutputs(dir: string, name: string, model: string, x: Float32Array, batch: number, file = join(dir, `${name}.kiln`)): Promise<Float32Array> {
  const r = compileToIR(readFileSync(file, "utf8"), file);
  expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  const b = await buildWasm(r.ir!, name);
  const mod = await loadKilnModule(b.manifest, b.wasm);
  const w = parseSafetensors(readFileSync(join(dir, `${name}.safetensors`)));
  for (const [k, t] of Object.entries(w.tensors)) mod.setParam(k, t);
  expect(Object.keys(w.tensors).sort()).toEqual(b.manifest.params.filter((p) => !p.role).map((p) => p.name).sort());
  const dim = b.manifest.functions.find((f) => f.name === `${model}.forward`)!.inputs[0]!.shape[0] as string;
  return (mod.call(`${model}.forward`, { x }, { [dim]: batch }) as { data: Float32Array }).data;
}

describe.skipIf(!HAVE_TORCH)("kiln import (models from torch.onnx.export)", () => {
  const dir = tmp();
  beforeAll(() => {
    python(SCRIPT, [dir], { timeout: 600_000 });
  }, 600_000);

  const CASES = [
    { name: "mnist_mlp", model: "MnistMlp", ops: ["Gemm", "Reshape", "Shape", "Gather"] },
    { name: "mnist_cnn", model: "MnistCnn", ops: ["Conv", "BatchNormalization", "MaxPool", "Flatten", "LogSoftmax"] },
    { name: "mnist_cnn13", model: "MnistCnn13", ops: ["Conv", "BatchNormalization", "MaxPool", "Flatten", "LogSoftmax"] },
  ];
  for (const c of CASES) {
    it(`${c.name}: the imported program matches onnxruntime-node`, async () => {
      const onnxFile = join(dir, `${c.name}.onnx`);
      const { decodeModel } = await import("../../compiler/export/onnx/proto.js");
      const ops = new Set(decodeModel(readFileSync(onnxFile)).graph!.node!.map((n) => n.opType));
      for (const op of c.ops.filter((o) => !["Shape", "Gather"].includes(o) || c.name === "mnist_mlp")) expect([...ops], `the exporter emitted ${op}`).toContain(op);
      const out = join(dir, `${c.name}-kiln`);
      const r = await kiln("import", onnxFile, "--out", out);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const src = readFileSync(join(out, `${c.name}.kiln`), "utf8");
      // Clean: the shape subgraph is folded away, and params keep the initializers' names.
      expect(src).not.toMatch(/\b(shape|gather|concat|unsqueeze|constant)\b/i);
      expect(src).toMatch(/fn forward\(x: f32\[batch, 1, 28, 28\]\) -> f32\[batch, 10\]/);
      expect(src).toContain(c.name === "mnist_mlp" ? "param fc1_weight: f32[64, 784] = he()  // onnx: fc1.weight" : "param bn_running_var: f32[8] = ones()  // onnx: bn.running_var");
      const batch = 3;
      const x = lcg(batch * 784, 7);
      const s = await ort.InferenceSession.create(onnxFile);
      const want = (await s.run({ x: new ort.Tensor("float32", x, [batch, 1, 28, 28]) }))[s.outputNames[0]!]!.data as Float32Array;
      const got = await kilnOutputs(out, c.name, c.model, x, batch);
      expect(closeness(got, want, 1e-4, 1e-5), `${got.slice(0, 4)} vs ${want.slice(0, 4)}`).toBeLessThanOrEqual(1);
    }, 120_000);
  }

  it("the imported MLP, given a loss and a train block, fine-tunes from its random weights on MNIST", async () => {
    const out = join(dir, "tune");
    expect((await kiln("import", join(dir, "mnist_mlp.onnx"), "--out", out)).code).toBe(0);
    // The user's edit: a loss method in the model and a train block after it.
    const src = readFileSync(join(out, "mnist_mlp.kiln"), "utf8").trimEnd();
    const tuned = join(out, "tune.kiln");
    writeFileSync(tuned, `${src.slice(0, -1)}
  fn loss(x: f32[batch, 1, 28, 28], labels: i32[batch]) -> f32 {
    return cross_entropy(forward(x), labels)
  }
}

train Tune {
  model: MnistMlp
  loss: loss
  optimizer: adam(lr: 0.001)
}
`);
    // Held-out accuracy of the imported (random) weights.
    const test = await loadMnist({ dir: mnistDir(), split: "test" });
    const images = test.tensors.image!, labels = test.tensors.label!.data as Int32Array;
    const n = labels.length;
    const x = Float32Array.from(images.data as Uint8Array, (v) => v / 255);
    const logits = await kilnOutputs(out, "mnist_mlp", "MnistMlp", x, n, tuned);
    let right = 0;
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === labels[i]) right++;
    }
    const start = (100 * right) / n;
    const r = await kiln("train", tuned, "--data", "mnist", "--epochs", "2", "--weights", join(out, "mnist_mlp.safetensors"), "--replicas", "1");
    expect(r.err).toBe("");
    expect(r.out).toContain(`starting from the weights in ${join(out, "mnist_mlp.safetensors")}`);
    const end = Number(/final test accuracy ([\d.]+)%/.exec(r.out)?.[1]);
    expect(start).toBeLessThan(40);
    expect(end, r.out).toBeGreaterThan(85);
  }, 300_000);

  it("an unsupported op is an error listing every such op with its count and node names; nothing is written", async () => {
    const out = join(dir, "odd-kiln");
    const r = await kiln("import", join(dir, "odd.onnx"), "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toContain("odd.onnx: 3 nodes use ops kiln import does not support yet");
    expect(r.err).toMatch(/Acos x2: \/Acos, \/Acos_1/);
    expect(r.err).toMatch(/Atan x1: \/Atan/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });
});

describe("kiln import: Kiln's own ONNX export round-trips (no python needed)", () => {
  for (const [file, model, shape] of [["dsl-examples/mnist_mlp.kiln", "MnistMLP", [4, 784]], ["dsl-examples/mnist_cnn.kiln", "MnistCNN", [2, 1, 28, 28]]] as const) {
    it(`${file}: export --format onnx, import, and the imported program computes what the original does`, async () => {
      const dir = tmp();
      const { mod, weights } = await moduleWithWeights(file, 3, dir);
      expect((await kiln("export", file, "--weights", weights, "--format", "onnx", "--fn", `${model}.forward`, "--out", join(dir, "onnx"))).code).toBe(0);
      const r = await kiln("import", join(dir, "onnx", `${model}.forward.onnx`), "--out", join(dir, "back"));
      expect(r.err).toBe("");
      const x = lcg(shape.reduce((a, b) => a * b, 1), 5);
      const want = (mod.call(`${model}.forward`, { x }, { B: shape[0] }) as { data: Float32Array }).data;
      const got = await kilnOutputs(join(dir, "back"), `${model}.forward`, `${model}Forward`, x, shape[0]);
      expect(closeness(got, want, 1e-4, 1e-5)).toBeLessThanOrEqual(1);
    }, 60_000);
  }
});

describe("kiln import: a hand-built graph of the other ops", () => {
  it("Transpose, MatMul, Gemm (alpha, beta), Mul, Identity, Dropout, Softmax on an inner axis and the unary ops match onnxruntime-node", async () => {
    const { encodeModel, node, tensor, valueInfo, ElemType } = await import("../../compiler/export/onnx/proto.js");
    const F = ElemType.FLOAT;
    const init = (name: string, dims: number[], seed: number) => tensor(name, F, dims, lcg(dims.reduce((a, b) => a * b, 1), seed));
    const graph = {
      name: "misc",
      input: [valueInfo("x", F, ["N", 3, 4])],
      output: [valueInfo("y", F, ["N", 4, 5]), valueInfo("g", F, ["N", 6])],
      initializer: [init("w.t", [5, 3], 1), init("b", [5], 2), init("gw", [12, 6], 3), init("gb", [6], 4)],
      node: [
        node("Constant", [], ["half"], "half", { value: { tensor: tensor("", F, [], Float32Array.of(0.5)) } }),
        node("Constant", [], ["ratio"], "ratio", { value: { tensor: tensor("", F, [], Float32Array.of(0.3)) } }),
        node("Transpose", ["x"], ["xt"], "xt", { perm: [0, 2, 1] }),
        node("Transpose", ["w.t"], ["w"], "w"),
        node("MatMul", ["xt", "w"], ["m"], "m"),
        node("Add", ["m", "b"], ["a"], "a"),
        node("Mul", ["a", "half"], ["h"], "h"),
        node("Identity", ["h"], ["i"], "i"),
        node("Dropout", ["i", "ratio"], ["d"], "d"),
        node("Softmax", ["d"], ["s"], "s", { axis: 1 }),
        node("Neg", ["s"], ["n"], "n"),
        node("Exp", ["n"], ["e"], "e"),
        node("Abs", ["d"], ["ab"], "ab"),
        node("Sqrt", ["ab"], ["sq"], "sq"),
        node("Tanh", ["sq"], ["th"], "th"),
        node("Sigmoid", ["th"], ["sg"], "sg"),
        node("Div", ["e", "sg"], ["y"], "y"),
        node("Flatten", ["x"], ["fx"], "fx"),
        node("Gemm", ["fx", "gw", "gb"], ["gm"], "gm", { alpha: 0.75, beta: 1.5 }),
        node("LogSoftmax", ["gm"], ["g"], "g"),
      ],
    };
    const dir = tmp();
    const file = join(dir, "misc.onnx");
    const bytes = encodeModel({ graph });
    writeFileSync(file, bytes);
    const r = await kiln("import", file, "--out", join(dir, "out"));
    expect(r.err).toBe("");
    const src = readFileSync(join(dir, "out", "misc.kiln"), "utf8");
    expect(src).toContain("fn forward(x: f32[N, 3, 4]) -> (f32[N, 4, 5], f32[N, 6])");
    expect(src).toMatch(/= transpose\(x\)/);
    expect(src).toMatch(/dropout\(\w+, p: 0\.3\)/);
    const x = lcg(2 * 12, 9);
    const sess = await ort.InferenceSession.create(bytes);
    const want = await sess.run({ x: new ort.Tensor("float32", x, [2, 3, 4]) });
    const c = compileToIR(src, "misc.kiln");
    expect(c.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const b = await buildWasm(c.ir!, "misc");
    const mod = await loadKilnModule(b.manifest, b.wasm);
    for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(dir, "out", "misc.safetensors"))).tensors)) mod.setParam(k, t);
    const got = mod.call("Misc.forward", { x }, { N: 2 }) as unknown as { data: Float32Array }[];
    expect(closeness(got[0]!.data, want.y!.data as Float32Array)).toBeLessThanOrEqual(1);
    expect(closeness(got[1]!.data, want.g!.data as Float32Array)).toBeLessThanOrEqual(1);
  });
});

describe("kiln import: bad input", () => {
  it("a file that is not ONNX names the file and what to pass, and writes nothing", async () => {
    const dir = tmp();
    const bad = join(dir, "junk.onnx");
    writeFileSync(bad, "this is not protobuf at all, just text \u00ff\u00fe");
    const r = await kiln("import", bad, "--out", join(dir, "out"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/junk\.onnx: not an ONNX model|junk\.onnx: the ONNX model has no graph/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(readdirSync(dir)).toEqual(["junk.onnx"]);
  });

  it("a damaged model and an attribute Kiln cannot express name the file, the node and what to do", async () => {
    const dir = tmp();
    const { weights } = await moduleWithWeights("dsl-examples/mnist_cnn.kiln", 1, dir);
    await kiln("export", "dsl-examples/mnist_cnn.kiln", "--weights", weights, "--format", "onnx", "--fn", "MnistCNN.forward", "--out", join(dir, "onnx"));
    const bytes = readFileSync(join(dir, "onnx", "MnistCNN.forward.onnx"));
    const { decodeModel, onnx } = await import("../../compiler/export/onnx/proto.js");
    writeFileSync(join(dir, "cut.onnx"), bytes.subarray(0, bytes.length >> 1));
    const cut = await kiln("import", join(dir, "cut.onnx"), "--out", join(dir, "o1"));
    expect(cut.err).toMatch(/cut\.onnx: (not an ONNX model|.*damaged or truncated)/);
    const m = decodeModel(bytes);
    const conv = m.graph!.node!.find((n) => n.opType === "Conv")!;
    conv.attribute!.find((a) => a.name === "pads")!.ints = [1, 1, 0, 0];
    writeFileSync(join(dir, "asym.onnx"), onnx.ModelProto.encode(m).finish());
    const asym = await kiln("import", join(dir, "asym.onnx"), "--out", join(dir, "o2"));
    expect(asym.err).toContain(`asym.onnx: node '${conv.name}' (Conv): pads [1, 1, 0, 0] are not symmetric`);
    for (const r of [cut, asym]) {
      expect(r.code).toBe(1);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, "o1")) || existsSync(join(dir, "o2"))).toBe(false);
  });

  it("a missing file and a missing argument", async () => {
    expect((await kiln("import", "/nonexistent/m.onnx")).err).toMatch(/cannot read '\/nonexistent\/m\.onnx'/);
    const r = await kiln("import");
    expect(r.code).toBe(2);
    expect(r.err).toContain("missing MODEL.onnx");
  });
});
