// Test helpers for quantization: compile a .kiln source and load it on the wasm backend; the error bound of a
// dynamically quantized layer (shared by the wasm and WebGPU tests).
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "../../runtime/wasm/module.js";
import { rangeToQuant, type QuantizedWeight } from "../../runtime/quantize/math.js";

const builds = new Map<string, ReturnType<typeof buildWasm>>();

/** Builds once per source (Binaryen builds dominate these tests' time). */
export function build(source: string, file = "q.kiln"): ReturnType<typeof buildWasm> {
  let b = builds.get(source);
  if (!b) {
    const r = compileToIR(source, file);
    if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { [file]: source }));
    builds.set(source, (b = buildWasm(r.ir, "q")));
  }
  return b;
}

export async function compileAndLoad(source: string, opts: LoadOptions = {}, file = "q.kiln"): Promise<KilnModule> {
  const b = await build(source, file);
  return loadKilnModule(b.manifest, b.wasm, opts);
}

/** Deterministic values in [-1, 1). */
export function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** |y - y_f32| bound for y = x @ W (+ b, relu): per-row activation step s_a/2, per-channel weight step s_n/2. */
export function bound(x: Float32Array, B: number, w: QuantizedWeight, wf: Float32Array): Float32Array {
  const { K, N } = w;
  const out = new Float32Array(B * N);
  const at = (k: number, n: number) => (w.transposed ? n * K + k : k * N + n);
  for (let r = 0; r < B; r++) {
    let lo = 0, hi = 0, sx = 0;
    for (let k = 0; k < K; k++) {
      lo = Math.min(lo, x[r * K + k]!);
      hi = Math.max(hi, x[r * K + k]!);
      sx += Math.abs(x[r * K + k]!);
    }
    const sa = rangeToQuant(lo, hi).scale;
    for (let n = 0; n < N; n++) {
      let sw = 0;
      for (let k = 0; k < K; k++) sw += Math.abs(wf[at(k, n)]!);
      out[r * N + n] = (sa / 2) * sw + (w.scales[n]! / 2) * (sx + (K * sa) / 2) + 1e-5 * (sx * sw + 1);
    }
  }
  return out;
}

/** One weight used three ways (relu(x @ w + b), x @ transpose(wt), x @ w) plus a train block: the quantizeDynamic cases. */
export const LAYER = `
model L {
  param w: f32[37, 19] = he()
  param wt: f32[19, 37] = he()
  param b: f32[19] = zeros()
  fn forward(x: f32[B, 37]) -> f32[B, 19] { return relu(x @ w + b) }
  fn back(x: f32[B, 37]) -> f32[B, 19] { return x @ transpose(wt) }
  fn plain(x: f32[B, 37]) -> f32[B, 19] { return x @ w }
  fn loss(x: f32[B, 37]) -> f32 { return mean(forward(x)) }
}
train T { model: L, loss: loss, optimizer: sgd(lr: 0.1) }
`;

/** The 40-24-7 MLP of the artifact and WebGPU cases, as model `model`. */
export const mlpSource = (model: string): string => `
model ${model} {
  param w1: f32[40, 24] = he()
  param b1: f32[24] = zeros()
  param w2: f32[24, 7] = xavier()
  param b2: f32[7] = zeros()
  fn forward(x: f32[B, 40]) -> f32[B, 7] { return relu(x @ w1 + b1) @ w2 + b2 }
}
`;
