// jax-js on its WebAssembly device (init("wasm") under Node 20, where it starts no worker pool), every case
// under jit. Inputs become new arrays on every call; results are read with dataSync (which consumes them).
import { init, jit, nn, numpy as np, tree, valueAndGrad } from "@jax-js/jax";
import { mlpWeights } from "../common.js";

export async function system({ threads }) {
  if (threads !== 1) return null;
  await init("wasm");
  const arr = (data, shape) => np.array(data).reshape(shape);
  const w = mlpWeights();
  const shapes = { w1: [784, 128], b1: [128], w2: [128, 10], b2: [10] };
  const forward = (p, x) => np.matmul(nn.relu(np.matmul(x, p.w1).add(p.b1)), p.w2).add(p.b2);
  return {
    label: "jax-js",
    threads,
    async prepare(c, inp) {
      switch (c.kind) {
        case "matmul": {
          const f = jit((a, b) => (c.mode === "nn" ? np.matmul(a, b) : c.mode === "nt" ? np.matmul(a, b.transpose()) : np.matmul(a.transpose(), b)));
          return { run: () => f(arr(inp.a, [c.n, c.n]), arr(inp.b, [c.n, c.n])).dataSync() };
        }
        case "mlp": {
          const p = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, arr(v, shapes[k])]));
          const f = jit(forward);
          return { run: () => f(tree.ref(p), arr(inp.x, [c.batch, 784])).dataSync(), dispose: () => tree.dispose(p) };
        }
        case "train": {
          let p = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, arr(v, shapes[k])]));
          const onehot = arr(Float32Array.from({ length: c.batch * 10 }, (_, i) => (inp.labels[Math.floor(i / 10)] === i % 10 ? 1 : 0)), [c.batch, 10]);
          const loss = (q, x, y) => nn.logSoftmax(forward(q, x)).mul(y).sum().mul(-1 / c.batch);
          // value_and_grad and the SGD update in one jit, as the peers' baselines measured it.
          const step = jit((q, x, y) => {
            const [l, g] = valueAndGrad(loss)(tree.ref(q), x, y);
            return [l, tree.map((a, b) => a.sub(b.mul(0.1)), q, g)];
          });
          return {
            run: () => {
              const [l, next] = step(p, arr(inp.x, [c.batch, 784]), onehot.ref);
              p = next;
              return l.dataSync();
            },
            dispose: () => { tree.dispose(p); onehot.dispose(); },
          };
        }
        case "softmax": {
          const f = jit((x) => nn.softmax(x, -1));
          return { run: () => f(arr(inp.x, [c.rows, c.cols])).dataSync() };
        }
        case "layernorm": {
          const g = arr(inp.gamma, [c.cols]);
          const b = arr(inp.beta, [c.cols]);
          const f = jit((x, gamma, beta) => nn.standardize(x, -1, { epsilon: 1e-5 }).mul(gamma).add(beta));
          return { run: () => f(arr(inp.x, [c.rows, c.cols]), g.ref, b.ref).dataSync(), dispose: () => { g.dispose(); b.dispose(); } };
        }
      }
      return null;
    },
  };
}
