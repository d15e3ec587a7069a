// Fusion and memory planning: fused and unfused programs agree with the reference interpreter on the examples
// and on fuzzed random graphs (elementwise chains, broadcasts, reductions, matmuls); a fused intermediate is
// never stored; scratch memory is reused between values whose lifetimes do not overlap, in place where legal.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { insOf, outsOf, planMemory } from "../../runtime/wasm/memory-plan.js";
import { Rng } from "../../runtime/rng.js";
import { expectClose } from "../helpers/backend.js";

async function both(src: string, skip: string[]) {
  const r = compileToIR(src, "fuzz.kiln", [], skip);
  if (!r.ir) throw new Error(r.diagnostics.map((d) => d.message).join("\n") + "\n" + src);
  const b = await buildWasm(r.ir, "fuzz");
  return { ir: r.ir, manifest: b.manifest, mod: await loadKilnModule(b.manifest, b.wasm) };
}

/** A random well-typed expression over a: [4, 5], b: [5], c: [4, 1], w: [5, 3], of shape [4, 5] or [4, 1]. */
function randomExpr(rng: Rng, depth: number): { e: string; shape: "45" | "41" } {
  const pick = <T>(xs: T[]) => xs[Math.floor(rng.uniform(0, xs.length))]!;
  if (depth === 0) return pick([{ e: "a", shape: "45" as const }, { e: "(a + b)", shape: "45" as const }, { e: "c", shape: "41" as const }]);
  const x = randomExpr(rng, depth - 1);
  const y = randomExpr(rng, depth - 1);
  const shape = x.shape === "45" || y.shape === "45" ? "45" : "41";
  return pick([
    () => ({ e: `(${x.e} + ${y.e})`, shape }),
    () => ({ e: `(${x.e} * ${y.e})`, shape }),
    () => ({ e: `(${x.e} - 0.5 * ${y.e})`, shape }),
    () => ({ e: `tanh(${x.e})`, shape: x.shape }),
    () => ({ e: `relu(${x.e})`, shape: x.shape }),
    () => ({ e: `exp(-abs(${x.e}))`, shape: x.shape }),
    () => ({ e: `maximum(${x.e}, ${y.e})`, shape }),
    () => ({ e: `where(${x.e} > ${y.e}, ${x.e}, sigmoid(${y.e}))`, shape }),
    () => ({ e: `sum(${x.e}, axis: 1, keepdims: true)`, shape: "41" as const }),
    () => ({ e: `(${x.e} - mean(${x.e}, axis: 1, keepdims: true))`, shape: x.shape }),
    () => ({ e: x.shape === "45" ? `((${x.e} @ w) @ transpose(w))` : `(${x.e} * 2)`, shape: x.shape }),
  ])();
}

