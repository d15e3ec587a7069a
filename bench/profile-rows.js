// `node [--experimental-wasm-relaxed-simd] bench/profile-rows.js [--relaxed] [--calls 300] [--dist DIR]`: the
// per-kernel profile of the row workloads (softmax, log_softmax, layer_norm, cross_entropy's forward) over
// 256x1024, one thread, through the executor's step observer (bench/step-times.js); each row is the median over calls
// (the first sixth dropped as warm-up). `--dist DIR` profiles another build's dist/ (a before/after). A profile, not
// a benchmark: the observer adds a little.
import { resolve } from "node:path";
import { stepTimes } from "./step-times.js";
import { benchArgs, distModules, median, randomF32 } from "./common.js";

const { args, opt } = benchArgs(1);
const calls = Number(opt("--calls", 300));
const relaxed = args.includes("--relaxed");
const { compileToIR, buildWasm, loadKilnModule, WASM_STATE } = await distModules(resolve(opt("--dist", new URL("../dist", import.meta.url).pathname)));

const R = 256, C = 1024;
const SRC = `
fn softmax_rows(x: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return softmax(x, axis: -1) }
fn log_softmax_rows(x: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return log_softmax(x, axis: -1) }
fn layer_norm_rows(x: f32[${R}, ${C}], gamma: f32[${C}], beta: f32[${C}]) -> f32[${R}, ${C}] { return layer_norm(x, gamma, beta, eps: 1e-5) }
fn cross_entropy_rows(x: f32[${R}, ${C}], labels: i32[${R}]) -> f32 { return cross_entropy(x, labels) }
`;
const r = compileToIR(SRC, "rows.kiln");
if (!r.ir) throw new Error(`compile failed: ${JSON.stringify(r.diagnostics)}`);
const b = await buildWasm(r.ir, "rows");
const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1 });
const x = randomF32(R * C, 7).map((v) => v * 10);
const inputs = { x, gamma: randomF32(C, 8), beta: randomF32(C, 9), labels: Int32Array.from({ length: R }, (_, i) => (i * 37) % C) };
for (const fn of b.manifest.functions) {
  const args = Object.fromEntries(fn.inputs.map((i) => [i.name, inputs[i.name]]));
  const times = stepTimes(m, fn, args, calls, undefined, WASM_STATE).steps;
  const us = times.map((t) => median(t.slice(Math.floor(calls / 6))) * 1000);
  console.log(`${fn.name}${relaxed ? ", relaxed SIMD" : ""}: ${fn.steps.length} kernels, sum of medians ${us.reduce((a, v) => a + v, 0).toFixed(0)} us`);
  fn.steps.forEach((s, i) => console.log(`  ${String(i).padStart(3)} ${s.kernel.padEnd(28)} ${s.ops.join(",").padEnd(40)} ${us[i].toFixed(1).padStart(7)} us`));
}
m.dispose();
