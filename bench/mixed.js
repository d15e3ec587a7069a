// `node [--experimental-wasm-relaxed-simd] bench/mixed.js [--runs 5] [--only PREFIX] [--quick] [--json FILE]`: issue 7's mixed precision against f32 on wasm, 1 thread (run `npm run build` first: it uses dist/).
// Each case is compiled three ways (f32, mixed-f16, mixed-bf16) and timed with benchmark.js, plain SIMD128 and,
// when Node has the flag, relaxed SIMD; the rounds interleave precisions so drift on a shared machine hits all
// three alike, and each cell is the median over rounds of benchmark.js medians. Also prints the peak memory
// `kiln compile --report` gives the training step (compiler/report.ts), since halving bytes is mixed's point.
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import Benchmark from "benchmark";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { formatDiagnostics } from "../dist/compiler/diagnostics.js";
import { reportManifest } from "../dist/compiler/report.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { relaxedSimdSupported } from "../dist/runtime/wasm/backend.js";
import { loadKernels } from "../dist/runtime/wasm/threads-load.js";
import { evalDimPoly } from "../dist/runtime/manifest.js";
import { dtypeBytes, f32ToBf16Bits, f32ToF16Bits } from "../dist/runtime/dtype.js";
import { benchArgs, checksum, median, mlpWeights, randomF32 } from "./common.js";

const { quick, runs, only, jsonOut } = benchArgs(5);
const PRECISIONS = ["f32", "mixed-f16", "mixed-bf16"];
const LOW = { "mixed-f16": "f16", "mixed-bf16": "bf16" };
const ENCODE = { f16: f32ToF16Bits, bf16: f32ToBf16Bits };

// The same MLP and training step as bench/systems/kiln.js (the suite's "mlp train step b=64" row).
const MLP = readFileSync(new URL("../dsl-examples/mlp.kiln", import.meta.url), "utf8");
const TRAIN = `${MLP}\ntrain Step {\n  model: MLP\n  loss: loss\n  optimizer: sgd(lr: 0.1)\n}\n`;
// mlp_train.kiln's model: the same MLP plus `grads` (forward + backward, no update and so no loss scaling).
const GRADS = readFileSync(new URL("../dsl-examples/mlp_train.kiln", import.meta.url), "utf8").split("\ntrain ")[0];
const BATCH = 64;
const x = randomF32(BATCH * 784, 7);
const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
const w = mlpWeights();
const mlpParams = { "MLP.w1": w.w1, "MLP.b1": w.b1, "MLP.w2": w.w2, "MLP.b2": w.b2 };

// Matmul operands: "storage" declares them f16/bf16 (half the bytes copied in and read), compiled as f32; "round"
// keeps the f32 source and compiles it with --precision (operands rounded inside the kernel, f32 in memory).
const mmSrc = (n, dt) => `fn mm(a: ${dt}[${n}, ${n}], b: ${dt}[${n}, ${n}]) -> f32[${n}, ${n}] { return a @ b }`;
const mmInputs = (n) => ({ a: randomF32(n * n, n), b: randomF32(n * n, n + 1) });
const enc = (dt, v) => (dt === "f32" ? v : Uint16Array.from(v, ENCODE[dt]));

function caseList() {
  const out = [
    { id: `mlp train step b=${BATCH}`, src: () => TRAIN, run: (m) => m.call("Step.step", { x, labels }).data },
    { id: `mlp grads b=${BATCH} (no scaler)`, src: () => GRADS, run: (m) => m.MLP.grads({ x, labels })[0].data },
    { id: `mlp forward b=${BATCH}`, src: () => MLP, run: (m) => m.MLP.forward({ x }).data },
  ];
  for (const n of quick ? [512] : [512, 1024]) {
    const inp = mmInputs(n);
    const stored = (p) => LOW[p] ?? "f32";
    out.push(
      { id: `matmul ${n} operands stored 16-bit`, flops: 2 * n ** 3, src: (p) => mmSrc(n, stored(p)), asF32: true,
        prepare: (p) => { const a = enc(stored(p), inp.a), b = enc(stored(p), inp.b); return (m) => m.mm({ a, b }).data; } },
      { id: `matmul ${n} kernel only, 16-bit`, flops: 2 * n ** 3, src: (p) => mmSrc(n, stored(p)), asF32: true, kernel: true,
        inputs: (p) => [enc(stored(p), inp.a), enc(stored(p), inp.b)] },
      { id: `matmul ${n} f32 in, rounded in kernel`, flops: 2 * n ** 3, src: () => mmSrc(n, "f32"), run: (m) => m.mm(inp).data },
    );
  }
  return out.filter((c) => !only || c.id.startsWith(only));
}

