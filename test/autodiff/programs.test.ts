// The autodiff example programs on the wasm backend and in the reference interpreter, against numbers derived
// by hand (given next to each), plus second derivatives of elementwise functions against calculus.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { irOf, runBoth, expectClose } from "../helpers/backend.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { compileToIR } from "../../compiler/compile.js";

const load = (name: string) => irOf(readFileSync(`dsl-examples/${name}.kiln`, "utf8"), `dsl-examples/${name}.kiln`);
const f32 = (shape: number[], data: number[]) => ({ dtype: "f32" as const, shape, data });
const i32 = (shape: number[], data: number[]) => ({ dtype: "i32" as const, shape, data });

async function both(ir: ReturnType<typeof load>, fn: string, inputs: Record<string, ReturnType<typeof f32> | ReturnType<typeof i32>>, golden: number[][], rtol = 1e-6) {
  const { wasm, ref } = await runBoth(ir, fn, inputs);
  golden.forEach((g, k) => {
    g.forEach((v, i) => {
      expect(Math.abs(ref[k].data[i] - v), `${fn} reference result ${k}[${i}]`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(v)));
      expect(Math.abs(Number(wasm[k].data[i]) - v), `${fn} wasm result ${k}[${i}] = ${wasm[k].data[i]} vs ${v}`).toBeLessThanOrEqual(rtol * Math.max(1, Math.abs(v)));
    });
  });
}

describe("autograd.kiln: f(x) = x**2 + 3x + 1", () => {
  const ir = load("autograd");
  it("grad at x = 2 is 7 (f'(x) = 2x + 3)", () => both(ir, "df", { x: f32([], [2]) }, [[7]]));
  it("second derivative is 2", () => both(ir, "d2f", { x: f32([], [-3.5]) }, [[2]]));
  it("value_and_grad gives (11, 7)", () => both(ir, "f_and_df", { x: f32([], [2]) }, [[11], [7]]));
  it("elementwise gradient of sum is 2x + 3", () => both(ir, "df_vec", { x: f32([3], [1, 2, -1.5]) }, [[5, 7, 0]]));
});

describe("custom_relu.kiln: a user-written backward rule", () => {
  const ir = load("custom_relu");
  it("on [-1, 2] the output is [0, 2]", () => both(ir, "forward", { x: f32([2], [-1, 2]) }, [[0, 2]]));
  it("and the gradient of sum is [0, 1]", () => both(ir, "grad_total", { x: f32([2], [-1, 2]) }, [[0, 1]]));
  it("the rule is used instead of differentiating the forward body", () => {
    // maximum's own VJP would give 0.5 * dy to... no: with ties at 0 maximum(x, 0) gives dy to x (x >= 0).
    // The custom rule zeroes it (x > 0 is false at 0), so at x = 0 the two differ: the rule's answer is 0.
    const g = ir.functions.find((f) => f.name === "grad_total")!;
    expect(evaluateGraph(g, { x: { data: [0, 0], shape: [2] } })[0].data[0]).toBe(0);
  });
});

describe("dynamic.kiln: data-dependent branch", () => {
  const ir = load("dynamic");
  it("at x = [1, -1] (sum 0: else branch, x + 1) the gradient is [1, 1]", () => both(ir, "grad_total", { x: f32([2], [1, -1]) }, [[1, 1]]));
  it("at x = [2, -1] (then branch, x * 2) the gradient is [2, 2]", () => both(ir, "grad_total", { x: f32([2], [2, -1]) }, [[2, 2]]));
  it("values follow the branch taken", () => both(ir, "branchy", { x: f32([2], [2, -1]) }, [[4, -2]]));
});

describe("loop.kiln: loops with run-time trip counts", () => {
  const ir = load("loop");
  // y = x^(2^n); dy/dx = 2^n x^(2^n - 1): at x = 1.1, n = 3: 8 * 1.1^7.
  it("d/dx x^(2^n) at x = 1.1, n = 3 is 8 * 1.1^7", () => both(ir, "d_power_tower", { x: f32([], [1.1]), n: i32([], [3]) }, [[8 * Math.pow(1.1, 7)]], 1e-5));
  it("n = 0 leaves x unchanged (gradient 1)", () => both(ir, "d_power_tower", { x: f32([], [1.1]), n: i32([], [0]) }, [[1]]));
  it("value x^8 at n = 3", () => both(ir, "power_tower", { x: f32([], [1.1]), n: i32([], [3]) }, [[Math.pow(1.1, 8)]], 1e-5));
  // 1.5 -> 2.25 -> 5.0625 -> 25.63 (stops: >= 10), so y = x^8 and dy/dx = 8 x^7 = 136.6875.
  it("while loop: gradient through the iterations actually run", () => both(ir, "d_square_until", { x: f32([], [1.5]), limit: f32([], [10]) }, [[136.6875]], 1e-5));
});

