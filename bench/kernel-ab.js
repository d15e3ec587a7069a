// Kernels only, before/after: `node [--experimental-wasm-relaxed-simd] bench/kernel-ab.js --base DIR [--case softmax]
// [--simd plain|relaxed] [--rounds 40] [--batch 50] [--rows 256 --cols 1024] [--causal] [--step K]` compiles one row workload
// over rows x cols, 256x1024 by default (softmax, log_softmax,
// cross_entropy, layer_norm; softmax_grad, log_softmax_grad: the gradient of sum(softmax(x) * t)) with DIR's dist/ (another commit's tree, built) and with this checkout's, then runs each
// build's steps straight on its wasm exports (own memory, no input or output copies, no executor), alternating
// batches of calls between the builds in one process, and prints the CPU time per call and the per-round ratio
// before / after. On a shared machine this is far steadier than timing whole calls: what the neighbours take shows
// in both builds alike, and the 1 MB copies in and out (most of a whole softmax call) are left out. Then each step
// alone, per build (the per-step CPU time; less steady than the ratio). `--causal` (softmax, log_softmax and their
// _grad cases; rows a multiple of cols): the scores masked as an attention's, row i of each [cols, cols] block -1e9
// past column i: the forward cases get x so filled (as GPT's matmul epilogue stores it), the _grad cases compute
// where(mask, x, -1e9) from a bool [cols, cols] input mask[i, j] = j <= i, so their backward kernel reads the mask
// as GPT's does (GPT's attention rows: --rows 2048 --cols 64 --causal).
import { resolve } from "node:path";
import { benchArgs, distModules, median } from "./common.js";

const { opt } = benchArgs(1);
const base = opt("--base", null);
if (!base) throw new Error("--base DIR is required (a tree with its own dist/)");
const which = opt("--case", "softmax");
const simd = opt("--simd", "plain");
const rounds = Number(opt("--rounds", 40));
const batch = Number(opt("--batch", 50));
const R = Number(opt("--rows", 256)), C = Number(opt("--cols", 1024));
const causal = process.argv.includes("--causal");
if (causal && R % C) throw new Error("--causal: rows must be a multiple of cols");
// The masked scores of a causal attention, [R / C, C, C] (the mask broadcast over the first axis), or x itself.
const X = causal ? `x: f32[${R / C}, ${C}, ${C}], mask: bool[${C}, ${C}]` : `x: f32[${R}, ${C}]`;
const XT = causal ? `f32[${R / C}, ${C}, ${C}]` : `f32[${R}, ${C}]`;
const S = causal ? "where(mask, x, -1000000000.0)" : "x";
const SRCS = causal ? {
  softmax: `fn f(x: ${XT}) -> ${XT} { return softmax(x, axis: -1) }`,
  log_softmax: `fn f(x: ${XT}) -> ${XT} { return log_softmax(x, axis: -1) }`,
  softmax_grad: `fn l(${X}, t: ${XT}) -> f32 { return sum(softmax(${S}, axis: -1) * t) }
fn f(${X}, t: ${XT}) -> ${XT} { return grad(l)(x, mask, t) }`,
  log_softmax_grad: `fn l(${X}, t: ${XT}) -> f32 { return sum(log_softmax(${S}, axis: -1) * t) }
fn f(${X}, t: ${XT}) -> ${XT} { return grad(l)(x, mask, t) }`,
} : {
  softmax: `fn f(x: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return softmax(x, axis: -1) }`,
  log_softmax: `fn f(x: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return log_softmax(x, axis: -1) }`,
  cross_entropy: `fn f(x: f32[${R}, ${C}], labels: i32[${R}]) -> f32 { return cross_entropy(x, labels) }`,
  layer_norm: `fn f(x: f32[${R}, ${C}], gamma: f32[${C}], beta: f32[${C}]) -> f32[${R}, ${C}] { return layer_norm(x, gamma, beta, eps: 1e-5) }`,
  // Gradients only (the last function is the one run): the forward's exp-and-sum rows plus the backward.
  softmax_grad: `fn l(x: f32[${R}, ${C}], t: f32[${R}, ${C}]) -> f32 { return sum(softmax(x, axis: -1) * t) }
fn f(x: f32[${R}, ${C}], t: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return grad(l)(x, t) }`,
  log_softmax_grad: `fn l(x: f32[${R}, ${C}], t: f32[${R}, ${C}]) -> f32 { return sum(log_softmax(x, axis: -1) * t) }
fn f(x: f32[${R}, ${C}], t: f32[${R}, ${C}]) -> f32[${R}, ${C}] { return grad(l)(x, t) }`,
};
if (!SRCS[which]) throw new Error(`--case: one of ${Object.keys(SRCS).join(", ")}`);
const evalPoly = (p) => p.reduce((a, term) => a + term.reduce((x, f) => x * f, 1), 0);