/** Seconds per call, one per benchmark.js sample (the same options as bench/suite.js). */
function time(fn) {
  const opts = quick ? { minSamples: 4, maxTime: 0.25, initCount: 1 } : { minSamples: 10, maxTime: 0.75, initCount: 1 };
  return new Promise((resolve, reject) => {
    const b = new Benchmark("case", { ...opts, fn });
    b.on("complete", () => (b.error ? reject(b.error) : resolve(b.stats.sample)));
    b.run();
  });
}

const builds = new Map();
async function build(c, p) {
  const key = `${c.id}|${p}`;
  if (!builds.has(key)) {
    const src = c.src(p);
    const r = compileToIR(src, "bench.kiln", [], [], { precision: c.asF32 ? "f32" : p });
    if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { "bench.kiln": src }));
    builds.set(key, await buildWasm(r.ir, "bench"));
  }
  return builds.get(key);
}

/** The matmul kernel alone, operands already in wasm memory (like bench/systems/kiln.js kernelCall, any dtype). */
async function kernelCall(b, inputs, simd) {
  const k = await loadKernels(b.wasm, { threads: 1, ...(simd === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {}) });
  const fn = b.manifest.functions[0];
  const [step] = fn.steps;
  const ptrs = step.buffers.map((v) => k.memory.allocPersistent(dtypeBytes(fn.values[v].dtype) * fn.values[v].shape.reduce((p, d) => p * d, 1), "bench"));
  inputs.forEach((data, i) => k.memory.write(ptrs[i], data));
  const ints = step.ints.map((q) => evalDimPoly(q, {}));
  const kernel = k.kernels.get(step.kernel);
  const out = ptrs.at(-1), len = inputs[0].length;
  return { run: () => (kernel(...ptrs, ...ints), k.memory.view("f32", out, len)), dispose: () => k.pool?.close() };
}

async function prepare(c, p, simd) {
  const b = await build(c, p);
  if (c.kernel) return kernelCall(b, c.inputs(p), simd);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: 1, params: [MLP, TRAIN, GRADS].includes(c.src(p)) ? mlpParams : undefined, ...(simd === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {}) });
  const run = c.prepare ? c.prepare(p) : c.run;
  return { run: () => run(m), dispose: () => m.dispose() };
}