describe("fusion and memory planning", () => {
  it("fused and unfused random graphs agree with the reference (100 programs)", async () => {
    const rng = new Rng(2024);
    const inputs = {
      a: new Tensor("f32", [4, 5], Array.from({ length: 20 }, () => Math.fround(rng.normal(0, 1)))),
      b: new Tensor("f32", [5], Array.from({ length: 5 }, () => Math.fround(rng.normal(0, 1)))),
      c: new Tensor("f32", [4, 1], Array.from({ length: 4 }, () => Math.fround(rng.normal(0, 1)))),
      w: new Tensor("f32", [5, 3], Array.from({ length: 15 }, () => Math.fround(rng.normal(0, 0.5)))),
    };
    const ref = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: Array.from(t.data as Float32Array), shape: t.shape }]));
    let fusedKernels = 0, unfusedKernels = 0;
    for (let p = 0; p < 100; p++) {
      const { e, shape } = randomExpr(rng, 1 + (p % 4));
      const src = `fn f(a: f32[4, 5], b: f32[5], c: f32[4, 1], w: f32[5, 3]) -> f32[4, ${shape === "45" ? 5 : 1}] {\n  return ${e}\n}`;
      const fused = await both(src, []);
      const plain = await both(src, ["fusion"]);
      const want = evaluateGraph(fused.ir.functions[0], ref)[0];
      expectClose(fused.mod.call("f", inputs) as Tensor, want, `fused #${p}: ${e}`, 1e-5, 1e-5);
      expectClose(plain.mod.call("f", inputs) as Tensor, want, `unfused #${p}: ${e}`, 1e-5, 1e-5);
      fusedKernels += fused.manifest.functions[0].steps.length;
      unfusedKernels += plain.manifest.functions[0].steps.length;
    }
    expect(fusedKernels).toBeLessThan(unfusedKernels * 0.8);
  }, 120_000);

  it("a fused intermediate with a single consumer is never materialised", async () => {
    const { manifest } = await both("fn f(x: f32[N]) -> f32[N] { return tanh(exp(x) * 2 + 1) - x }", []);
    const fn = manifest.functions[0];
    expect(fn.steps.length).toBe(1);
    expect(fn.steps[0].ops).toEqual(["exp", "mul", "add", "tanh", "sub"]);
    expect(fn.values.filter((v) => v.source.kind === "temp").length).toBe(1);
  });

  it("the examples give the same results with and without fusion", async () => {
    for (const [file, fn, inputs] of [
      ["mlp", "MLP.predict", { x: new Tensor("f32", [3, 784], Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i))) }],
      ["autograd", "df_vec", { x: new Tensor("f32", [5], [1, 2, 3, -4, 0.5]) }],
      ["dynamic", "grad_total", { x: new Tensor("f32", [2], [2, -1]) }],
    ] as const) {
      const src = readFileSync(`dsl-examples/${file}.kiln`, "utf8");
      const a = (await both(src, [])).mod.call(fn, inputs) as Tensor;
      const b = (await both(src, ["fusion"])).mod.call(fn, inputs) as Tensor;
      Array.from(a.data as Float32Array).forEach((v, i) => expect(Math.abs(v - (b.data as Float32Array)[i])).toBeLessThan(1e-6));
    }
  });

  it("memory is reused: the MLP training step's peak is below the sum of its values, with in-place updates", async () => {
    const { manifest } = await both(readFileSync("dsl-examples/mlp_train.kiln", "utf8"), []);
    const fn = manifest.functions.find((f) => f.name === "Sgd.step")!;
    const bytes = fn.values.map((v) => (v.source.kind === "fused" ? 0 : v.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : 64), 1) * 4));
    const plan = planMemory(fn, bytes, (i) => fn.values[i].shape.every((d) => typeof d === "number"));
    // Reduce prologues leave few intermediates to store at all (the naive sum is then close to the live set):
    // reuse must still save something, and the peak stays at the 784x128 weight gradient plus the input batch
    // plus the matmuls' packing scratch (a temp no step writes: it lives in the arena while a matmul runs).
    const written = new Set(fn.steps.flatMap((st) => st.buffers.slice(st.buffers.length - (st.outputs ?? 1))));
    const scratch = fn.values.reduce((a, v, i) => a + (v.source.kind === "temp" && !written.has(i) ? bytes[i] : 0), 0);
    expect(scratch).toBeGreaterThan(0);
    expect(plan.peak).toBeLessThan(plan.naive);
    expect(plan.peak).toBeLessThan((784 * 128 + 64 * 784) * 4 * 1.25 + scratch);
    // The weight updates (w - lr * buf) and the momentum buffers are written straight into their params.
    const ws = ["MLP.b1", "MLP.b2", "MLP.w1", "MLP.w2"];
    expect([...plan.intoParam.values()].sort()).toEqual([...ws, ...ws.map((w) => `Sgd.momentum.${w}`)].sort());
  });

  it("planMemory never gives overlapping live values the same bytes (checked on every example function)", async () => {
    for (const file of ["mlp_train", "attention", "loop", "mnist_mlp"]) {
      const { manifest } = await both(readFileSync(`dsl-examples/${file}.kiln`, "utf8"), []);
      for (const fn of manifest.functions) {
        const bytes = fn.values.map((v) => (v.source.kind === "fused" ? 0 : v.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : 3), 1) * 4));
        const plan = planMemory(fn, bytes, (i) => fn.values[i].shape.every((d) => typeof d === "number"));
        const steps = fn.steps;
        // A step writes its last `outputs` buffers (multi-output kernels) and reads the others.
        const firstWrite = (v: number) => steps.findIndex((s) => outsOf(s).includes(v));
        const lastRead = (v: number) => (fn.outputValues.includes(v) ? steps.length : Math.max(firstWrite(v), ...steps.map((s, k) => (insOf(s).includes(v) ? k : -1))));
        // A temp no step writes (a matmul's packing scratch, one per step) is working space of the steps that
        // read it: live from just before its first reader to just after its last, so it clashes with their
        // inputs and outputs but not with values that died earlier.
        const firstRead = (v: number) => steps.findIndex((s) => insOf(s).includes(v));
        const work = (i: number) => fn.values[i]!.source.kind === "temp" && firstWrite(i) < 0 && firstRead(i) >= 0;
        const live = fn.values.map((v, i) => ({ i, lo: v.source.kind === "input" ? -1 : work(i) ? firstRead(i) - 0.5 : firstWrite(i), hi: work(i) ? lastRead(i) + 0.5 : lastRead(i), off: plan.offsets[i], size: bytes[i] })).filter((x) => x.off >= 0 && x.size > 0);
        for (const x of live)
          for (const y of live) {
            if (x.i >= y.i) continue;
            const timeOverlap = x.lo < y.hi && y.lo < x.hi;
            const memOverlap = x.off < y.off + y.size && y.off < x.off + x.size;
            // Sharing is allowed only for an in-place step: one value dies exactly where the other is born.
            if (timeOverlap && memOverlap) throw new Error(`${fn.name}: values ${x.i} and ${y.i} overlap in time [${x.lo},${x.hi}]/[${y.lo},${y.hi}] and memory`);
          }
      }
    }
  });
});
