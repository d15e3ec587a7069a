// `node [--experimental-wasm-relaxed-simd] bench/profile-cnn.js [--relaxed] [--calls 60] [--fn MnistCNN.forward]
// [--batch 64] [--conv]`: per kernel, where dsl-examples/mnist_cnn.kiln's forward (or another of its functions, called
// with the bench's inputs) spends its time at one thread, like bench/profile-steps.js: the executor's step
// observer timestamps every step, each row is the median over calls (first sixth dropped); the first line adds
// the whole call's median and the CPU time per call. `--conv`: the bench's single conv layer (case "conv ...") instead. A profile, not a benchmark. Uses dist/ (`npm run build`).
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { stepTimes } from "./step-times.js";
import { benchArgs, cases, cnnWeights, inputsOf, median } from "./common.js";
import { SOURCES } from "./systems/kiln.js";

const { args, opt } = benchArgs(1);
const calls = Number(opt("--calls", 60));
const conv = args.includes("--conv") ? cases(false).find((c) => c.kind === "conv") : null;
const fnName = conv ? "Conv.forward" : opt("--fn", "MnistCNN.forward");
const batch = Number(opt("--batch", 64));
const relaxed = args.includes("--relaxed");

const src = conv ? SOURCES.conv(conv) : readFileSync(new URL("../dsl-examples/mnist_cnn.kiln", import.meta.url), "utf8");
const r = compileToIR(src, "mnist_cnn.kiln");
if (!r.ir) throw new Error(`compile failed: ${JSON.stringify(r.diagnostics)}`);
const b = await buildWasm(r.ir, "cnn");
const convIn = conv ? inputsOf(conv) : null;
const params = conv ? { "Conv.w": convIn.w, "Conv.b": convIn.b } : Object.fromEntries(Object.entries(cnnWeights()).map(([k, v]) => [`MnistCNN.${k}`, v]));
const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1, params });
const { x } = convIn ?? inputsOf({ kind: "cnn", batch });
const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
const fn = b.manifest.functions.find((f) => f.name === fnName);
if (!fn) throw new Error(`no function ${fnName}: ${b.manifest.functions.map((f) => f.name).join(", ")}`);
const inputs = fnName.endsWith("forward") ? { x } : { x, labels };
let cpu0 = process.cpuUsage();
const { steps: times, totals } = stepTimes(m, fn, inputs, calls, (i) => {
  if (i === Math.floor(calls / 6)) cpu0 = process.cpuUsage();
});
const cpu = process.cpuUsage(cpu0);
const counted = calls - Math.floor(calls / 6);
const us = times.map((t) => median(t.slice(Math.floor(calls / 6))) * 1000);
console.log(`${fnName}, batch ${batch}${relaxed ? ", relaxed SIMD" : ""}: ${fn.steps.length} steps, sum of medians ${us.reduce((a, v) => a + v, 0).toFixed(0)} us, ` +
  `call median ${median(totals.slice(Math.floor(calls / 6))).toFixed(2)} ms, CPU ${((cpu.user + cpu.system) / 1e3 / counted).toFixed(2)} ms per call`);
fn.steps.forEach((s, i) => console.log(`  ${String(i).padStart(3)} ${s.kernel.padEnd(24)} ${s.ops.join(",").padEnd(48)} ${us[i].toFixed(1).padStart(8)} us`));
m.dispose();
