// `node [--experimental-wasm-relaxed-simd] bench/profile-steps.js [--precision f32|mixed-f16|mixed-bf16]...
// [--relaxed] [--calls 300] [--min-us 8]`: where the
// bench MLP training step (B=64, SGD, as bench/mixed.js) spends its time, per kernel call: the executor's step
// observer timestamps every step; each row is the median over calls (the first sixth dropped as warm-up), 1 thread,
// plain SIMD128 (`--relaxed`: the relaxed-SIMD build, which needs the flag on Node 20). Run `npm run build` first
// (it uses dist/). A profile, not a benchmark: the observer adds a little.
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { stepTimes } from "./step-times.js";
import { benchArgs, median, mlpWeights, randomF32 } from "./common.js";

const { args, opt } = benchArgs(1);
const many = (name) => args.flatMap((a, i) => (args[i - 1] === name ? [a] : []));
const precisions = many("--precision").length ? many("--precision") : ["f32", "mixed-f16"];
const calls = Number(opt("--calls", 300));
const minUs = Number(opt("--min-us", 8));
const relaxed = args.includes("--relaxed");

const MLP = readFileSync(new URL("../dsl-examples/mlp.kiln", import.meta.url), "utf8");
const TRAIN = `${MLP}\ntrain Step {\n  model: MLP\n  loss: loss\n  optimizer: sgd(lr: 0.1)\n}\n`;
const x = randomF32(64 * 784, 7);
const labels = Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 10);

for (const precision of precisions) {
  const r = compileToIR(TRAIN, "step.kiln", [], [], { precision });
  if (!r.ir) throw new Error(`compile failed: ${JSON.stringify(r.diagnostics)}`);
  const b = await buildWasm(r.ir, "step");
  const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1 });
  const w = mlpWeights();
  for (const [k, v] of Object.entries({ "MLP.w1": w.w1, "MLP.b1": w.b1, "MLP.w2": w.w2, "MLP.b2": w.b2 })) m.setParam(k, v);
  const fn = b.manifest.functions.find((f) => f.name === "Step.step");
  const times = stepTimes(m, fn, { x, labels }, calls).steps;
  const us = times.map((t) => median(t.slice(Math.floor(calls / 6))) * 1000);
  console.log(`Step.step, ${precision}${relaxed ? ", relaxed SIMD" : ""}: ${fn.steps.length} kernels, sum of medians ${us.reduce((a, v) => a + v, 0).toFixed(0)} us (rows >= ${minUs} us)`);
  fn.steps.forEach((s, i) => {
    if (us[i] >= minUs) console.log(`  ${String(i).padStart(3)} ${s.kernel.padEnd(24)} ${s.ops.join(",").padEnd(40)} ${us[i].toFixed(1).padStart(7)} us`);
  });
  m.dispose();
}
