// onnxruntime-web (WebAssembly, MLAS kernels) on 1 or 2 threads: each case is a one- or few-node ONNX graph;
// transposed matmuls use Gemm's transA/transB, the MLP keeps its weights as initializers. No training.
import * as ort from "onnxruntime-web";
import { onnxModel } from "../onnx-model.js";
import { cnnWeights, mlpWeights } from "../common.js";

export async function system({ threads }) {
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  const session = (spec) => ort.InferenceSession.create(onnxModel(spec), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const f32 = (data, dims) => new ort.Tensor("float32", data, dims);
  return {
    label: "onnxruntime-web",
    threads,
    async prepare(c, inp) {
      switch (c.kind) {
        case "matmul": {
          const n = c.n;
          const s = await session({
            inputs: [["A", [n, n]], ["B", [n, n]]], outputs: [["Y", [n, n]]],
            nodes: [{ op: "Gemm", inputs: ["A", "B"], outputs: ["Y"], attrs: { transA: c.mode === "tn" ? 1 : 0, transB: c.mode === "nt" ? 1 : 0 } }],
          });
          return { run: async () => (await s.run({ A: f32(inp.a, [n, n]), B: f32(inp.b, [n, n]) })).Y.data, dispose: () => s.release() };
        }
        case "mlp": {
          const w = mlpWeights();
          const s = await session({
            inputs: [["x", [c.batch, 784]]], outputs: [["y", [c.batch, 10]]],
            initializers: [
              { name: "w1", shape: [784, 128], data: w.w1 }, { name: "b1", shape: [128], data: w.b1 },
              { name: "w2", shape: [128, 10], data: w.w2 }, { name: "b2", shape: [10], data: w.b2 },
            ],
            nodes: [
              { op: "Gemm", inputs: ["x", "w1", "b1"], outputs: ["h0"] },
              { op: "Relu", inputs: ["h0"], outputs: ["h"] },
              { op: "Gemm", inputs: ["h", "w2", "b2"], outputs: ["y"] },
            ],
          });
          return { run: async () => (await s.run({ x: f32(inp.x, [c.batch, 784]) })).y.data, dispose: () => s.release() };
        }
        case "cnn": {
          const w = cnnWeights();
          const B = c.batch;
          const shapes = { c1: [16, 1, 3, 3], c1b: [16], bn_g: [16], bn_b: [16], bn_mean: [16], bn_var: [16], c2: [32, 16, 3, 3], c2b: [32], fc: [1568, 10], fcb: [10] };
          const pool = { kernel_shape: [2, 2], strides: [2, 2] };
          const s = await session({
            inputs: [["x", [B, 1, 28, 28]]], outputs: [["y", [B, 10]]],
            initializers: Object.entries(shapes).map(([name, shape]) => ({ name, shape, data: w[name] })),
            nodes: [
              { op: "Conv", inputs: ["x", "c1", "c1b"], outputs: ["h1"], attrs: { pads: [1, 1, 1, 1] } },
              { op: "BatchNormalization", inputs: ["h1", "bn_g", "bn_b", "bn_mean", "bn_var"], outputs: ["h2"], attrs: { epsilon: 1e-5 } },
              { op: "Relu", inputs: ["h2"], outputs: ["h3"] },
              { op: "MaxPool", inputs: ["h3"], outputs: ["h4"], attrs: pool },
              { op: "Conv", inputs: ["h4", "c2", "c2b"], outputs: ["h5"], attrs: { pads: [1, 1, 1, 1] } },
              { op: "Relu", inputs: ["h5"], outputs: ["h6"] },
              { op: "MaxPool", inputs: ["h6"], outputs: ["h7"], attrs: pool },
              { op: "Flatten", inputs: ["h7"], outputs: ["h8"], attrs: { axis: 1 } },
              { op: "Gemm", inputs: ["h8", "fc", "fcb"], outputs: ["y"] },
            ],
          });
          return { run: async () => (await s.run({ x: f32(inp.x, [B, 1, 28, 28]) })).y.data, dispose: () => s.release() };
        }
        case "conv": {
          const xd = [1, c.C, c.H, c.W];
          const p = (c.K - 1) / 2;
          const s = await session({
            inputs: [["x", xd]], outputs: [["y", [1, c.O, c.H, c.W]]],
            initializers: [{ name: "w", shape: [c.O, c.C, c.K, c.K], data: inp.w }, { name: "b", shape: [c.O], data: inp.b }],
            nodes: [{ op: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attrs: { pads: [p, p, p, p] } }],
          });
          return { run: async () => (await s.run({ x: f32(inp.x, xd) })).y.data, dispose: () => s.release() };
        }
        case "softmax":
        case "layernorm": {
          const dims = [c.rows, c.cols];
          const ln = c.kind === "layernorm";
          const s = await session({
            inputs: [["x", dims]], outputs: [["y", dims]],
            initializers: ln ? [{ name: "g", shape: [c.cols], data: inp.gamma }, { name: "b", shape: [c.cols], data: inp.beta }] : [],
            nodes: [ln
              ? { op: "LayerNormalization", inputs: ["x", "g", "b"], outputs: ["y"], attrs: { axis: -1, epsilon: 1e-5 } }
              : { op: "Softmax", inputs: ["x"], outputs: ["y"], attrs: { axis: -1 } }],
          });
          return { run: async () => (await s.run({ x: f32(inp.x, dims) })).y.data, dispose: () => s.release() };
        }
      }
      return null; // training is not in the web package
    },
  };
}
