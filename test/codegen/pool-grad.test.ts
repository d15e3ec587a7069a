// max_pool2d's gradient as one maxpool_grad kernel (codegen/plan-pool-grad.ts, wasm/pool-grad.ts), and the pool
// kernel's forward values, against PyTorch (test/codegen/pool-grad-goldens.json from scripts/torch-pool-goldens.py,
// torch 1.13: ties, of which these inputs have many, send the gradient to the first maximum) and against the float64
// reference interpreter (also with NaN windows, which by the argmax expansion's convention send no gradient; PyTorch
// would pick the NaN). The MNIST CNN's training step is checked to plan both pools' gradients this way.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { irOf, runBoth, wasmModule, type Input } from "../helpers/backend.js";
import { poolMismatch } from "../helpers/pool-cases.js";

interface T { shape: number[]; data: number[] }
interface GradCase { name: string; k: number; expr: "x" | "bnrelu"; x: T; g: number[]; b: number[]; w: T; y: number[]; dx: number[]; dg?: number[]; db?: number[] }
const GOLD = JSON.parse(readFileSync(new URL("./pool-grad-goldens.json", import.meta.url), "utf8")) as { grads: GradCase[]; forward: { x: T; y: Record<string, T> } };
const f32 = (t: T): Input => ({ dtype: "f32", shape: t.shape, data: t.data });

function program(c: GradCase): string {
  const [, C, H, W] = c.x.shape;
  const h = c.expr === "x" ? "x" : "relu(x * g + b)";
  const ws = `f32[${["B", ...c.w.shape.slice(1)].join(", ")}]`;
  return `
fn loss(x: f32[B, ${C}, ${H}, ${W}], g: f32[${C}, 1, 1], b: f32[${C}, 1, 1], w: ${ws}) -> f32 { return sum(max_pool2d(${h}, ${c.k}) * w) }
fn grads(x: f32[B, ${C}, ${H}, ${W}], g: f32[${C}, 1, 1], b: f32[${C}, 1, 1], w: ${ws}) { return grad(loss, wrt: [x, g, b])(x, g, b, w) }
fn fwd(x: f32[B, ${C}, ${H}, ${W}], g: f32[${C}, 1, 1], b: f32[${C}, 1, 1]) { return max_pool2d(${h}, ${c.k}) }`;
}

const close = (got: ArrayLike<number>, want: readonly number[], exact: boolean) => poolMismatch(got, want, exact);

describe("max_pool2d's gradient kernel against PyTorch and the reference", () => {
  for (const c of GOLD.grads) {
    it(`${c.name}: max_pool2d(${c.expr === "x" ? "x" : "relu(x * g + b)"}, ${c.k}), ties`, async () => {
      const ir = irOf(program(c));
      const b = await buildWasm(ir, "t", { wat: false });
      const steps = b.manifest.functions.find((f) => f.name === "grads")!.steps;
      expect(steps.some((s) => s.kernel.startsWith("maxpool_grad")), steps.map((s) => s.kernel).join(", ")).toBe(true);
      expect(steps.some((s) => s.kernel.startsWith("copy") && s.ops.includes("window")), `no window copy: ${steps.map((s) => `${s.kernel}:${s.ops}`).join(", ")}`).toBe(false);
      const mod = await wasmModule(ir);
      try {
        const inputs = { x: f32(c.x), g: { dtype: "f32", shape: [c.g.length, 1, 1], data: c.g }, b: { dtype: "f32", shape: [c.b.length, 1, 1], data: c.b }, w: f32(c.w) } as Record<string, Input>;
        const { wasm, ref } = await runBoth(ir, "grads", inputs, { module: mod });
        // dx: one of w's values or 0 (times relu' and g, exact in f32 for these halves and quarters).
        expect(close(wasm[0]!.data as ArrayLike<number>, c.dx, true), "dx vs PyTorch").toBeUndefined();
        expect(close(wasm[0]!.data as ArrayLike<number>, Array.from(ref[0]!.data), true), "dx vs reference").toBeUndefined();
        if (c.dg) {
          expect(close(wasm[1]!.data as ArrayLike<number>, c.dg, false), "dg vs PyTorch").toBeUndefined();
          expect(close(wasm[2]!.data as ArrayLike<number>, c.db!, false), "db vs PyTorch").toBeUndefined();
        }
        const { wasm: y } = await runBoth(ir, "fwd", { x: inputs.x!, g: inputs.g!, b: inputs.b! }, { module: mod });
        expect(close(y[0]!.data as ArrayLike<number>, c.y, c.expr === "x"), "forward vs PyTorch").toBeUndefined();
        // NaN and infinities: a NaN window sends no gradient (the reference's argmax expansion), -inf ties go first.
        const odd = { ...inputs, x: { ...inputs.x!, data: c.x.data.map((v, i) => (i % 29 === 3 ? NaN : i % 31 === 5 ? -Infinity : i % 37 === 7 ? Infinity : v)) } };
        const special = await runBoth(ir, "grads", odd, { module: mod });
        expect(close(special.wasm[0]!.data as ArrayLike<number>, Array.from(special.ref[0]!.data), true), "dx with NaN/inf vs reference").toBeUndefined();
        const allInf = { ...inputs, x: { ...inputs.x!, data: c.x.data.map(() => -Infinity) } };
        const ties = await runBoth(ir, "grads", allInf, { module: mod });
        expect(close(ties.wasm[0]!.data as ArrayLike<number>, Array.from(ties.ref[0]!.data), true), "dx, all -inf").toBeUndefined();
      } finally {
        mod.dispose();
      }
    });
  }

  it("forward pools with padding and stride against PyTorch", async () => {
    const [, C, H, W] = GOLD.forward.x.shape;
    const calls: Record<string, string> = { max3s2p1: "max_pool2d(x, 3, stride: 2, padding: 1)", avg3s2p1: "avg_pool2d(x, 3, stride: 2, padding: 1)", avg2: "avg_pool2d(x, 2)", max2p1: "max_pool2d(x, 2, padding: 1)" };
    const src = Object.entries(calls).map(([k, call]) => `fn ${k}(x: f32[B, ${C}, ${H}, ${W}]) { return ${call} }`).join("\n");
    const ir = irOf(src);
    const mod = await wasmModule(ir);
    try {
      for (const [k, want] of Object.entries(GOLD.forward.y)) {
        const { wasm } = await runBoth(ir, k, { x: f32(GOLD.forward.x) }, { module: mod });
        expect(wasm[0]!.shape).toEqual(want.shape);
        expect(close(wasm[0]!.data as ArrayLike<number>, want.data, k.startsWith("max")), k).toBeUndefined();
      }
    } finally {
      mod.dispose();
    }
  });

  it("the MNIST CNN's training step: both pools' gradients and forwards as direct kernels, no window copy", async () => {
    const ir = irOf(readFileSync(new URL("../../dsl-examples/mnist_cnn.kiln", import.meta.url), "utf8"), "mnist_cnn.kiln");
    const b = await buildWasm(ir, "cnn", { wat: false });
    const steps = b.manifest.functions.find((f) => f.name === "Train.step")!.steps;
    expect(steps.filter((s) => s.kernel.startsWith("maxpool_grad")).length).toBe(2);
    expect(steps.filter((s) => s.kernel.startsWith("maxpool_")).length, steps.map((s) => s.kernel).join(", ")).toBe(4);
    // The first pool's window is read by its gradient alone; the second's by its gradient and its forward kernel.
    // The convs' im2col rows are gathered by their forward and weight-gradient matmuls (codegen/plan-conv-wgrad.ts).
    expect(steps.filter((s) => s.kernel.startsWith("copy") && s.ops.includes("window")).map((s) => s.ops.join(",")), "window copies: none").toEqual([]);
  });
});

