// TensorFlow.js on its WebAssembly backend (XNNPACK kernels); under Node it runs one thread. Inputs are uploaded
// as new tensors on every call, as Kiln's are copied into its memory; weights are created once.
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { GPT, GPT_ADAM, cnnWeights, gptWeights, mlpWeights } from "../common.js";

/** OIHW -> HWIO (tfjs's filter layout). */
function hwio(w, O, I, K) {
  const out = new Float32Array(w.length);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let k = 0; k < K * K; k++) out[(k * I + i) * O + o] = w[(o * I + i) * K * K + k];
  return out;
}

/** fc rows from NCHW's flatten order (c, h, w) to NHWC's (h, w, c), so tfjs flattens its NHWC maps directly. */
function fcNhwc(fc, C, HW, N) {
  const out = new Float32Array(fc.length);
  for (let c = 0; c < C; c++) for (let p = 0; p < HW; p++) out.set(fc.subarray((c * HW + p) * N, (c * HW + p + 1) * N), (p * C + c) * N);
  return out;
}

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
        case "gpt": {
          const p = gptParams(tf.tensor);
          return {
            run: () => read(tf.tidy(() => gptForward(p, tf.tensor2d(inp.x, [c.batch, GPT.T], "int32"), c.batch))),
            dispose: () => tf.dispose(Object.values(p)),
          };
        }
        case "gpttrain": {
          const { T, V } = GPT;
          const { lr, beta1, beta2, eps } = GPT_ADAM;
          const p = gptParams((d, s) => tf.variable(tf.tensor(d, s)));
          const opt = tf.train.adam(lr, beta1, beta2, eps);
          const labels = tf.oneHot(tf.tensor1d(inp.y, "int32"), V);
          // Mean over the B * T positions (SUM_BY_NONZERO_WEIGHTS with unit weights), as Kiln's cross_entropy.
          const loss = (x) => tf.losses.softmaxCrossEntropy(labels, tf.reshape(gptForward(p, x, c.batch, true), [c.batch * T, V]));
          return {
            run: () => read(tf.tidy(() => opt.minimize(() => loss(tf.tensor2d(inp.x, [c.batch, T], "int32")), true))),
            dispose: () => { tf.dispose([...Object.values(p), labels]); opt.dispose(); },
          };
        }
        case "cnn": {
          // NHWC (XNNPACK's layout); with one input channel NCHW [B, 1, 28, 28] is already NHWC [B, 28, 28, 1].
          const cw = cnnWeights();
          const T = {
            c1: tf.tensor4d(hwio(cw.c1, 16, 1, 3), [3, 3, 1, 16]), c1b: tf.tensor1d(cw.c1b),
            g: tf.tensor1d(cw.bn_g), b: tf.tensor1d(cw.bn_b), mean: tf.tensor1d(cw.bn_mean), var: tf.tensor1d(cw.bn_var),
            c2: tf.tensor4d(hwio(cw.c2, 32, 16, 3), [3, 3, 16, 32]), c2b: tf.tensor1d(cw.c2b),
            fc: tf.tensor2d(fcNhwc(cw.fc, 32, 49, 10), [1568, 10]), fcb: tf.tensor1d(cw.fcb),
          };
          const B = c.batch;
          return {
            run: () => read(tf.tidy(() => {
              // tf.fused: bias (and relu) in XNNPACK's convolution / matmul, tfjs's fastest form.
              let h = tf.fused.conv2d({ x: tf.tensor4d(inp.x, [B, 28, 28, 1]), filter: T.c1, strides: 1, pad: "same", bias: T.c1b });
              h = tf.maxPool(tf.relu(tf.batchNorm(h, T.mean, T.var, T.b, T.g, 1e-5)), 2, 2, "valid");
              h = tf.fused.conv2d({ x: h, filter: T.c2, strides: 1, pad: "same", bias: T.c2b, activation: "relu" });
              h = tf.maxPool(h, 2, 2, "valid");
              return tf.fused.matMul({ a: tf.reshape(h, [B, 1568]), b: T.fc, bias: T.fcb });
            })),
            dispose: () => tf.dispose(Object.values(T)),
          };
        }
        // tfjs-wasm (4.x) registers no Conv2DBackpropFilter kernel: it cannot train a convolutional net ("Kernel
        // 'Conv2DBackpropFilter' not registered for backend 'wasm'"), so this case has no tfjs-wasm row.
        case "cnntrain":
          return null;
        case "conv": {
          // NHWC input and HWIO filter (XNNPACK's layouts), converted here, outside the timing.
          const nhwc = new Float32Array(inp.x.length);
          for (let ch = 0; ch < c.C; ch++) for (let q = 0; q < c.H * c.W; q++) nhwc[q * c.C + ch] = inp.x[ch * c.H * c.W + q];
          const T = { w: tf.tensor4d(hwio(inp.w, c.O, c.C, c.K), [c.K, c.K, c.C, c.O]), b: tf.tensor1d(inp.b) };
          return {
            run: () => read(tf.tidy(() => tf.fused.conv2d({ x: tf.tensor4d(nhwc, [1, c.H, c.W, c.C]), filter: T.w, strides: 1, pad: "same", bias: T.b }))),
            dispose: () => tf.dispose(Object.values(T)),
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

function gptParams(make) {
  return Object.fromEntries(Object.entries(gptWeights()).map(([k, v]) => [k, make(v.data, v.shape)]));
}

const layerNorm = (x, g, b) => {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
};

/**
 * gpt_char.kiln's GPT.forward. tfjs has no attention op: the causal mask is a 0 / -1e9 bias before the softmax.
 * `oneHotEmbed`: the wasm backend has no UnsortedSegmentSum, the gradient of gather, so the training step looks
 * its embeddings up as oneHot(x, V) @ tok.
 */
function gptForward(p, x, B, oneHotEmbed = false) {
  const { T, D, H, L } = GPT;
  const heads = (t) => tf.transpose(tf.reshape(t, [B, T, H, D / H]), [0, 2, 1, 3]);
  const mm = (a, w) => tf.reshape(tf.matMul(tf.reshape(a, [-1, a.shape[a.rank - 1]]), w), [...a.shape.slice(0, -1), w.shape[1]]);
  const causal = tf.mul(tf.sub(tf.linalg.bandPart(tf.ones([T, T]), -1, 0), 1), 1e9);
  const emb = oneHotEmbed ? mm(tf.oneHot(x, GPT.V), p["GPT.tok"]) : tf.gather(p["GPT.tok"], x);
  let h = tf.add(emb, p["GPT.pos"]);
  for (let i = 0; i < L; i++) {
    const w = (n) => p[`GPT.blocks.${i}.${n}`];
    const a = layerNorm(h, w("ln1_g"), w("ln1_b"));
    const [q, k, v] = ["q", "k", "v"].map((n) => heads(mm(a, w(`attn.w_${n}`))));
    const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D / H)), causal));
    const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B, T, D]);
    h = tf.add(h, tf.add(mm(y, w("attn.w_o")), w("attn.b_o")));
    const m = tf.relu(tf.add(mm(layerNorm(h, w("ln2_g"), w("ln2_b")), w("w_fc")), w("b_fc")));
    h = tf.add(h, tf.add(mm(m, w("w_proj")), w("b_proj")));
  }
  return mm(layerNorm(h, p["GPT.lnf_g"], p["GPT.lnf_b"]), p["GPT.head"]);
}
