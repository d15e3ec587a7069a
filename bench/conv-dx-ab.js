// `node [--experimental-wasm-relaxed-simd] bench/conv-dx-ab.js [--relaxed] [--rounds 8] [--calls 4] [--batch 32]
// [--symbolic] [--base DIR] [--threads 1]`: a training step's value_and_grad of a strided stem (conv 3 -> 32 stride 2
// on 32x32, relu, conv 32 -> 64 stride 2, relu, loss sum(y * r); gradients of x, both weights and biases) compiled
// as the strided input gradient's col2im (KILN_CONV_DX_PHASE=0) and as its phase decomposition
// (compiler/ops/conv-backward-phase.ts), and with --base the same source compiled by another build's dist/ (e.g. a
// `git archive` of main built with tsc), all in one process, alternating batches of calls; prints CPU ms per call and
// the per-round ratios (> 1: the phase build is faster), and checks the gradients agree. Uses dist/.
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { benchArgs, median } from "./common.js";

const { args, opt } = benchArgs(1);
const relaxed = args.includes("--relaxed");
const rounds = Number(opt("--rounds", 8));
const calls = Number(opt("--calls", 4));
const batch = Number(opt("--batch", 32));
const threads = Number(opt("--threads", 1));
const base = opt("--base", null);
const B = args.includes("--symbolic") ? "N" : String(batch);
const src = `fn loss(x: f32[${B}, 3, 32, 32], w1: f32[32, 3, 3, 3], b1: f32[32], w2: f32[64, 32, 3, 3], b2: f32[64], r: f32[${B}, 64, 8, 8]) -> f32 {
  let h = relu(conv2d(x, w1, b1, stride: 2, padding: 1))
  return sum(relu(conv2d(h, w2, b2, stride: 2, padding: 1)) * r)
}
fn vg(x: f32[${B}, 3, 32, 32], w1: f32[32, 3, 3, 3], b1: f32[32], w2: f32[64, 32, 3, 3], b2: f32[64], r: f32[${B}, 64, 8, 8]) -> (f32, f32[32, 3, 3, 3], f32[32], f32[64, 32, 3, 3], f32[64]) {
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
  return { label, m, steps: b.manifest.functions.find((f) => f.name === "vg").steps.length };
}
const variants = [];
if (base) variants.push(await build("base", base.startsWith("/") ? base : `${process.cwd()}/${base}`, undefined));
variants.push(await build("col2im", null, "0"), await build("phase", null, "1"));
const fill = (n, k, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * s);
const inputs = {
  x: fill(batch * 3 * 32 * 32, 1, 1), w1: fill(32 * 27, 2, 0.3), b1: fill(32, 3, 0.1), w2: fill(64 * 288, 4, 0.1), b2: fill(64, 5, 0.1),
  r: fill(batch * 64 * 64, 6, 1),
};
const run = (v) => v.m.call("vg", inputs);
const outs = variants.map(run);
let err = 0;
for (const o of outs.slice(1)) o.forEach((t, k) => t.data.forEach((v, i) => (err = Math.max(err, Math.abs(v - outs[0][k].data[i]) / (1 + Math.abs(outs[0][k].data[i]))))));
const cpu = variants.map(() => []);
for (let r = 0; r < rounds + 1; r++) {
  variants.forEach((v, k) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) run(v);
    const c = process.cpuUsage(c0);
    if (r > 0) cpu[k].push((c.user + c.system) / 1e3 / calls);
  });
}
const f = (a) => `${median(a).toFixed(2)} (${Math.min(...a).toFixed(2)}-${Math.max(...a).toFixed(2)})`;
console.log(`stem batch ${B}${B === "N" ? `=${batch}` : ""}, ${relaxed ? "relaxed" : "plain"}, ${threads} thread(s); max relative |diff| of the outputs ${err.toExponential(2)}`);
variants.forEach((v, k) => console.log(`  ${v.label} (${v.steps} steps): CPU ms/call ${f(cpu[k])}`));
const last = cpu.length - 1;
for (let k = 0; k < last; k++) console.log(`  ${variants[k].label} / phase per round: ${f(cpu[k].map((t, i) => t / cpu[last][i]))}`);
variants.forEach((v) => v.m.dispose());