describe("pool kernels split across 2 threads by planes", () => {
  it("forward (batch_norm-like prologue with per-channel inputs) and gradient equal one thread's bit for bit", async () => {
    // 63 x 16 planes of 14 x 14 outputs (an even cut would fall inside an image): above the runtime's minimum work for a split (threads-split.ts).
    const src = `
fn fwd(x: f32[B, 16, 28, 28], g: f32[16, 1, 1], b: f32[16, 1, 1]) { return max_pool2d(relu(x * g + b), 2) }
fn loss(x: f32[B, 16, 28, 28], w: f32[B, 16, 14, 14]) -> f32 { return sum(max_pool2d(x, 2) * w) }
fn grads(x: f32[B, 16, 28, 28], w: f32[B, 16, 14, 14]) { return grad(loss)(x, w) }`;
    const ir = irOf(src);
    const b = await buildWasm(ir, "thr", { wat: false });
    const { loadKilnModule } = await import("../../runtime/wasm/module.js");
    const { Tensor } = await import("../../runtime/tensor.js");
    const one = await loadKilnModule(b.manifest, b.wasm), two = await loadKilnModule(b.manifest, b.wasm, { threads: 2 });
    try {
      let s = 3;
      const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.round((((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1) * 4) / 2);
      const x = new Tensor("f32", [63, 16, 28, 28], rnd(63 * 16 * 784));
      const g = new Tensor("f32", [16, 1, 1], rnd(16)), bb = new Tensor("f32", [16, 1, 1], rnd(16));
      const w = new Tensor("f32", [63, 16, 14, 14], rnd(63 * 16 * 196));
      for (const [fn, args] of [["fwd", { x, g, b: bb }], ["grads", { x, w }]] as const) {
        const a = one.call(fn, args as never) as InstanceType<typeof Tensor>, c = two.call(fn, args as never) as InstanceType<typeof Tensor>;
        expect(poolMismatch(c.data as ArrayLike<number>, Array.from(a.data as ArrayLike<number>), true), `${fn}: 2 threads vs 1`).toBeUndefined();
        const ref = await runBoth(ir, fn, Object.fromEntries(Object.entries(args).map(([k, t]) => [k, { dtype: "f32", shape: t.shape, data: Array.from(t.data as Float32Array) }])) as never, { module: one });
        expect(poolMismatch(c.data as ArrayLike<number>, Array.from(ref.ref[0]!.data), fn === "grads"), `${fn}: 2 threads vs reference`).toBeUndefined();
      }
    } finally {
      one.dispose();
      two.dispose();
    }
  });
});