const simds = relaxedSimdSupported() ? ["plain", "relaxed"] : ["plain"];
const cases = caseList();
const ms = new Map(); // `${case}|${simd}|${precision}` -> per-round medians
const checks = new Map();
const started = Date.now();
for (let r = 0; r < runs; r++) {
  for (const c of cases) {
    for (const simd of simds) {
      // Rotate the order each round so no precision always runs first (warm caches, CPU frequency).
      for (const p of PRECISIONS.map((_, i) => PRECISIONS[(i + r) % 3])) {
        const prep = await prepare(c, p, simd);
        const first = prep.run(); // a fresh training state: its loss is the checksum
        if (r === 0) checks.set(`${c.id}|${simd}|${p}`, checksum(first));
        const samples = await time(prep.run);
        const key = `${c.id}|${simd}|${p}`;
        ms.set(key, [...(ms.get(key) ?? []), median(samples) * 1e3]);
        await prep.dispose();
      }
    }
  }
  process.stderr.write(`round ${r + 1}/${runs} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}

const machine = `${cpus()[0]?.model ?? "?"}, ${cpus().length} logical CPUs, Node ${process.version}, relaxed SIMD ${relaxedSimdSupported() ? "on" : "off (no --experimental-wasm-relaxed-simd)"}`;
console.log(`Mixed vs f32 on wasm, 1 thread, ${runs} round${runs > 1 ? "s" : ""} (median over rounds of benchmark.js medians, ms per call)`);
console.log(`Machine: ${machine}`);
const pad = (s, n) => String(s).padStart(n);
console.log(`${"case".padEnd(36)} ${"simd".padEnd(8)} ${pad("f32", 9)} ${pad("f16", 9)} ${pad("bf16", 9)} ${pad("f16/f32", 8)} ${pad("bf16/f32", 8)}  spread f32/f16/bf16 (max/min over rounds)  rel. diff of sum vs f32 f16/bf16`);
const rows = [];
for (const c of cases) {
  for (const simd of simds) {
    const get = (p) => ms.get(`${c.id}|${simd}|${p}`);
    const med = Object.fromEntries(PRECISIONS.map((p) => [p, median(get(p))]));
    const spread = PRECISIONS.map((p) => (Math.max(...get(p)) / Math.min(...get(p))).toFixed(2)).join("/");
    const chk = (p) => { const a = checks.get(`${c.id}|${simd}|f32`), b = checks.get(`${c.id}|${simd}|${p}`); return Math.abs(b.sum - a.sum) / Math.max(1e-30, a.abs); };
    rows.push({ case: c.id, simd, ms: med, runs: Object.fromEntries(PRECISIONS.map((p) => [p, get(p)])), relDiff: { "mixed-f16": chk("mixed-f16"), "mixed-bf16": chk("mixed-bf16") } });
    console.log(`${c.id.padEnd(36)} ${simd.padEnd(8)} ${pad(med.f32.toFixed(2), 9)} ${pad(med["mixed-f16"].toFixed(2), 9)} ${pad(med["mixed-bf16"].toFixed(2), 9)} ` +
      `${pad((med["mixed-f16"] / med.f32).toFixed(2), 8)} ${pad((med["mixed-bf16"] / med.f32).toFixed(2), 8)}  ${spread.padEnd(41)}  ${chk("mixed-f16").toExponential(1)}/${chk("mixed-bf16").toExponential(1)}`);
  }
}

// Memory, as `kiln compile --report --dims B=..` computes it (the scratch arena's peak after reuse, and params);
// B=1024 too, since at B=64 the f32 input batch and the weights' 16-bit copies weigh as much as the activations.
const memory = [];
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`\nMemory (compiler/report.ts): peak scratch after reuse, params (masters + 16-bit copies + scaler state)`);
console.log(`${"function".padEnd(12)} ${"B".padStart(5)} ${"precision".padEnd(11)} ${pad("kernels", 7)} ${pad("peak scratch", 13)} ${pad("vs f32", 7)} ${pad("params", 11)} ${pad("scratch+params", 15)} ${pad("vs f32", 7)}`);
for (const [name, src, batches] of [["Step.step", TRAIN, [BATCH, 1024]], ["MLP.forward", MLP, [BATCH]]]) {
  for (const B of batches) {
    let base;
    for (const p of PRECISIONS) {
      const b = await build({ id: `memory ${name}`, src: () => src }, p);
      const r = reportManifest(b.manifest, { B }).find((f) => f.name === name);
      base ??= r;
      memory.push({ function: name, batch: B, precision: p, kernels: r.kernels, peakBytes: r.peakBytes, paramBytes: r.paramBytes });
      console.log(`${name.padEnd(12)} ${pad(B, 5)} ${p.padEnd(11)} ${pad(r.kernels, 7)} ${pad(kib(r.peakBytes), 13)} ${pad((r.peakBytes / base.peakBytes).toFixed(2), 7)} ${pad(kib(r.paramBytes), 11)} ` +
        `${pad(kib(r.peakBytes + r.paramBytes), 15)} ${pad(((r.peakBytes + r.paramBytes) / (base.peakBytes + base.paramBytes)).toFixed(2), 7)}`);
    }
  }
}
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ machine, runs, rows, memory }, null, 2));
process.exit(0);
