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
  // Matmul flops only: forward, then dW1 = xᵀ·dh, dh = dy·W2ᵀ, dW2 = hᵀ·dy (no gradient for x).
  out.push({ id: "mlp train step b=64", kind: "train", batch: 64, flops: 2 * 64 * (2 * 784 * 128 + 3 * 128 * 10) });
  // Convolution flops (2 per multiply-add) plus the final matmul; the pools and batch norm are not counted.
  out.push({ id: "cnn forward b=64", kind: "cnn", batch: 64, flops: 2 * 64 * (28 * 28 * 16 * 9 + 14 * 14 * 32 * 144 + 1568 * 10) });
  out.push({ id: "softmax 256x1024", kind: "softmax", rows: 256, cols: 1024, flops: null });
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
    case "cnn":
      // Pixels in [0, 1), NCHW [batch, 1, 28, 28].
      return { x: randomF32(c.batch * 784, 8).map((v) => (v + 1) / 2) };
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
