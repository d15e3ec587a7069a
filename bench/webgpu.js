// WebGPU benchmark entries (issue 5): Kiln's f32 matmul at 128-1024 and the 784-128-10 MLP forward at batch
// 64 on the WebGPU backend, each call timed up to `await read()` (so the readback is included). The numbers
// mean something only on a real GPU; on Mesa's lavapipe (a CPU rasteriser) they only show the path works.
// Usage: npm run build && node bench/webgpu.js [--sizes 128,256,512,1024] [--reps 10]

import { readFileSync } from "node:fs";
import { compileToIR, buildWgsl } from "../dist/compiler/compile.js";
import { loadKilnModuleWebGPU } from "../dist/runtime/webgpu/module.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const sizes = arg("--sizes", "128,256,512,1024").split(",").map(Number);
const reps = Number(arg("--reps", "10"));

async function gpuModule(src, file) {
  const r = compileToIR(src, file);
  if (!r.ir) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  const { manifest, wgsl } = buildWgsl(r.ir, "bench");
  return loadKilnModuleWebGPU(manifest, wgsl, { seed: 0 });
}

/** Median milliseconds of `reps` calls, after two warm-up calls. */
async function time(fn) {
  await fn();
  await fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
}

let adapter = "unknown adapter";
try {
  for (const n of sizes) {
    const mod = await gpuModule(`fn mm(a: f32[${n}, ${n}], b: f32[${n}, ${n}]) -> f32[${n}, ${n}] { return a @ b }`, "mm.kiln");
    adapter = mod.adapter;
    const a = new Float32Array(n * n).map((_, i) => Math.sin(i));
    const ms = await time(() => mod.mm({ a, b: a }).read());
    console.log(`webgpu matmul ${String(n).padStart(4)}: ${ms.toFixed(2).padStart(8)} ms  ${((2 * n ** 3) / ms / 1e6).toFixed(1).padStart(7)} GFLOP/s (incl. upload and readback)`);
    mod.dispose();
  }
  const mlp = await gpuModule(readFileSync("dsl-examples/mlp.kiln", "utf8"), "dsl-examples/mlp.kiln");
  const x = new Float32Array(64 * 784).map((_, i) => Math.cos(i));
  const ms = await time(() => mlp.forward({ x }, { batch: 64 }).read());
  console.log(`webgpu MLP 784-128-10 forward, batch 64: ${ms.toFixed(2)} ms (incl. upload and readback)`);
  console.log(`adapter: ${adapter}`);
} catch (e) {
  console.log(`webgpu bench skipped: ${e.message}`);
}
