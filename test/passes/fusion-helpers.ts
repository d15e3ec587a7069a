// Shared by the fusion tests: a program compiled with and without the fusion pass, and seeded random inputs.
import { compileToIR } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import type { Rng } from "../../runtime/rng.js";
import type { Input } from "../helpers/backend.js";

export function compileBoth(src: string): { fused: IRModule; plain: IRModule } {
  const ir = (skip: string[]) => {
    const r = compileToIR(src, "fusion.kiln", [], skip);
    if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "fusion.kiln": src }));
    return r.ir;
  };
  return { fused: ir([]), plain: ir(["fusion"]) };
}

export function randomInput(rng: Rng, shape: number[], scale = 1): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "f32", shape, data: Array.from({ length: n }, () => Math.fround(rng.normal(0, scale))) };
}


/**
 * A random well-typed .kiln function body over x: [R, C], y: [R, C], v: [C], u: [R, 1], w: [C, C] (seeded):
 * elementwise chains with broadcasts, reductions over either axis (keepdims, so they broadcast back), softmax
 * and layer_norm-style statistics, and matmuls; the result has shape [R, C].
 */
export function randomProgram(rng: Rng, R: number, C: number, depth: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform(0, xs.length))]!;
  const red = () => pick(["sum", "mean", "max", "min"]);
  const gen = (d: number): string => {
    if (d === 0) return pick(["x", "y", "(x * v)", "(y + u)", "(x - u * v)"]);
    const a = gen(d - 1);
    const b = gen(d - 1);
    return pick([
      () => `(${a} + ${b})`,
      () => `(${a} * ${b})`,
      () => `(${a} - 0.5 * ${b})`,
      () => `tanh(${a})`,
      () => `exp(-abs(${a}))`,
      () => `relu(${a} - ${b})`,
      () => `where(${a} > ${b}, ${a}, ${b} * 0.25)`,
      () => `(${a} - ${red()}(${b}, axis: 1, keepdims: true))`,
      () => `(${a} * ${red()}(${b}, axis: 0, keepdims: true))`,
      () => `(${a} + ${red()}(exp(${b} - max(${b}, axis: 1, keepdims: true)), axis: 1, keepdims: true))`,
      () => `softmax(${a}, axis: ${pick([0, 1])})`,
      () => `((${a} - mean(${a}, axis: 1, keepdims: true)) * (${a} - mean(${a}, axis: 1, keepdims: true)))`,
      () => `(mean(${a} * ${a}, axis: 1, keepdims: true) + ${b})`,
      () => `((${a} @ w) * 0.3 + ${b})`,
      () => `(sum(${a}) * 0.01 + ${b})`,
    ])();
  };
  return `fn f(x: f32[${R}, ${C}], y: f32[${R}, ${C}], v: f32[${C}], u: f32[${R}, 1], w: f32[${C}, ${C}]) -> f32[${R}, ${C}] {\n  return ${gen(depth)}\n}`;
}

/** The matmul-epilogue test programs, one function each (the WebGPU suite compiles a subset: fewer shaders). */
export const EPILOGUE_FNS: Record<string, string> = {
  lin: `fn lin(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f32[M, N] { return x @ w + b }`,
  lin_relu: `fn lin_relu(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f32[M, N] { return relu(x @ w + b) }`,
  resid: `fn resid(x: f32[M, K], w: f32[K, N], r: f32[M, N]) -> f32[M, N] { return x @ w + r }`,
  scale: `fn scale(x: f32[M, K], w: f32[K, N]) -> f32[M, N] { return (x @ w) * 0.5 }`,
  rowscale: `fn rowscale(x: f32[M, K], w: f32[K, N], s: f32[M, 1]) -> f32[M, N] { return (x @ w) * s - 1.0 }`,
  swish: `fn swish(x: f32[M, K], w: f32[K, N]) -> f32[M, N] { let y = x @ w
  return y * sigmoid(y) }`,
  tn: `fn tn(a: f32[K, M], w: f32[K, N], b: f32[N]) -> f32[M, N] { return relu(transpose(a) @ w + b) }`,
  nt: `fn nt(x: f32[M, K], w: f32[N, K], b: f32[N]) -> f32[M, N] { return tanh(x @ transpose(w) + b) }`,
  bmm: `fn bmm(a: f32[B, M, K], w: f32[B, K, N], c: f32[B, 1, N]) -> f32[B, M, N] { return a @ w + c }`,
  bmm_shared: `fn bmm_shared(a: f32[B, M, K], w: f32[K, N], b: f32[N]) -> f32[B, M, N] { return relu(a @ w + b) }`,
  bmm_mixed: `fn bmm_mixed(a: f32[B, M, K], w: f32[K, N], c: f32[B, 1, N]) -> f32[B, M, N] { return a @ w * c }`,
  pinned: `fn pinned(x: f32[M, K], w: f32[K, N], b: f32[N]) -> (f32[M, N], f32[M, N]) { let y = x @ w
  return y, y + b }`,
  lin16: `fn lin16(x: f32[M, K], w: f32[K, N], b: f32[N]) -> f16[M, N] { return cast(relu(x @ w + b), f16) }`,
  linbf: `fn linbf(x: f32[M, K], w: f32[K, N], b: f32[N]) -> bf16[M, N] { return cast(x @ w + b, bf16) }`,
  mm16: `fn mm16(x: f16[M, K], w: f16[K, N], r: f16[M, N]) -> f16[M, N] { return cast(x @ w + cast(r, f32), f16) }`,
  bmm16: `fn bmm16(a: f32[B, M, K], w: f32[B, K, N]) -> f16[B, M, N] { return cast(a @ w, f16) }`,
  mlp: `fn mlp(x: f32[M, 784], w1: f32[784, 128], b1: f32[128], w2: f32[128, 10], b2: f32[10]) -> f32[M, 10] {
  return relu(x @ w1 + b1) @ w2 + b2 }`,
};

/** A program of the named EPILOGUE_FNS functions (all of them by default). */
export const epilogueProgram = (names: readonly string[] = Object.keys(EPILOGUE_FNS)): string => names.map((n) => EPILOGUE_FNS[n]!).join("\n");
