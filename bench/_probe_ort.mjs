import * as ort from "onnxruntime-web";
import { onnxModel } from "./onnx-model.js";
ort.env.wasm.numThreads = Number(process.argv[3] ?? 1);
const n = Number(process.argv[2] ?? 256);
for (const [name, transA, transB] of [["nn", 0, 0], ["nt", 0, 1], ["tn", 1, 0]]) {
  const model = onnxModel({ inputs: [["A", [n, n]], ["B", [n, n]]], outputs: [["Y", [n, n]]], nodes: [{ op: "Gemm", inputs: ["A", "B"], outputs: ["Y"], attrs: { transA, transB } }] });
  const s = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  const A = new ort.Tensor("float32", Float32Array.from({ length: n * n }, () => Math.random()), [n, n]);
  const B = new ort.Tensor("float32", Float32Array.from({ length: n * n }, () => Math.random()), [n, n]);
  for (let i = 0; i < 3; i++) await s.run({ A, B });
  const t0 = performance.now(); const reps = 10;
  for (let i = 0; i < reps; i++) { const r = await s.run({ A, B }); r.Y.data; }
  const ms = (performance.now() - t0) / reps;
  console.log(name, n, ort.env.wasm.numThreads, ms.toFixed(3), "ms", (2 * n ** 3 / ms / 1e6).toFixed(1), "GFLOP/s");
}
process.exit(0);
