// Benchmark cases and the data they use, shared by every system: the same deterministic inputs everywhere, so
// the orchestrator can also check that all systems computed the same thing (a checksum per case).

/** Deterministic f32 data in [-1, 1) (LCG), the same in every process. */
export function randomF32(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** MLP weights (784-128-10), scaled like a He/Xavier init so activations stay O(1). */
export function mlpWeights() {
  const scale = (a, k) => a.map((x) => x * k);
  return {
    w1: scale(randomF32(784 * 128, 11), Math.sqrt(6 / 784)),
    b1: scale(randomF32(128, 12), 0.1),
    w2: scale(randomF32(128 * 10, 13), Math.sqrt(6 / 138)),
    b2: scale(randomF32(10, 14), 0.1),
  };
}

/** The GPT of dsl-examples/gpt_char.kiln: context T, width D, heads, blocks, vocabulary V. */
export const GPT = { T: 64, D: 64, H: 4, L: 4, V: 65, F: 256 };

/**
 * Weights of that GPT under Kiln's parameter names (`GPT.blocks.0.attn.w_q`), with their shapes: deterministic
 * uniform values with the model's init scales (std 0.02 / 0.01), and gains 1 ± 0.1 and biases ± 0.01 rather than
 * ones and zeros, so that a gain or bias wired wrongly in one system shows in the checksum.
 */
export function gptWeights() {
  const { T, D, L, V, F } = GPT;
  const out = {};
  let seed = 101;
  const u = (shape, std) => ({ shape, data: randomF32(shape.reduce((a, b) => a * b, 1), seed++).map((x) => x * std * Math.sqrt(3)) });
  const gain = (n) => ({ shape: [n], data: randomF32(n, seed++).map((x) => 1 + 0.1 * x) });
  const bias = (n) => ({ shape: [n], data: randomF32(n, seed++).map((x) => 0.01 * x) });
  out["GPT.tok"] = u([V, D], 0.02);
  out["GPT.pos"] = u([T, D], 0.02);
  out["GPT.lnf_g"] = gain(D);
  out["GPT.lnf_b"] = bias(D);
  out["GPT.head"] = u([D, V], 0.02);
  for (let i = 0; i < L; i++) {
    const p = `GPT.blocks.${i}.`;
    Object.assign(out, {
      [`${p}ln1_g`]: gain(D), [`${p}ln1_b`]: bias(D), [`${p}ln2_g`]: gain(D), [`${p}ln2_b`]: bias(D),
      [`${p}w_fc`]: u([D, F], 0.02), [`${p}b_fc`]: bias(F), [`${p}w_proj`]: u([F, D], 0.01), [`${p}b_proj`]: bias(D),
      [`${p}attn.w_q`]: u([D, D], 0.02), [`${p}attn.w_k`]: u([D, D], 0.02), [`${p}attn.w_v`]: u([D, D], 0.02),
      [`${p}attn.w_o`]: u([D, D], 0.01), [`${p}attn.b_o`]: bias(D),
    });
  }
  return out;
}

/** The GPT's training step: plain Adam with a fixed rate in every system (gpt_char.kiln's own optimizer may differ). */
export const GPT_ADAM = { lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/**
 * gpt_char.kiln's source with its `train` block (the file's last item) replaced by `train Step` with GPT_ADAM: the
 * update every peer runs, whatever optimizer, schedule or clipping the example itself trains with.
 */
export function gptAdamSource(src) {
  const { lr, beta1, beta2, eps } = GPT_ADAM;
  const out = src.replace(
    /\ntrain \w+ \{[^}]*\}\s*$/,
    `\ntrain Step {\n  model: GPT\n  loss: loss\n  optimizer: adam(lr: ${lr}, beta1: ${beta1}, beta2: ${beta2}, eps: ${eps})\n}\n`,
  );
  if (out === src) throw new Error("gpt_char.kiln: no train block at the end of the file to replace");
  return out;
}

/**
 * Weights of dsl-examples/mnist_cnn.kiln (OIHW convolutions, fc [1568, 10] over NCHW's flatten order), He-scaled;
 * batch norm's running statistics away from 0/1 so that normalising is real work.
 */
export function cnnWeights() {
  const scale = (a, k, add = 0) => a.map((x) => x * k + add);
  return {
    c1: scale(randomF32(16 * 9, 21), Math.sqrt(6 / 9)),
    c1b: scale(randomF32(16, 22), 0.1),
    bn_g: scale(randomF32(16, 23), 0.2, 1),
    bn_b: scale(randomF32(16, 24), 0.1),
    bn_mean: scale(randomF32(16, 25), 0.1),
    bn_var: scale(randomF32(16, 26), 0.2, 1),
    c2: scale(randomF32(32 * 16 * 9, 27), Math.sqrt(6 / 144)),
    c2b: scale(randomF32(32, 28), 0.1),
    fc: scale(randomF32(1568 * 10, 29), Math.sqrt(6 / 1578)),
    fcb: scale(randomF32(10, 30), 0.1),
  };
}

/**
 * Every case: `id`, `kind` and its sizes; `flops` (null where a rate means little). Matmul modes: nn = A·B,
 * nt = A·Bᵀ, tn = Aᵀ·B, with A and B handed over as JS arrays on every call in every system.
 */
export function cases(quick) {
  const sizes = quick ? [128, 256, 512] : [128, 256, 512, 1024];
  const out = [];
  for (const n of sizes) {
    for (const mode of ["nn", "nt", "tn"]) out.push({ id: `matmul ${n} ${mode}`, kind: "matmul", n, mode, flops: 2 * n ** 3 });
  }
  out.push({ id: "mlp forward b=64", kind: "mlp", batch: 64, flops: 2 * 64 * (784 * 128 + 128 * 10) });
  // The same calls with the result written into one buffer reused across calls, where the system's API allows it
  // (Kiln's options.out). tfjs-wasm (dataSync returns a fresh array) and onnxruntime-web 1.30 (pre-allocated CPU
  // fetches come back unfilled, microsoft/onnxruntime#25786) cannot, and run their fresh-output calls here.
  out.push({ id: "mlp forward b=64 reused out", kind: "mlp", batch: 64, reuseOut: true, flops: 2 * 64 * (784 * 128 + 128 * 10) });
  // Matmul flops only: forward, then dW1 = xᵀ·dh, dh = dy·W2ᵀ, dW2 = hᵀ·dy (no gradient for x).
  out.push({ id: "mlp train step b=64", kind: "train", batch: 64, flops: 2 * 64 * (2 * 784 * 128 + 3 * 128 * 10) });
  // Forward: per block 4 D×D projections, 2 attention matmuls of T×T×D, the MLP's 2 D×F; then the head.
  const { T, D, V, F, L } = GPT;
  const gptFwd = (b) => 2 * b * T * (L * (4 * D * D + 2 * T * D + 2 * D * F) + D * V);
  out.push({ id: "gpt forward b=8", kind: "gpt", batch: 8, flops: gptFwd(8) });
  // Backward is about twice the forward's matmul work.
  out.push({ id: "gpt train step b=8", kind: "gpttrain", batch: 8, flops: 3 * gptFwd(8) });
  // Convolution flops (2 per multiply-add) plus the final matmul; the pools and batch norm are not counted.
  out.push({ id: "cnn forward b=64", kind: "cnn", batch: 64, flops: 2 * 64 * (28 * 28 * 16 * 9 + 14 * 14 * 32 * 144 + 1568 * 10) });
  // Its training step (Train.step: batch statistics, dropout, Adam at lr 0.001), about three forwards' flops.
  out.push({ id: "cnn train step b=64", kind: "cnntrain", batch: 64, flops: 3 * 2 * 64 * (28 * 28 * 16 * 9 + 14 * 14 * 32 * 144 + 1568 * 10) });
  // One 3x3 convolution layer (ResNet's 56x56 stage), weights and bias held by each system, NCHW for Kiln and
  // onnxruntime-web, NHWC for tfjs (converted outside the timing; the output sums do not depend on the layout).
  out.push({ id: "conv 64x56x56 3x3", kind: "conv", C: 64, H: 56, W: 56, O: 64, K: 3, flops: 2 * 64 * 56 * 56 * 64 * 9 });
  out.push({ id: "softmax 256x1024", kind: "softmax", rows: 256, cols: 1024, flops: null });
  out.push({ id: "softmax 256x1024 reused out", kind: "softmax", rows: 256, cols: 1024, reuseOut: true, flops: null });
  out.push({ id: "layer_norm 256x1024", kind: "layernorm", rows: 256, cols: 1024, flops: null });
  return out;
}

/** Inputs of a case (plain typed arrays; each system wraps them its own way). */
export function inputsOf(c) {
  switch (c.kind) {
    case "matmul":
      return { a: randomF32(c.n * c.n, c.n), b: randomF32(c.n * c.n, c.n + 1) };
    case "mlp":
    case "train":
      return { x: randomF32(c.batch * 784, 7), labels: Int32Array.from({ length: c.batch }, (_, i) => (i * 7) % 10) };
    case "gpt":
    case "gpttrain": {
      // Windows of a pseudo-random character stream: y is x shifted by one, as in next-character training.
      const { T, V } = GPT;
      const stream = randomF32(c.batch * (T + 1), 5).map((v) => Math.min(V - 1, Math.floor(((v + 1) / 2) * V)));
      const x = new Int32Array(c.batch * T);
      const y = new Int32Array(c.batch * T);
      for (let b = 0; b < c.batch; b++) {
        for (let t = 0; t < T; t++) {
          x[b * T + t] = stream[b * (T + 1) + t];
          y[b * T + t] = stream[b * (T + 1) + t + 1];
        }
      }
      return { x, y };
    }
    case "conv":
      // x [1, C, H, W]; w [O, C, K, K] He-scaled; b [O].
      return {
        x: randomF32(c.C * c.H * c.W, 31),
        w: randomF32(c.O * c.C * c.K * c.K, 32).map((v) => v * Math.sqrt(6 / (c.C * c.K * c.K))),
        b: randomF32(c.O, 33).map((v) => v * 0.1),
      };
    case "cnn":
      // Pixels in [0, 1), NCHW [batch, 1, 28, 28].
      return { x: randomF32(c.batch * 784, 8).map((v) => (v + 1) / 2) };
    case "cnntrain":
      return { x: randomF32(c.batch * 784, 8).map((v) => (v + 1) / 2), labels: Int32Array.from({ length: c.batch }, (_, i) => (i * 7) % 10) };
    default:
      return {
        x: randomF32(c.rows * c.cols, c.cols).map((v) => v * 4),
        gamma: randomF32(c.cols, 3).map((v) => 1 + v / 2),
        beta: randomF32(c.cols, 4).map((v) => v / 2),
      };
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Sum and sum of |x| of an output, to compare systems (relative difference of sums). */
export function checksum(data) {
  let sum = 0;
  let abs = 0;
  for (let i = 0; i < data.length; i++) {
    sum += data[i];
    abs += Math.abs(data[i]);
  }
  return { sum, abs, n: data.length };
}

/** The options every bench script takes: `--quick`, `--runs N` (default `runs`, 1 when quick), `--only`, `--json`. */
export function benchArgs(runs) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const quick = args.includes("--quick");
  return { args, opt, quick, runs: Number(opt("--runs", quick ? 1 : runs)), only: opt("--only", null), jsonOut: opt("--json", null) };
}

/**
 * The A/B scripts' timing loop: `rounds` rounds (plus one uncounted warm-up round) of `calls` calls of `run(v)`
 * for each variant in turn, so drift on a shared machine hits every variant alike. Returns, per variant, the
 * process CPU ms per call of each counted round.
 */
export function interleavedCpu(variants, run, rounds, calls) {
  const cpu = variants.map(() => []);
  for (let r = 0; r < rounds + 1; r++) {
    variants.forEach((v, k) => {
      const c0 = process.cpuUsage();
      for (let i = 0; i < calls; i++) run(v);
      const c = process.cpuUsage(c0);
      if (r > 0) cpu[k].push((c.user + c.system) / 1e3 / calls);
    });
  }
  return cpu;
}

/** "median (min-max)" of per-round numbers, two decimals. */
export const rangeText = (a) => `${median(a).toFixed(2)} (${Math.min(...a).toFixed(2)}-${Math.max(...a).toFixed(2)})`;

/**
 * The compiler and wasm loader of a built tree: `dist` is its dist/ folder (`--dist DIR` of the profiles, a
 * before/after); WASM_STATE is that build's own symbol (bench/step-times.js takes it).
 */
export async function distModules(dist) {
  const { pathToFileURL } = await import("node:url");
  const at = (p) => pathToFileURL(`${dist}/${p}`).href;
  const [{ compileToIR, buildWasm }, { loadKilnModule, WASM_STATE }] = await Promise.all([import(at("compiler/compile.js")), import(at("runtime/wasm/module.js"))]);
  return { compileToIR, buildWasm, loadKilnModule, WASM_STATE };
}
