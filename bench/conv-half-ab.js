// `node [--experimental-wasm-relaxed-simd] bench/conv-half-ab.js [--relaxed] [--precision mixed-bf16] [--rounds 8]
// [--calls 4] [--batch 64] [--threads 1] [--base DIR]`: dsl-examples/mnist_cnn.kiln's Train.step (Adam) under mixed
// precision with the convolutions' patches stored (KILN_CONV_GATHER_HALF=0) and gathered while packing
// (compiler/codegen/plan-conv-gather-half.ts), and with --base the same source compiled by another build's dist/
// (e.g. a `git archive` of main built with tsc), all in one process, alternating batches of calls; prints CPU ms
// per call (median and range over rounds), the steps and peak arena bytes (compiler/report.ts) each build's step
// has at that batch, and per-round ratios (> 1: gathered faster).
// Each module trains from the same seed; outputs are not compared (Adam steps diverge). Uses dist/.
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { readFileSync } from "node:fs";
import { benchArgs, interleavedCpu, rangeText } from "./common.js";

const { args, opt } = benchArgs(1);
const relaxed = args.includes("--relaxed");
const precision = opt("--precision", "mixed-bf16");
const rounds = Number(opt("--rounds", 8));
const calls = Number(opt("--calls", 4));
const batch = Number(opt("--batch", 64));
const threads = Number(opt("--threads", 1));
const base = opt("--base", null);
const src = readFileSync(new URL("../dsl-examples/mnist_cnn.kiln", import.meta.url), "utf8");

async function build(label, dir, env) {
  const c = dir ? await import(`${dir}/dist/compiler/compile.js`) : { compileToIR, buildWasm };
  const load = dir ? (await import(`${dir}/dist/runtime/wasm/module.js`)).loadKilnModule : loadKilnModule;
  if (env === undefined) delete process.env.KILN_CONV_GATHER_HALF;
  else process.env.KILN_CONV_GATHER_HALF = env;
  const r = c.compileToIR(src, "mnist_cnn.kiln", [], [], { precision });
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  const b = await c.buildWasm(r.ir, "cnn");
  const m = await load(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads, seed: 1 });
  const report = (await import(`${dir ?? ".."}/dist/compiler/report.js`)).reportManifest;
  const peak = report(b.manifest, { B: batch }).find((f) => f.name === "Train.step").peakBytes;
  return { label, m, steps: b.manifest.functions.find((f) => f.name === "Train.step").steps.length, peak };
}
const variants = [];
if (base) variants.push(await build("base", base.startsWith("/") ? base : `${process.cwd()}/${base}`, undefined));
variants.push(await build("stored", null, "0"), await build("gathered", null, undefined));
const train = {
  x: Float32Array.from({ length: batch * 784 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37)),
  labels: Int32Array.from({ length: batch }, (_, i) => i % 10),
};
const run = (v) => v.m.call("Train.step", train);
variants.forEach(run);
const cpu = interleavedCpu(variants, run, rounds, calls);
const f = rangeText;
console.log(`mnist_cnn Train.step ${precision}, batch ${batch}, ${relaxed ? "relaxed" : "plain"}, ${threads} thread(s)`);
variants.forEach((v, k) => console.log(`  ${v.label} (${v.steps} steps, peak ${(v.peak / 2 ** 20).toFixed(2)} MiB): CPU ms/call ${f(cpu[k])}`));
const last = cpu.length - 1;
for (let k = 0; k < last; k++) console.log(`  ${variants[k].label} / gathered per round: ${f(cpu[k].map((t, i) => t / cpu[last][i]))}`);
variants.forEach((v) => v.m.dispose());
