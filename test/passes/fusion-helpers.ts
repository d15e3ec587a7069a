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
