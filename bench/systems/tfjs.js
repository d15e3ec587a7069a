// TensorFlow.js on its WebAssembly backend (XNNPACK kernels); under Node it runs one thread. Inputs are uploaded
// as new tensors on every call, as Kiln's are copied into its memory; weights are created once.
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { mlpWeights } from "../common.js";

export async function system({ threads }) {
  if (threads !== 1) return null; // no thread pool under Node
  const require = createRequire(import.meta.url);
  setWasmPaths(join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/");
  await tf.setBackend("wasm");
  await tf.ready();
  const read = (t) => {
    const d = t.dataSync();
    t.dispose();
    return d;
  };
  const w = mlpWeights();
  const W = { w1: tf.tensor2d(w.w1, [784, 128]), b1: tf.tensor1d(w.b1), w2: tf.tensor2d(w.w2, [128, 10]), b2: tf.tensor1d(w.b2) };
  const forward = (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W.w1), W.b1)), W.w2), W.b2);
  return {
    label: "tfjs-wasm",
    threads,
    async prepare(c, inp) {
      switch (c.kind) {
        case "matmul": {
          const [ta, tb] = [c.mode === "tn", c.mode === "nt"];
          return { run: () => read(tf.tidy(() => tf.matMul(tf.tensor2d(inp.a, [c.n, c.n]), tf.tensor2d(inp.b, [c.n, c.n]), ta, tb))) };
        }
        case "mlp":
          return { run: () => read(tf.tidy(() => forward(tf.tensor2d(inp.x, [c.batch, 784])))) };
        case "train": {
          const vars = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, tf.variable(tf.tensor(v, W[k].shape))]));
          const opt = tf.train.sgd(0.1);
          const onehot = tf.oneHot(tf.tensor1d(inp.labels, "int32"), 10);
          const fwd = (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, vars.w1), vars.b1)), vars.w2), vars.b2);
          return {
            run: () => read(tf.tidy(() => {
              const x = tf.tensor2d(inp.x, [c.batch, 784]);
              return opt.minimize(() => tf.losses.softmaxCrossEntropy(onehot, fwd(x)), true);
            })),
            dispose: () => tf.dispose([...Object.values(vars), onehot]),
          };
        }
        case "softmax":
          return { run: () => read(tf.tidy(() => tf.softmax(tf.tensor2d(inp.x, [c.rows, c.cols])))) };
        case "layernorm": {
          const gamma = tf.tensor1d(inp.gamma);
          const beta = tf.tensor1d(inp.beta);
          // No fused layer norm in tfjs: the usual composition.
          return {
            run: () => read(tf.tidy(() => {
              const x = tf.tensor2d(inp.x, [c.rows, c.cols]);
              const { mean, variance } = tf.moments(x, -1, true);
              return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
            })),
            dispose: () => tf.dispose([gamma, beta]),
          };
        }
      }
      return null;
    },
  };
}
