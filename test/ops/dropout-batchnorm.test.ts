// dropout and batch_norm: eval mode (identity; running statistics) and training mode (seeded masks; batch
// statistics) against hand-computed values, the running statistics a train step writes back, reproducibility of
// the masks per load seed, wasm against the reference given the same random values, a small CNN train block,
// and the diagnostics.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { expectClose, graphOf, irOf, runBoth, wasmModule, type Input } from "../helpers/backend.js";

const f32 = (shape: number[], data: number[]): Input => ({ dtype: "f32", shape, data });
const DROP = "fn f(x: f32[N]) -> f32[N] { return dropout(x, p: 0.3, training: true) }";
const N = 20000;
const X = f32([N], Array.from({ length: N }, (_, i) => Math.fround(1 + (i % 7) * 0.25)));

describe("dropout", () => {
  it("eval mode (any function outside a train step) is the identity and draws nothing", async () => {
    const ir = irOf("fn f(x: f32[B, 5]) -> f32[B, 5] { return dropout(x, 0.3) }\nmodel M { param w: f32[5] = ones()\n fn g(x: f32[B, 5]) -> f32[B, 5] { return dropout(x * w) } }");
    for (const fn of ["f", "M.g"]) expect(graphOf(ir, fn).nodes.some((n) => n.op === "random_uniform"), fn).toBe(false);
    const x = f32([2, 5], [1, -2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const { wasm } = await runBoth(ir, "f", { x });
    expect(Array.from(wasm[0].data as Float32Array)).toEqual(x.data);
  });

  it("training mode zeroes about p of the elements and scales the rest by 1 / (1 - p); wasm matches the reference", async () => {
    const { wasm, ref } = await runBoth(irOf(DROP), "f", { x: X }, { seed: 5 });
    expectClose(wasm[0], ref[0], "dropout");
    const y = wasm[0].data as Float32Array;
    let zeros = 0;
    for (let i = 0; i < N; i++) {
      if (y[i] === 0) zeros++;
      else expect(Math.abs(y[i] - X.data[i] / 0.7)).toBeLessThanOrEqual(1e-6 * y[i]);
    }
    // Binomial(N, 0.3): standard deviation sqrt(N * 0.21) ~ 65; allow 5 of them.
    expect(Math.abs(zeros - 0.3 * N)).toBeLessThan(5 * Math.sqrt(N * 0.21));
  });

  it("masks are reproducible for a load seed, fresh on every call, and differ between seeds and call sites", async () => {
    const ir = irOf(DROP);
    const mask = (t: { data: unknown }) => Array.from(t.data as Float32Array, (v) => (v === 0 ? 0 : 1)).join("");
    const [a, b, c] = await Promise.all([wasmModule(ir, 1), wasmModule(ir, 1), wasmModule(ir, 2)]);
    const a1 = mask(a.call("f", { x: X.data }) as never), a2 = mask(a.call("f", { x: X.data }) as never);
    expect(mask(b.call("f", { x: X.data }) as never)).toBe(a1);
    expect(a2).not.toBe(a1);
    expect(mask(c.call("f", { x: X.data }) as never)).not.toBe(a1);
    const two = await runBoth(irOf("fn f(x: f32[N]) -> (f32[N], f32[N]) { return dropout(x, training: true), dropout(x, training: true) }"), "f", { x: X });
    expect(mask(two.wasm[0])).not.toBe(mask(two.wasm[1]));
    expectClose(two.wasm[1], two.ref[1], "second call site");
  });

  it("in a train step: fresh masks per step, the loss matches the reference's with the same masks", async () => {
    // loss = sum of the kept elements of ones(4000), each scaled by 1 / (1 - 0.25): (kept count) / 0.75.
    const ir = irOf(`
model M {
  param s: f32[1] = ones()
  fn loss(x: f32[N]) -> f32 { return sum(dropout(x * s, 0.25)) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 1e-9) }`);
    const ones = f32([4000], new Array(4000).fill(1));
    const mod = await wasmModule(ir, 9);
    const { wasm, ref } = await runBoth(ir, "T.step", { x: ones }, { seed: 9 });
    expectClose(wasm[0], ref[0], "loss", 1e-5);
    const losses = [Number(wasm[0].data[0]), ...[0, 1].map(() => Number((mod.call("T.step", { x: ones.data }) as { data: Float32Array }).data[0]))];
    expect(losses[1]).toBeCloseTo(losses[0], 2); // the same seed: the same first mask
    expect(losses[2]).not.toBeCloseTo(losses[1], 2);
    for (const l of losses) {
      const kept = l * 0.75;
      expect(Math.abs(kept - Math.round(kept))).toBeLessThan(0.05);
      expect(Math.abs(kept - 3000)).toBeLessThan(5 * Math.sqrt(4000 * 0.1875));
    }
  });
});

describe("batch_norm", () => {
  // Channel 0: x = [1, 5], running mean 1, var 3, eps 1 (std 2), gamma 2, beta 0 -> [0, 4].
  // Channel 1: x = [3, -1], running mean 2, var 8 (std 3), gamma 1, beta 10 -> [10 + 1/3, 9].
  const stats = { g: f32([2], [2, 1]), b: f32([2], [0, 10]), rm: f32([2], [1, 2]), rv: f32([2], [3, 8]) };
  const sig = (x: string) => `x: ${x}, g: f32[2], b: f32[2], rm: f32[2], rv: f32[2]`;
  it("eval mode normalises with the running statistics ([N, C] and [N, C, H, W])", async () => {
    const ir = irOf(`fn f(${sig("f32[N, 2]")}) -> f32[N, 2] { return batch_norm(x, g, b, rm, rv, eps: 1) }
fn f4(${sig("f32[1, 2, 1, 2]")}) -> f32[1, 2, 1, 2] { return batch_norm(x, g, b, rm, rv, eps: 1) }`);
    const a = await runBoth(ir, "f", { x: f32([2, 2], [1, 3, 5, -1]), ...stats });
    expectClose(a.wasm[0], { dtype: "f32", shape: [2, 2], data: Float64Array.from([0, 10 + 1 / 3, 4, 9]) }, "[N, C]", 1e-6);
    const b = await runBoth(ir, "f4", { x: f32([1, 2, 1, 2], [1, 5, 3, -1]), ...stats });
    expectClose(b.wasm[0], { dtype: "f32", shape: [1, 2, 1, 2], data: Float64Array.from([0, 4, 10 + 1 / 3, 9]) }, "[N, C, H, W]", 1e-6);
  });

  it("training mode normalises with the batch mean and biased variance", async () => {
    // Channel values [1, 3, 5, 7]: mean 4, biased variance (9 + 1 + 1 + 9) / 4 = 5; eps 4 gives std 3, so
    // x_hat = [-1, -1/3, 1/3, 1]; gamma 2, beta 1 -> [-1, 1/3, 5/3, 3]. The running stats are not used.
    const ir = irOf(`fn f(x: f32[2, 1, 1, 2], g: f32[1], b: f32[1], rm: f32[1], rv: f32[1]) -> f32[2, 1, 1, 2] {
  return batch_norm(x, g, b, rm, rv, eps: 4, training: true)
}`);
    const { wasm, ref } = await runBoth(ir, "f", { x: f32([2, 1, 1, 2], [1, 3, 5, 7]), g: f32([1], [2]), b: f32([1], [1]), rm: f32([1], [100]), rv: f32([1], [100]) });
    const want = { dtype: "f32" as const, shape: [2, 1, 1, 2], data: Float64Array.from([-1, 1 / 3, 5 / 3, 3]) };
    expectClose(wasm[0], want, "wasm", 1e-6);
    expectClose(wasm[0], ref[0], "reference", 1e-6);
  });

  it("a train step updates the running statistics (unbiased variance), not by the optimizer", async () => {
    const ir = irOf(`
model BN {
  param gamma: f32[2] = ones()
  param beta: f32[2] = zeros()
  param rm: f32[2] = zeros()
  param rv: f32[2] = ones()
  fn forward(x: f32[B, 2]) -> f32[B, 2] { return batch_norm(x, gamma, beta, rm, rv) }
  fn loss(x: f32[B, 2]) -> f32 {
    let y = forward(x)
    return mean(y * y)
  }
}
train T { model: BN, loss: loss, optimizer: sgd(lr: 0.1, momentum: 0.9) }`);
    expect(ir.params.map((p) => p.name).filter((n) => n.includes("momentum"))).toEqual(["T.momentum.BN.gamma", "T.momentum.BN.beta"]);
    const mod = await wasmModule(ir);
    // Columns [1, 3, 5, 7] (mean 4, unbiased variance 20/3) and [2, 2, 2, 6] (mean 3, unbiased variance 4).
    const x = new Float32Array([1, 2, 3, 2, 5, 2, 7, 6]);
    const get = (n: string) => Array.from(mod.getParam(`BN.${n}`).data as Float32Array);
    mod.call("T.step", { x });
    // momentum 0.1: rm = 0.1 * mean, rv = 0.9 * 1 + 0.1 * unbiased.
    get("rm").forEach((v, i) => expect(v).toBeCloseTo([0.4, 0.3][i], 6));
    get("rv").forEach((v, i) => expect(v).toBeCloseTo([0.9 + 2 / 3, 1.3][i], 6));
    mod.call("T.step", { x });
    get("rm").forEach((v, i) => expect(v).toBeCloseTo([0.76, 0.57][i], 6));
    get("rv").forEach((v, i) => expect(v).toBeCloseTo([0.9 * (0.9 + 2 / 3) + 2 / 3, 0.9 * 1.3 + 0.4][i], 5));
    // Eval mode (forward) then normalises with what the steps wrote.
    const [g, b, rm, rv] = ["gamma", "beta", "rm", "rv"].map(get);
    const y = mod.call("BN.forward", { x }) as { data: Float32Array };
    for (let i = 0; i < 8; i++) {
      const c = i % 2;
      expect(y.data[i]).toBeCloseTo(((x[i] - rm[c]) / Math.sqrt(rv[c] + 1e-5)) * g[c] + b[c], 5);
    }
  });

  it("on [N, C, L] (BatchNorm1d's sequence form) a train step's statistics run over N and L", async () => {
    const ir = irOf(`
model BN {
  param gamma: f32[2] = ones()
  param beta: f32[2] = zeros()
  param rm: f32[2] = zeros()
  param rv: f32[2] = ones()
  fn loss(x: f32[B, 2, 2]) -> f32 {
    let y = batch_norm(x, gamma, beta, rm, rv)
    return mean(y * y)
  }
}
train T { model: BN, loss: loss, optimizer: sgd(lr: 0.1) }`);
    const mod = await wasmModule(ir);
    // x [2, 2, 2]: channel 0 holds 1, 3 (sample 0) and 5, 7 (sample 1): mean 4, unbiased variance 20/3; channel 1
    // holds 2, 2 and 2, 6: mean 3, unbiased variance 4 (the same statistics as the [N, C] test above).
    mod.call("T.step", { x: new Float32Array([1, 3, 2, 2, 5, 7, 2, 6]) });
    const get = (n: string) => Array.from(mod.getParam(`BN.${n}`).data as Float32Array);
    get("rm").forEach((v, i) => expect(v).toBeCloseTo([0.4, 0.3][i], 6));
    get("rv").forEach((v, i) => expect(v).toBeCloseTo([0.9 + 2 / 3, 1.3][i], 6));
  });
});

describe("batch_norm with training: false in a train step", () => {
  it("normalises with the running statistics and leaves them to nobody (no update, no optimizer)", async () => {
    const ir = irOf(`
model F {
  param gamma: f32[2] = ones()
  param rm: f32[2] = constant(1)
  param rv: f32[2] = constant(3)
  fn loss(x: f32[B, 2]) -> f32 { return sum(batch_norm(x, gamma, gamma * 0, rm, rv, eps: 1, training: false)) }
}
train T { model: F, loss: loss, optimizer: sgd(lr: 0.5) }`);
    const mod = await wasmModule(ir);
    // (x - 1) / 2 summed: (1 - 1)/2 + (5 - 1)/2 + (3 - 1)/2 + (-1 - 1)/2 = 2 with gamma 1.
    const loss = mod.call("T.step", { x: new Float32Array([1, 3, 5, -1]) }) as { data: Float32Array };
    expect(loss.data[0]).toBeCloseTo(2, 6);
    expect(Array.from(mod.getParam("F.rm").data as Float32Array)).toEqual([1, 1]);
    expect(Array.from(mod.getParam("F.rv").data as Float32Array)).toEqual([3, 3]);
    // gamma is trained: d loss / d gamma_c = sum over the batch of x_hat = [2, 0] -> gamma = [1 - 1, 1].
    expect(Array.from(mod.getParam("F.gamma").data as Float32Array)).toEqual([0, 1]);
  });
});

describe("a small CNN trains (conv2d, batch_norm, relu, max_pool2d, flatten, dropout, linear)", () => {
  it("the loss falls on a fixed batch; the first step matches the reference", async () => {
    const ir = irOf(`
model Cnn {
  param w1: f32[4, 1, 3, 3] = he()
  param b1: f32[4] = zeros()
  param g1: f32[4] = ones()
  param be1: f32[4] = zeros()
  param rm1: f32[4] = zeros()
  param rv1: f32[4] = ones()
  param w2: f32[16, 3] = xavier()
  param b2: f32[3] = zeros()
  fn forward(x: f32[B, 1, 8, 8]) -> f32[B, 3] {
    let h = relu(batch_norm(conv2d(x, w1, b1, padding: 1), g1, be1, rm1, rv1))
    let p = dropout(flatten(max_pool2d(h, 4)), 0.1)
    return linear(p, w2, b2)
  }
  fn loss(x: f32[B, 1, 8, 8], y: i32[B]) -> f32 { return cross_entropy(forward(x), y) }
}
train T { model: Cnn, loss: loss, optimizer: adam(lr: 0.05) }`);
    const B = 6;
    const x = f32([B, 1, 8, 8], Array.from({ length: B * 64 }, (_, i) => Math.fround(Math.sin(i * 0.37) + (Math.floor(i / 64) % 3) * 0.5)));
    const y = { dtype: "i32" as const, shape: [B], data: [0, 1, 2, 0, 1, 2] };
    const mod = await wasmModule(ir, 11);
    const first = await runBoth(ir, "T.step", { x, y }, { seed: 11 });
    expectClose(first.wasm[0], first.ref[0], "first loss", 1e-4, 1e-5);
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) losses.push(Number((mod.call("T.step", { x: x.data, y: new Int32Array(y.data) }) as { data: Float32Array }).data[0]));
    expect(losses[0]).toBeCloseTo(Number(first.wasm[0].data[0]), 5);
    expect(losses[29], losses.join(", ")).toBeLessThan(losses[0] * 0.5);
  });
});

describe("diagnostics", () => {
  const diag = (src: string) => {
    const r = compileToIR(src, "bad.kiln");
    expect(r.ir).toBeUndefined();
    return r.diagnostics.map((d) => ({ code: d.code, message: d.message }));
  };
  it("dropout p out of [0, 1); batch_norm shapes, momentum and eps", () => {
    expect(diag("fn f(x: f32[4]) -> f32[4] { return dropout(x, 1) }")[0]).toEqual({ code: "K411", message: "dropout p must be in [0, 1), got 1" });
    const bn = (args: string, x = "f32[4, 3]") => diag(`fn f(x: ${x}, g: f32[3], v: f32[2]) { return batch_norm(${args}) }`)[0];
    expect(bn("x, v, g, g, g")).toEqual({ code: "K409", message: "gamma must have shape [3], got f32[2]" });
    // [N, C], [N, C, L] and [N, C, H, W] are accepted; rank 5 is not.
    expect(bn("x, g, g, g, g", "f32[4, 3, 2, 2, 2]")).toEqual({ code: "K409", message: "batch_norm needs x [N, C], [N, C, L] or [N, C, H, W], got f32[4, 3, 2, 2, 2]" });
    expect(bn("x, g, g, g, g, momentum: 2").code).toBe("K411");
    expect(bn("x, g, g, g, g, eps: 0").code).toBe("K411");
  });
  it("in a train step the running statistics must be params", () => {
    const [d] = diag(`
model M {
  param g: f32[3] = ones()
  fn loss(x: f32[4, 3]) -> f32 { return sum(batch_norm(x, g, g, g * 2, g)) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
    expect(d).toEqual({ code: "K501", message: "in a train step, batch_norm's running_mean must be a param of the model" });
    const [twice] = diag(`
model M {
  param g: f32[3] = ones()
  param rm: f32[3] = zeros()
  fn loss(x: f32[4, 3]) -> f32 { return sum(batch_norm(x, g, g, rm, g) + batch_norm(x * 2, g, g, rm, g)) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.1) }`);
    expect(twice).toEqual({ code: "K501", message: "param M.rm is already updated as running statistics by another batch_norm in this step" });
  });
});
