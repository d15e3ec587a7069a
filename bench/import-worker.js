// One process of bench/import-models.js: one system (Kiln plain SIMD, Kiln relaxed SIMD, or onnxruntime-web, all
// wasm on one thread) on one imported model, fresh, so that compile and session-create times are a cold start.
// argv: SYSTEM (kiln | kiln-relaxed | ort) MODEL DIR. Prints JSON lines: the setup (Kiln: `kiln import` plus the
// compile to wasm, ms, and the .wasm's bytes; ORT: session create, ms, and the ort-wasm*.wasm it instantiated), then
// per batch (1 and 8) the median ms per forward, the CPU ms per call and the CPU share the process got.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { median, checksum } from "./common.js";

const [system, name, dir] = process.argv.slice(2);
// The *_seq models have a symbolic sequence length too; the bench runs them at 16 tokens, as the others.
const SHAPES = { resnet18: [3, 64, 64], mobilenet_v2: [3, 64, 64], squeezenet1_1: [3, 64, 64], encoder: [16], encoder17: [16], gpt: [16], encoder_seq: [16], encoder_causal_seq: [16], gpt_seq: [16] };
const VOCAB = { encoder: 50, encoder17: 50, gpt: 40, encoder_seq: 50, encoder_causal_seq: 50, gpt_seq: 40 };
const emit = (o) => console.log(JSON.stringify({ system, model: name, ...o }));

// Which wasm binaries a system instantiates, by byte length (onnxruntime-web picks its .wasm at run time).
const compiled = [];
for (const f of ["compile", "instantiate"]) {
  const orig = WebAssembly[f];
  WebAssembly[f] = function (src, ...rest) {
    if (src && typeof src.byteLength === "number") compiled.push(src.byteLength);
    return orig.call(this, src, ...rest);
  };
}

const cpuMs = (c0) => {
  const u = process.cpuUsage(c0);
  return (u.user + u.system) / 1e3;
};

/**
 * Times `call` (a forward) for at least `budget` ms of this process's CPU time and 5 calls, after a warm-up of as
 * much (V8 compiles hot wasm functions again, optimised, on background threads: that CPU time would count against
 * the first calls). CPU time rather than wall time, so that a loaded machine gives every system the same work:
 * median ms per call, CPU ms per call (all threads) and the CPU share the process got.
 */
async function time(call, budget = 1000) {
  for (const w0 = process.cpuUsage(); cpuMs(w0) < budget; ) await call();
  const samples = [];
  const cpu0 = process.cpuUsage(), wall0 = performance.now();
  while (samples.length < 5 || (cpuMs(cpu0) < budget && samples.length < 20000)) {
    const t = performance.now();
    await call();
    samples.push(performance.now() - t);
  }
  const used = process.cpuUsage(cpu0), wall = performance.now() - wall0;
  const cpu = (used.user + used.system) / 1e3;
  return { ms: median(samples), cpuMs: cpu / samples.length, cpuShare: cpu / wall, calls: samples.length };
}

const input = (batch) => {
  const shape = [batch, ...SHAPES[name]];
  const n = shape.reduce((a, c) => a * c, 1);
  const vocab = VOCAB[name];
  return { shape, x: vocab ? Int32Array.from({ length: n }, (_, i) => (i * 7) % vocab) : Float32Array.from({ length: n }, (_, i) => Math.sin(i)) };
};

if (system === "ort") {
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const bytes = readFileSync(join(dir, `${name}.onnx`));
  const t0 = performance.now(), c0 = process.cpuUsage();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const createMs = performance.now() - t0, createCpu = cpuMs(c0);
  // The file behind the instantiated binary: the ort-wasm*.wasm of the package's dist/ with that size.
  const dist = join(createRequire(import.meta.url).resolve("onnxruntime-web"), "..");
  const files = readdirSync(dist).filter((f) => f.endsWith(".wasm")).map((f) => ({ f, bytes: statSync(join(dist, f)).size }));
  const hit = files.find((w) => compiled.includes(w.bytes));
  emit({ setup: true, createMs, cpuMs: createCpu, wasmFile: hit?.f ?? "?", wasmBytes: hit?.bytes ?? Math.max(0, ...compiled) });
  for (const batch of [1, 8]) {
    const { shape, x } = input(batch);
    const t = x instanceof Int32Array ? new ort.Tensor("int64", BigInt64Array.from(x, BigInt), shape) : new ort.Tensor("float32", x, shape);
    const run = async () => (await session.run({ x: t }))[session.outputNames[0]].data;
    emit({ batch, ...(await time(run)), check: checksum(await run()) });
  }
  await session.release();
} else {
  const { main } = await import("../dist/compiler/cli/main.js");
  const { compileToIR, buildWasm } = await import("../dist/compiler/compile.js");
  const { loadKilnModule } = await import("../dist/runtime/wasm/module.js");
  const { parseSafetensors } = await import("../dist/runtime/safetensors.js");
  const relaxed = system === "kiln-relaxed";
  const out = join(dir, `${name}-kiln-${process.pid}`);
  const t0 = performance.now(), c0 = process.cpuUsage();
  if ((await main(["import", join(dir, `${name}.onnx`), "--out", out], () => {}, (s) => console.error(s))) !== 0) throw new Error(`kiln import ${name} failed`);
  const b = await buildWasm(compileToIR(readFileSync(join(out, `${name}.kiln`), "utf8"), `${name}.kiln`).ir, name);
  const compileMs = performance.now() - t0, compileCpu = cpuMs(c0);
  if (relaxed && !b.wasmRelaxed) throw new Error("no relaxed-SIMD build (Node needs --experimental-wasm-relaxed-simd)");
  emit({ setup: true, compileMs, cpuMs: compileCpu, wasmBytes: b.wasm.byteLength, relaxedBytes: b.wasmRelaxed?.byteLength ?? null });
  const mod = await loadKilnModule(b.manifest, b.wasm, { threads: 1, ...(relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) });
  for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(out, `${name}.safetensors`))).tensors)) mod.setParam(k, t);
  const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"));
  for (const batch of [1, 8]) {
    const { x } = input(batch);
    const run = () => mod.call(fn.name, { x }, { batch }).data;
    emit({ batch, ...(await time(run)), check: checksum(run()) });
  }
}
// onnxruntime-web may keep worker threads alive.
process.exit(0);
