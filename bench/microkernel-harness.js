// `node bench/microkernel-harness.js [--mr 4] [--nr 8] [--kc 256] [--outer] [--inline]`: the plain matmul
// microkernel's loop (as compiler/codegen/wasm/matmul-micro.ts builds it: per k step NR/4 B vectors, MR A splats,
// MR x NR/4 mul + add) in a module of its own, called from a wasm driver loop over 16 A panels; prints GFLOP/s
// (best of 12 batches). `--outer`: the k loop inside a one-trip outer loop (what the gemm's kernel now does);
// `--inline`: Binaryen inlines the kernel into the driver's loop. Either puts the k loop at nesting depth 1, where
// TurboFan's wasm loop unrolling takes a body of this size (docs/performance.md, "Issue 19 on a Zen 5 host").
// Compare with `node --print-wasm-code`. Needs nothing built.
import { benchArgs } from "./common.js";

// Binaryen is ESM-only and large: loaded on demand, as the compiler does.
const { default: binaryen } = await import("binaryen");

const { args, opt } = benchArgs(1);
const [MR, NR, KC] = [Number(opt("--mr", 4)), Number(opt("--nr", 8)), Number(opt("--kc", 256))];
const [OUTER, INLINE, PANELS] = [args.includes("--outer"), args.includes("--inline"), 16];
const m = new binaryen.Module();
m.setFeatures(binaryen.Features.All);
m.setMemory(64, 64, "mem");
const { v128: v, i32 } = binaryen;
const g = (i, t = v) => m.local.get(i, t);
// params pa, pb, kc; then the locals
let nl = 3;
const acc = Array.from({ length: MR }, () => Array.from({ length: NR / 4 }, () => nl++));
const bv = Array.from({ length: NR / 4 }, () => nl++);
const [av, k, t] = [nl++, nl++, nl++];
const step = bv.map((b, j) => m.local.set(b, m.v128.load(16 * j, 4, g(1, i32))));
for (let r = 0; r < MR; r++) {
  step.push(m.local.set(av, m.v128.load32_splat(4 * r, 4, g(0, i32))));
  for (const [j, a] of acc[r].entries()) step.push(m.local.set(a, m.f32x4.add(g(a), m.f32x4.mul(g(av), g(bv[j])))));
}
step.push(m.local.set(0, m.i32.add(g(0, i32), m.i32.const(4 * MR))), m.local.set(1, m.i32.add(g(1, i32), m.i32.const(4 * NR))));
step.push(m.local.set(k, m.i32.add(g(k, i32), m.i32.const(1))), m.br("L", m.i32.lt_u(g(k, i32), g(2, i32))));
const kLoop = m.block(null, [m.local.set(k, m.i32.const(0)), m.loop("L", m.block(null, step))]);
const body = OUTER
  ? m.block(null, [m.local.set(t, m.i32.const(0)), m.loop("O", m.block(null, [kLoop, m.local.set(t, m.i32.add(g(t, i32), m.i32.const(1))), m.br("O", m.i32.lt_u(g(t, i32), m.i32.const(1)))]))])
  : kLoop;
const stores = acc.flat().map((a, q) => m.v128.store(16 * q, 4, m.i32.const(3000000), g(a)));
const zero = acc.flat().map((a) => m.local.set(a, m.v128.const(new Array(16).fill(0))));
m.addFunction("mk", binaryen.createType([i32, i32, i32]), binaryen.none, Array.from({ length: nl - 3 }, (_, i) => (i + 3 === k || i + 3 === t ? i32 : v)), m.block(null, [...zero, body, ...stores]));
if (!INLINE) {
  m.addFunctionExport("mk", "mk");
  m.optimize();
}
const panel = m.i32.mul(m.i32.and(m.local.get(1, i32), m.i32.const(PANELS - 1)), m.i32.const(4 * MR * KC));
m.addFunction("drive", binaryen.createType([i32]), binaryen.none, [i32], m.block(null, [
  m.local.set(1, m.i32.const(0)),
  m.loop("D", m.block(null, [
    m.call("mk", [panel, m.i32.const(2000000), m.i32.const(KC)], binaryen.none),
    m.local.set(1, m.i32.add(m.local.get(1, i32), m.i32.const(1))),
    m.br("D", m.i32.lt_u(m.local.get(1, i32), m.local.get(0, i32))),
  ])),
]));
m.addFunctionExport("drive", "drive");
if (INLINE) m.optimize();
if (!m.validate()) throw new Error("invalid harness module");
const inst = new WebAssembly.Instance(new WebAssembly.Module(m.emitBinary()), {});
new Float32Array(inst.exports.mem.buffer).fill(1e-3);
const reps = 100000;
let best = 0;
// Long enough for TurboFan to replace Liftoff's code (the first batches run the baseline tier).
for (let r = 0; r < 12; r++) {
  const t0 = performance.now();
  inst.exports.drive(reps);
  best = Math.max(best, (2 * MR * NR * KC * reps) / (performance.now() - t0) / 1e6);
}
console.log(`plain ${MR}x${NR} kernel, kc ${KC}${OUTER ? ", k loop in an outer loop" : ""}${INLINE ? ", inlined" : ""}: ${best.toFixed(1)} GFLOP/s`);
