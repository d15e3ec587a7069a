// The oracle of mixed precision: the reference interpreter rounds every f16/bf16 value to its format.
import { describe, expect, it } from "vitest";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { irOf } from "../helpers/backend.js";

const run = (src: string, fn: string, x: number[]) => {
  const ir = irOf(src);
  const g = ir.functions.find((f) => f.name === fn)!;
  return Array.from(evaluateGraph(g, { x: { data: x, shape: [x.length] } })[0].data);
};

describe("reference interpreter f16/bf16 rounding", () => {
  // Golden values from the IEEE 754 binary16 format (numpy: np.float16(v)): 1 + 2^-11 is the tie between 1 and
  // 1 + 2^-10 and rounds to even (1); 1 + 3*2^-11 ties to 1 + 2^-9; 65520 is the overflow threshold (-> inf);
  // 2^-24 is the smallest subnormal, 2^-25 ties to 0, 1.5*2^-25 rounds up to 2^-24.
  it("cast to f16 rounds to nearest even, overflows to Inf, keeps subnormals and NaN", () => {
    const src = "fn f(x: f32[N]) -> f32[N] { return cast(cast(x, f16), f32) }";
    const x = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, -70000, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, NaN, 0.1];
    const y = run(src, "f", x);
    expect(y.slice(0, 8)).toEqual([1, 1 + 2 ** -9, 65504, Infinity, -Infinity, 2 ** -24, 0, 2 ** -24]);
    expect(Number.isNaN(y[8])).toBe(true);
    expect(y[9]).toBe(0.0999755859375); // np.float16(0.1) == 0.0999755859375
  });

  // bf16 keeps 8 significand bits: 1 + 2^-8 ties to 1, 1 + 3*2^-8 ties up to 1 + 2^-6; bf16(0.1) = 0.10009765625
  // (torch.tensor(0.1, dtype=torch.bfloat16).item()); bf16 has f32's range, so 1e38 stays finite.
  it("cast to bf16 rounds to nearest even on the top 16 bits", () => {
    const src = "fn f(x: f32[N]) -> f32[N] { return cast(cast(x, bf16), f32) }";
    const y = run(src, "f", [1 + 2 ** -8, 1 + 3 * 2 ** -8, 0.1, 1e38]);
    expect(y.slice(0, 3)).toEqual([1, 1 + 2 ** -6, 0.10009765625]);
    expect(Number.isFinite(y[3])).toBe(true);
  });

  it("arithmetic on f16 values is rounded after every op (as a backend storing 16 bits sees it)", () => {
    // 2048 + 1 is not representable in f16 (spacing 2 at 2048): ties to even -> 2048; 2048 + 3 -> 2052.
    const src = "fn f(x: f32[N]) -> f32[N] { let h = cast(x, f16)\n return cast(h + cast(1.0, f16), f32) }";
    expect(run(src, "f", [2048, 2051])).toEqual([2048, 2052]);
  });
});
