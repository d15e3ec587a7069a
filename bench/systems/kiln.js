// Kiln under benchmark: each case is a small .kiln program compiled with the built compiler (dist/, from
// `npm run build`) and loaded with the runtime — the plain SIMD128 or the relaxed-SIMD build, on 1 or 2 threads.
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm } from "../../dist/compiler/compile.js";
import { formatDiagnostics } from "../../dist/compiler/diagnostics.js";
import { loadKilnModule, WASM_STATE } from "../../dist/runtime/wasm/module.js";
import { relaxedSimdSupported } from "../../dist/runtime/wasm/backend.js";
import { loadKernels } from "../../dist/runtime/wasm/threads-load.js";
import { evalDimPoly } from "../../dist/runtime/manifest.js";
import { cnnWeights, gptAdamSource, gptWeights, mlpWeights } from "../common.js";

const MLP = readFileSync(new URL("../../dsl-examples/mlp.kiln", import.meta.url), "utf8");
const CNN = readFileSync(new URL("../../dsl-examples/mnist_cnn.kiln", import.meta.url), "utf8");

// The MLP of dsl-examples/mlp.kiln with a plain SGD step (the same update every peer runs).
const TRAIN = `${MLP}
train Step {
  model: MLP
  loss: loss
  optimizer: sgd(lr: 0.1)
}
`;

// dsl-examples/gpt_char.kiln with plain Adam at a fixed rate in place of its own optimizer (the update every
// peer runs), so the comparison does not depend on that example's schedule or clipping.
const GPT_SRC = gptAdamSource(readFileSync(new URL("../../dsl-examples/gpt_char.kiln", import.meta.url), "utf8"));

export const SOURCES = {
  matmul: (c) => {
    const expr = { nn: "a @ b", nt: "a @ transpose(b)", tn: "transpose(a) @ b" }[c.mode];
    return `fn mm(a: f32[${c.n}, ${c.n}], b: f32[${c.n}, ${c.n}]) -> f32[${c.n}, ${c.n}] { return ${expr} }`;
  },
  softmax: (c) => `fn f(x: f32[${c.rows}, ${c.cols}]) -> f32[${c.rows}, ${c.cols}] { return softmax(x, axis: -1) }`,
  layernorm: (c) =>
    `fn f(x: f32[${c.rows}, ${c.cols}], gamma: f32[${c.cols}], beta: f32[${c.cols}]) -> f32[${c.rows}, ${c.cols}] { return layer_norm(x, gamma, beta, eps: 1e-5) }`,
  mlp: () => MLP,
  train: () => TRAIN,
  gpt: () => GPT_SRC,
  gpttrain: () => GPT_SRC,
  cnn: () => CNN,
  cnntrain: () => CNN,
  conv: (c) => `model Conv {
  param w: f32[${c.O}, ${c.C}, ${c.K}, ${c.K}] = he()
  param b: f32[${c.O}] = zeros()
  fn forward(x: f32[1, ${c.C}, ${c.H}, ${c.W}]) -> f32[1, ${c.O}, ${c.H}, ${c.W}] { return conv2d(x, w, b, padding: ${(c.K - 1) / 2}) }
}`,
};

export async function system({ threads, simd, kernelOnly }) {
  if (simd === "relaxed" && !relaxedSimdSupported()) return null;
  const label = `kiln${simd === "relaxed" ? "-relaxed" : ""}${kernelOnly ? " kernel" : ""}`;
  const compile = async (src) => {
    const r = compileToIR(src, "bench.kiln");
    if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "bench.kiln": src }));
    return buildWasm(r.ir, "bench");
  };
  const relaxed = (b) => (simd === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {});
  const load = async (src, inp) => {
    const b = await compile(src);
    const w = mlpWeights();
    let params = src.includes("model MLP") ? { "MLP.w1": w.w1, "MLP.b1": w.b1, "MLP.w2": w.w2, "MLP.b2": w.b2 }
      : src.includes("model GPT") ? Object.fromEntries(Object.entries(gptWeights()).map(([k, v]) => [k, v.data])) : undefined;
    if (src.includes("model Conv {")) params = { "Conv.w": inp.w, "Conv.b": inp.b };
    if (src === CNN) params = Object.fromEntries(Object.entries(cnnWeights()).map(([k, v]) => [`MnistCNN.${k}`, v]));
    return loadKilnModule(b.manifest, b.wasm, { threads, params, ...relaxed(b) });
  };
  return {
    label,
    threads,
    async prepare(c, inp) {
      if (kernelOnly) return c.kind === "matmul" ? kernelCall(await compile(SOURCES.matmul(c)), inp, threads, simd === "relaxed") : null;
      const m = await load(SOURCES[c.kind](c), inp);
      const dispose = () => m.dispose();
      // Reused-output rows: the result goes into one caller buffer for every call (options.out).
      const opts = c.reuseOut ? { out: new Float32Array(c.kind === "mlp" ? c.batch * 10 : c.rows * c.cols) } : undefined;
      // What the thread pool did (bench/threads.js reports it): splits, starved dispatches, calls kept on one thread.
      const stats = () => ({ ...m[WASM_STATE]("bench").pool?.stats });
      switch (c.kind) {
        case "matmul": return { run: () => m.mm({ a: inp.a, b: inp.b }).data, dispose, stats };
        case "mlp": return { run: () => m.MLP.forward({ x: inp.x }, opts).data, dispose };
        // Eval mode outside a train step: batch norm uses the running statistics, dropout is the identity.
        case "cnn": return { run: () => m.MnistCNN.forward({ x: inp.x }).data, dispose };
        // The example's own train block: Adam at lr 0.001, batch norm on batch statistics, dropout 0.25.
        case "cnntrain": return { run: () => m.call("Train.step", { x: inp.x, labels: inp.labels }).data, dispose };
        case "conv": return { run: () => m.Conv.forward({ x: inp.x }).data, dispose };
        case "train": return { run: () => m.call("Step.step", { x: inp.x, labels: inp.labels }).data, dispose, stats };
        case "gpt": return { run: () => m.call("GPT.forward", { x: inp.x }).data, dispose };
        case "gpttrain": return { run: () => m.call("Step.step", { x: inp.x, y: inp.y }).data, dispose };
        case "softmax": return { run: () => m.f({ x: inp.x }, opts).data, dispose };
        case "layernorm": return { run: () => m.f({ x: inp.x, gamma: inp.gamma, beta: inp.beta }).data, dispose };
      }
      return null;
    },
  };
}

/** The matmul kernel alone: operands already in wasm memory, no copies in or out (the kernel's own speed). */
async function kernelCall(b, inp, threads, useRelaxed) {
  const k = await loadKernels(b.wasm, { threads, ...(useRelaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  const fn = b.manifest.functions[0];
  const [step] = fn.steps;
  const ptrs = step.buffers.map((v) => {
    const val = fn.values[v];
    const bytes = 4 * val.shape.reduce((x, y) => x * y, 1);
    return k.memory.allocPersistent(bytes, "bench");
  });
  k.memory.write(ptrs[0], inp.a);
  k.memory.write(ptrs[1], inp.b);
  const args = [...ptrs, ...step.ints.map((p) => evalDimPoly(p, {}))];
  const kernel = k.kernels.get(step.kernel);
  const out = ptrs[ptrs.length - 1];
  const n = inp.a.length;
  return {
    run: () => {
      // One kernel call is one call for the pool's per-call fallback (the executor does this for module calls).
      k.pool?.beginCall?.();
      kernel(...args);
      return k.memory.view("f32", out, n);
    },
    dispose: () => k.pool?.close(),
  };
}
