// `node [--experimental-wasm-relaxed-simd] bench/conv-dx-ab.js [--relaxed] [--rounds 8] [--calls 4] [--batch 32]
// [--symbolic] [--base DIR] [--threads 1] [--size 32] [--ch 3,32,64] [--resnet] [--phase N]`: a training step's value_and_grad of a strided
// stem (conv 3 -> 32 stride 2 on 32x32, relu, conv 32 -> 64 stride 2, relu, loss sum(y * r); gradients of both weights
// and biases, so the second conv's input gradient is the strided one) compiled
// as the strided input gradient's col2im (KILN_CONV_DX_PHASE=0) and as its phase decomposition
// (compiler/ops/conv-backward-phase.ts; `--phase N`: KILN_CONV_DX_PHASE=N, the fewest pixels per phase image, else
// the default), and with --base the same source compiled by another build's dist/ (e.g. a
// `git archive` of main built with tsc), all in one process, alternating batches of calls; prints CPU ms per call and
// the per-round ratios (> 1: the phase build is faster), and checks the gradients agree. `--resnet`: instead,
// dsl-examples/resnet_small.kiln's Train.step (Adam; its stride-2 `down` conv's input gradient is the strided one) at
// --batch, each build's module trained from the same initial params (outputs not compared: Adam steps diverge). Uses dist/.
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { readFileSync } from "node:fs";
import { benchArgs, interleavedCpu, rangeText } from "./common.js";

const { args, opt } = benchArgs(1);
const relaxed = args.includes("--relaxed");
const rounds = Number(opt("--rounds", 8));
const calls = Number(opt("--calls", 4));
const batch = Number(opt("--batch", 32));
const threads = Number(opt("--threads", 1));
const base = opt("--base", null);
const B = args.includes("--symbolic") ? "N" : String(batch);
const S = Number(opt("--size", 32));
const [C0, C1, C2] = opt("--ch", "3,32,64").split(",").map(Number);
const S2 = Math.floor((Math.floor((S - 1) / 2) + 1 - 1) / 2) + 1; // two 3x3 stride-2 padding-1 convs
const sig = `x: f32[${B}, ${C0}, ${S}, ${S}], w1: f32[${C1}, ${C0}, 3, 3], b1: f32[${C1}], w2: f32[${C2}, ${C1}, 3, 3], b2: f32[${C2}], r: f32[${B}, ${C2}, ${S2}, ${S2}]`;
const resnet = args.includes("--resnet");
const src = resnet ? readFileSync(new URL("../dsl-examples/resnet_small.kiln", import.meta.url), "utf8") : `fn loss(${sig}) -> f32 {
  let h = relu(conv2d(x, w1, b1, stride: 2, padding: 1))
  return sum(relu(conv2d(h, w2, b2, stride: 2, padding: 1)) * r)
}
fn vg(${sig}) -> (f32, f32[${C1}, ${C0}, 3, 3], f32[${C1}], f32[${C2}, ${C1}, 3, 3], f32[${C2}]) {
  return value_and_grad(loss, wrt: [w1, b1, w2, b2])(x, w1, b1, w2, b2, r)
}`;

async function build(label, dir, env) {
  const c = dir ? await import(`${dir}/dist/compiler/compile.js`) : { compileToIR, buildWasm };
  const load = dir ? (await import(`${dir}/dist/runtime/wasm/module.js`)).loadKilnModule : loadKilnModule;
  if (env === undefined) delete process.env.KILN_CONV_DX_PHASE;
  else process.env.KILN_CONV_DX_PHASE = env;
  const r = c.compileToIR(src, "stem.kiln");
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  const b = await c.buildWasm(r.ir, "stem");
  const m = await load(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads });
  return { label, m, steps: b.manifest.functions.find((f) => f.name === (resnet ? "Train.step" : "vg")).steps.length };
}
const variants = [];
if (base) variants.push(await build("base", base.startsWith("/") ? base : `${process.cwd()}/${base}`, undefined));
variants.push(await build("col2im", null, "0"), await build("phase", null, opt("--phase", undefined)));
const fill = (n, k, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * s);
const inputs = {
  x: fill(batch * C0 * S * S, 1, 1), w1: fill(C1 * C0 * 9, 2, 0.3), b1: fill(C1, 3, 0.1), w2: fill(C2 * C1 * 9, 4, 0.1), b2: fill(C2, 5, 0.1),
  r: fill(batch * C2 * S2 * S2, 6, 1),
};
const train = { x: fill(batch * 784, 7, 0.5).map((v) => v + 0.5), labels: Int32Array.from({ length: batch }, (_, i) => i % 10) };
const run = (v) => (resnet ? [v.m.call("Train.step", train)] : v.m.call("vg", inputs));
const outs = variants.map(run);
let err = 0;
if (!resnet) for (const o of outs.slice(1)) o.forEach((t, k) => t.data.forEach((v, i) => (err = Math.max(err, Math.abs(v - outs[0][k].data[i]) / (1 + Math.abs(outs[0][k].data[i]))))));
const cpu = interleavedCpu(variants, run, rounds, calls);
const f = rangeText;
console.log(`${resnet ? "resnet_small Train.step" : `stem ${C0}x${S}x${S} -> ${C1} -> ${C2}`}, batch ${B}${B === "N" ? `=${batch}` : ""}, ${relaxed ? "relaxed" : "plain"}, ${threads} thread(s); max relative |diff| of the outputs ${err.toExponential(2)}`);
variants.forEach((v, k) => console.log(`  ${v.label} (${v.steps} steps): CPU ms/call ${f(cpu[k])}`));
const last = cpu.length - 1;
for (let k = 0; k < last; k++) console.log(`  ${variants[k].label} / phase per round: ${f(cpu[k].map((t, i) => t / cpu[last][i]))}`);
variants.forEach((v) => v.m.dispose());