describe("second derivatives of elementwise functions (float64 reference)", () => {
  // Calculus: (e^x)'' = e^x; tanh'' = -2 tanh (1 - tanh^2); sigmoid'' = s (1 - s)(1 - 2s); log'' = -1/x^2;
  // sqrt'' = -1/4 x^(-3/2); (x^3)'' = 6x; (1/x)'' = 2/x^3.
  const cases: [string, (x: number) => number][] = [
    ["exp(x)", Math.exp],
    ["tanh(x)", (x) => -2 * Math.tanh(x) * (1 - Math.tanh(x) ** 2)],
    ["sigmoid(x)", (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s) * (1 - 2 * s); }],
    ["log(x)", (x) => -1 / (x * x)],
    ["sqrt(x)", (x) => -0.25 * Math.pow(x, -1.5)],
    ["x ** 3", (x) => 6 * x],
    ["1 / x", (x) => 2 / (x * x * x)],
    ["x * exp(-x)", (x) => (x - 2) * Math.exp(-x)],
  ];
  for (const [expr, want] of cases) {
    it(expr, () => {
      const src = `fn f(x: f64) -> f64 { return ${expr} }\nfn d1(x: f64) -> f64 { return grad(f)(x) }\nfn d2(x: f64) -> f64 { return grad(d1)(x) }`;
      const r = compileToIR(src, "d2.kiln");
      expect(r.diagnostics).toEqual([]);
      const g = r.ir!.functions.find((x) => x.name === "d2")!;
      for (const x of [0.3, 0.9, 1.7]) expect(evaluateGraph(g, { x: { data: [x], shape: [] } })[0].data[0]).toBeCloseTo(want(x), 10);
    });
  }
});

describe("gradients with respect to model params", () => {
  it("grad of a loss wrt a param matches the reference on wasm", async () => {
    const ir = irOf(`
model Lin {
  param w: f32[3, 2] = normal(std: 1)
  param b: f32[2] = ones()
  fn loss(x: f32[B, 3]) -> f32 { return mean((x @ w + b) ** 2) }
  fn grads(x: f32[B, 3]) -> (f32[3, 2], f32[2]) { return grad(loss, wrt: [w, b])(x) }
}`);
    const x = f32([4, 3], [1, 2, 3, -1, 0, 2, 0.5, 0.5, -2, 3, 1, 0]);
    const { wasm, ref } = await runBoth(ir, "Lin.grads", { x }, { seed: 4 });
    expectClose(wasm[0], ref[0], "dw", 1e-5, 1e-5);
    expectClose(wasm[1], ref[1], "db", 1e-5, 1e-5);
    // Hand check of db: d/db mean((xw + b)^2) = 2 / (B * 2) * column sums of (xw + b), with the same w.
    const w = (await import("../../compiler/cli/run.js")).referenceParams(ir, 4)["Lin.w"];
    for (let j = 0; j < 2; j++) {
      let s = 0;
      for (let r = 0; r < 4; r++) s += x.data[r * 3] * w[j] + x.data[r * 3 + 1] * w[2 + j] + x.data[r * 3 + 2] * w[4 + j] + 1;
      expect(ref[1].data[j]).toBeCloseTo((2 / 8) * s, 9);
    }
  });
});

describe("the runtime runs only the branch taken", () => {
  // sqrt(x) for x > 0, else 0. At x = -1 the then-branch would compute sqrt(-1) = NaN and, in the backward,
  // 0.5 / sqrt(x) = NaN; computing both branches and selecting (jnp.where style) leaks that NaN into the
  // gradient (0 * NaN). With guarded branches the untaken side never runs: value 0, gradient 0.
  const src = `
fn safe_sqrt(x: f32) -> f32 {
  if x > 0 {
    return sqrt(x)
  } else {
    return x * 0
  }
}
fn d(x: f32) -> f32 { return grad(safe_sqrt)(x) }`;
  it("no NaN from the untaken branch, in value or gradient, on both backends", async () => {
    const ir = irOf(src);
    for (const [x, v, g] of [[-1, 0, 0], [4, 2, 0.25]]) {
      const { wasm, ref } = await runBoth(ir, "safe_sqrt", { x: f32([], [x]) });
      expect(Math.abs(Number(wasm[0].data[0]))).toBeCloseTo(v, 6);
      expect(Math.abs(ref[0].data[0])).toBeCloseTo(v, 12);
      const d = await runBoth(ir, "d", { x: f32([], [x]) });
      expect(Number(d.wasm[0].data[0])).toBeCloseTo(g, 6);
      expect(d.ref[0].data[0]).toBeCloseTo(g, 12);
    }
  });
  it("the untaken branch's kernels are skipped (NaN checking sees nothing)", async () => {
    const { wasmModule } = await import("../helpers/backend.js");
    const mod = await wasmModule(irOf(src));
    expect(() => mod.call("d", { x: -1 }, { checkNumerics: true })).not.toThrow();
    const plan = mod.manifest.functions.find((f) => f.name === "safe_sqrt")!;
    expect(plan.steps.some((s) => s.guard?.length)).toBe(true);
  });
});