/** The function's steps bound to fresh buffers of one instance; inputs filled as bench/softmax-calls.js does. */
async function load(dist) {
  const { compileToIR, buildWasm } = await distModules(dist);
  const r = compileToIR(SRCS[which], "ab.kiln");
  if (!r.ir) throw new Error(`${dist}: ${JSON.stringify(r.diagnostics)}`);
  const b = await buildWasm(r.ir, "ab", { wat: false });
  const fn = b.manifest.functions.at(-1);
  let off = 1024;
  const numel = (v) => v.shape.reduce((x, y) => x * y, 1);
  const addr = fn.values.map((v) => {
    if (v.source.kind === "fused" || v.source.kind === "alias") return 0;
    const a = off;
    off += Math.ceil((numel(v) * 4) / 64) * 64 + 64;
    return a;
  });
  fn.values.forEach((v, id) => { if (v.source.kind === "alias") addr[id] = addr[v.source.of]; });
  const memory = new WebAssembly.Memory({ initial: Math.ceil(off / 65536) + 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(simd === "relaxed" ? b.wasmRelaxed : b.wasm), { env: { memory } });
  let s = 12345;
  fn.values.forEach((v, id) => {
    if (v.source.kind === "const") new Float32Array(memory.buffer, addr[id], 1)[0] = v.source.value;
    if (v.source.kind !== "input") return;
    if (v.dtype === "bool") return new Uint8Array(memory.buffer, addr[id], numel(v)).forEach((_, i, a) => { a[i] = i % C <= Math.floor(i / C) ? 1 : 0; });
    if (v.dtype === "i32") return new Int32Array(memory.buffer, addr[id], numel(v)).forEach((_, i, a) => { a[i] = (i * 37) % C; });
    const x = new Float32Array(memory.buffer, addr[id], numel(v));
    for (let i = 0; i < x.length; i++) x[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 20;
    if (causal && !which.endsWith("_grad") && v.source.index === 0) x.forEach((_, i) => { if (i % C > Math.floor(i / C) % C) x[i] = -1e9; });
  });
  const calls = fn.steps.map((st) => {
    const f = inst.exports[st.kernel];
    const args = [...st.buffers.map((id) => addr[id]), ...st.ints.map(evalPoly)];
    return () => f(...args);
  });
  const out = fn.values[fn.outputValues[0]];
  // `--step K`: the rounds run step K alone (from the end if negative: -1 is the backward kernel of a _grad case).
  const only = opt("--step", null) === null ? calls : [calls.at(Number(opt("--step", null)))];
  return { steps: fn.steps.map((st) => st.ops.join(",")), calls, run: () => { for (const c of only) c(); }, all: () => { for (const c of calls) c(); }, out: () => new Float32Array(memory.buffer, addr[fn.outputValues[0]], numel(out)) };
}

const before = await load(resolve(base, "dist"));
const after = await load(new URL("../dist", import.meta.url).pathname);
for (let i = 0; i < 50; i++) { before.all(); after.all(); }
let maxRel = 0;
const [ob, oa] = [before.out(), after.out()];
for (let i = 0; i < ob.length; i++) maxRel = Math.max(maxRel, Math.abs(ob[i] - oa[i]) / Math.max(1e-30, Math.abs(ob[i])));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const tb = [], ta = [];
for (let r = 0; r < rounds; r++) {
  for (const [b, t] of r % 2 ? [[before, tb], [after, ta]] : [[after, ta], [before, tb]]) {
    const c0 = cpu();
    for (let i = 0; i < batch; i++) b.run();
    t.push((cpu() - c0) / batch);
  }
}
const ratios = tb.map((b, i) => b / ta[i]).sort((x, y) => x - y);
console.log(`${which} ${R}x${C}${causal ? " causal" : ""}, ${simd}: before [${before.steps.join(" | ")}] ${median(tb).toFixed(3)} ms, after [${after.steps.join(" | ")}] ${median(ta).toFixed(3)} ms`);
console.log(`  kernel CPU per call (medians of ${rounds} rounds of ${batch}); before / after per round: median ${median(ratios).toFixed(2)}x, quartiles ${ratios[ratios.length >> 2].toFixed(2)}-${ratios[(3 * ratios.length) >> 2].toFixed(2)}x; largest relative difference of the outputs ${maxRel.toExponential(2)}`);
// Each step alone (the same alternation, fewer rounds): which kernels the difference comes from.
const perStep = (b) => b.calls.map((call) => {
  const ts = [];
  for (let r = 0; r < Math.max(4, rounds >> 2); r++) {
    const c0 = cpu();
    for (let i = 0; i < batch; i++) call();
    ts.push((cpu() - c0) / batch);
  }
  return median(ts);
});
const [sb, sa] = [perStep(before), perStep(after)];
console.log(`  per step, ms: before ${before.steps.map((st, i) => `[${st}] ${sb[i].toFixed(3)}`).join(" ")}; after ${after.steps.map((st, i) => `[${st}] ${sa[i].toFixed(3)}`).join(" ")}`);
