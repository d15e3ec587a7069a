// `node [--experimental-wasm-relaxed-simd] bench/profile-gpt.js [--calls 60] [--relaxed] [--dist DIR]`: where
// Kiln's GPT training step (the bench case `gpt train step b=8`: gpt_char.kiln with plain Adam, 1 thread, plain
// SIMD128, or the relaxed build with `--relaxed`) spends its time, grouped by what each kernel computes:
// the executor's step observer timestamps every step, each kernel's median over calls (the first 10 dropped).
// Step 0 is timed from the start of the call, so it includes the executor's per-call setup. Uses dist/, or
// `--dist DIR` (another tree's build: a before/after with this script).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { stepTimes } from "./step-times.js";
import { benchArgs, cases, distModules, gptAdamSource, gptWeights, inputsOf, median } from "./common.js";

const { args, opt } = benchArgs(1);
const calls = Number(opt("--calls", 60));
const relaxed = args.includes("--relaxed");
const { compileToIR, buildWasm, loadKilnModule, WASM_STATE } = await distModules(resolve(opt("--dist", new URL("../dist", import.meta.url).pathname)));
const src = gptAdamSource(readFileSync(new URL("../dsl-examples/gpt_char.kiln", import.meta.url), "utf8"));
const b = await buildWasm(compileToIR(src, "gpt_char.kiln").ir, "gpt");
const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1 });
for (const [k, v] of Object.entries(gptWeights())) m.setParam(k, v.data);
const { x, y } = inputsOf(cases(false).find((c) => c.kind === "gpttrain"));
const fn = b.manifest.functions.find((f) => f.name === "Step.step");
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const times = stepTimes(m, fn, { x, y }, calls, undefined, WASM_STATE).steps;
const cpu = process.cpuUsage(cpu0);
const us = times.map((t) => median(t.slice(Math.min(10, calls >> 1))) * 1000);
const total = us.reduce((a, v) => a + v, 0);
console.log(`Step.step${relaxed ? " (relaxed build)" : ""}: ${fn.steps.length} kernels, ${fn.values.length} values, sum of medians ${total.toFixed(0)} us; ` +
  `CPU share ${((cpu.user + cpu.system) / 1e3 / (performance.now() - wall0)).toFixed(2)}`);
const groups = new Map();
fn.steps.forEach((s, i) => {
  const key = i === 0 ? `step 0 (${s.ops.join(",")}) + call setup` : s.ops.some((o) => o.includes("matmul")) ? "matmul (+ fused epilogue)" : s.ops.join(",");
  const g = groups.get(key) ?? { n: 0, us: 0 };
  g.n++;
  g.us += us[i];
  groups.set(key, g);
});
for (const [k, g] of [...groups].sort((p, q) => q[1].us - p[1].us).slice(0, 12)) {
  console.log(`${((g.us / total) * 100).toFixed(1).padStart(5)}% ${String(g.n).padStart(4)} kernels ${g.us.toFixed(0).padStart(7)} us  ${k}`);
}
m.dispose();
