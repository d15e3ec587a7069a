// `node [--experimental-wasm-relaxed-simd] bench/winograd-ab.js [--relaxed] [--rounds 10] [--calls 8] [--layer C,H,W,O]
// [--pad 1] [--batch 1] [--threads 1] [--env 16]`: one 3x3 conv layer (default the bench's 64x56x56 -> 64) compiled
// twice in one process, as the implicit GEMM (KILN_WINOGRAD=0) and as Winograd F(2x2, 3x3) (KILN_WINOGRAD=--env, the
// channel threshold), alternating batches of calls; prints the CPU ms per call of each and the ratio GEMM / Winograd
// per round (> 1: Winograd faster) and checks both give the same output to Winograd's rounding. Uses dist/.
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { benchArgs, interleavedCpu, rangeText } from "./common.js";

const { args, opt } = benchArgs(1);
const relaxed = args.includes("--relaxed");
const rounds = Number(opt("--rounds", 10));
const calls = Number(opt("--calls", 8));
const [C, H, W, O] = opt("--layer", "64,56,56,64").split(",").map(Number);
const pad = Number(opt("--pad", 1));
const batch = Number(opt("--batch", 1));
const threads = Number(opt("--threads", 1));
const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
const src = `model Conv {
  param w: f32[${O}, ${C}, 3, 3] = he()
  param b: f32[${O}] = zeros()
  fn forward(x: f32[${batch}, ${C}, ${H}, ${W}]) -> f32[${batch}, ${O}, ${OH}, ${OW}] { return conv2d(x, w, b, padding: ${pad}) }
}`;

async function build(env) {
  process.env.KILN_WINOGRAD = env;
  const r = compileToIR(src, "conv.kiln");
  if (!r.ir) throw new Error(JSON.stringify(r.diagnostics));
  const b = await buildWasm(r.ir, "conv");
  const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads });
  return { m, kernel: b.manifest.functions.find((f) => f.name === "Conv.forward").steps[0].kernel };
}
const variants = [await build("0"), await build(opt("--env", "16"))];
const x = Float32Array.from({ length: batch * C * H * W }, (_, i) => Math.sin(i * 0.37));
const run = (v) => v.m.Conv.forward({ x }).data;
const [y0, y1] = variants.map(run);
let err = 0, mag = 0;
for (let i = 0; i < y0.length; i++) { err = Math.max(err, Math.abs(y0[i] - y1[i])); mag = Math.max(mag, Math.abs(y0[i])); }
const cpu = interleavedCpu(variants, run, rounds, calls);
const ratios = cpu[0].map((t, i) => t / cpu[1][i]);
const f = rangeText;
console.log(`conv ${batch}x${C}x${H}x${W} -> ${O}, pad ${pad}, ${relaxed ? "relaxed" : "plain"}, ${threads} thread(s); max |diff| ${err.toExponential(2)} of max |y| ${mag.toFixed(2)}`);
console.log(`  ${variants[0].kernel}: CPU ms/call ${f(cpu[0])}`);
console.log(`  ${variants[1].kernel}: CPU ms/call ${f(cpu[1])}`);
console.log(`  GEMM / Winograd per round: ${f(ratios)}`);
variants.forEach((v) => v.m.dispose());
