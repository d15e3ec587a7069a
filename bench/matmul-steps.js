// `node [--experimental-wasm-relaxed-simd] bench/matmul-steps.js [--relaxed] [--calls 3000]`: GFLOP/s of one
// matmul step alone (x @ w, w a param so its B is prepacked), 1 thread, at the MLP's first layer [64,784]x[784,128]
// and at sizes that scale one dim, timed by the executor's step observer (bench/step-times.js): the best of 3
// medians. Linear in M, N and K means the microkernel, not packing or per-call work, sets the time (docs/
// performance.md, "Issue 19 on a Zen 5 host"). Run `npm run build` first (it uses dist/).
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { stepTimes } from "./step-times.js";
import { benchArgs, median, randomF32 } from "./common.js";

const { args, opt } = benchArgs(1);
const relaxed = args.includes("--relaxed");
const calls = Number(opt("--calls", 3000));
for (const [M, K, N] of [[64, 784, 128], [64, 784, 256], [64, 784, 512], [128, 784, 128], [64, 1568, 128]]) {
  const src = `model P {\n  param w: f32[${K}, ${N}] = xavier()\n  fn f(x: f32[${M}, ${K}]) -> f32[${M}, ${N}] { return x @ w }\n}`;
  const b = await buildWasm(compileToIR(src, "p.kiln").ir, "p");
  const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1 });
  const fn = b.manifest.functions.find((f) => f.name === "P.f");
  const x = randomF32(M * K, 3);
  const us = Math.min(...[0, 1, 2].map(() => median(stepTimes(m, fn, { x }, calls).steps[0].slice(Math.floor(calls / 3))) * 1000));
  console.log(`[${M},${K}]x[${K},${N}] ${relaxed ? "relaxed" : "plain"}: ${us.toFixed(1)} us, ${((2 * M * K * N) / us / 1e3).toFixed(1)} GFLOP/s`);
  m.dispose();
}
