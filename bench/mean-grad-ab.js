// `node bench/mean-grad-ab.js --base DIR [--rounds 5] [--calls 200]`: the gradient of a mean over a symbolic batch
// (value_and_grad of mean(x * x), x f32[B, 1024], B = 256, 1 thread, plain SIMD128, outputs into reused buffers), Kiln from this checkout's
// dist/ against DIR's dist/ (another commit's built tree), interleaved round by round in one process; prints each
// round's median ms per call and the range of before / after ratios. Issue 19: the count of a symbolic mean.
import { benchArgs, median } from "./common.js";

const { opt } = benchArgs(1);
const base = opt("--base", null);
const rounds = Number(opt("--rounds", 5)), calls = Number(opt("--calls", 200));
if (!base) throw new Error("--base DIR is required");
const SRC = `fn f(x: f32[B, 1024]) -> f32 { return mean(x * x) }
fn g(x: f32[B, 1024]) -> (f32, f32[B, 1024]) { return value_and_grad(f)(x) }`;

async function load(dir) {
  const { compileToIR, buildWasm } = await import(`${dir}/dist/compiler/compile.js`);
  const { loadKilnModule } = await import(`${dir}/dist/runtime/wasm/module.js`);
  const { Tensor } = await import(`${dir}/dist/runtime/tensor.js`);
  const b = await buildWasm(compileToIR(SRC, "mean.kiln").ir, "m");
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: 1 });
  const x = new Tensor("f32", [256, 1024], Float32Array.from({ length: 256 * 1024 }, (_, i) => Math.sin(i)));
  const fn = b.manifest.functions.find((f) => f.name === "g");
  // The outputs go into the same buffers every call (options.out): no 1 MiB result allocated per call, whose
  // garbage made the timings depend on the order of the two sides.
  const out = Object.fromEntries(fn.outputs.map((o) => [o.name, new Float32Array(o.shape.length ? 256 * 1024 : 1)]));
  return { m, x, out, steps: fn.steps.map((s) => s.ops.join(",")) };
}

const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const sides = { before: await load(base), after: await load(here) };
for (const [k, s] of Object.entries(sides)) console.log(`${k}: ${s.steps.length} kernels: ${s.steps.join(" | ")}`);
const v = Object.fromEntries(Object.entries(sides).map(([k, s]) => [k, s.m.call("g", { x: s.x })[1].data]));
console.log("gradients equal:", v.before.every((a, i) => Object.is(a, v.after[i])));
const ratios = [];
for (let r = 0; r < rounds; r++) {
  const ms = {};
  for (const k of r % 2 ? ["after", "before"] : ["before", "after"]) {
    const { m, x, out } = sides[k];
    const t = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      m.call("g", { x }, { out });
      t.push(performance.now() - t0);
    }
    ms[k] = median(t.slice(calls >> 2));
  }
  ratios.push(ms.before / ms.after);
  console.log(`round ${r}: before ${ms.before.toFixed(3)} ms, after ${ms.after.toFixed(3)} ms, before/after ${(ms.before / ms.after).toFixed(2)}x`);
}
console.log(`before/after ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x over ${rounds} rounds`);
