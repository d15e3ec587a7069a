// A fixed amount of softmax work for instruction counting: `valgrind --tool=callgrind node
// bench/softmax-calls.js [--simd plain|relaxed] [--calls N] [--artifacts DIR]` compiles softmax over 256x1024
// with the built compiler (dist/), or reads the build from DIR (written there by a run outside valgrind, where
// Binaryen is fast), warms it up, then makes N calls; the difference between two N gives the per-call count
// without compile and start-up.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const simd = arg("--simd", "plain");
const calls = Number(arg("--calls", "20"));
const src = "fn f(x: f32[256, 1024]) -> f32[256, 1024] { return softmax(x, axis: -1) }";
const dir = arg("--artifacts", null);
let b;
if (dir && existsSync(`${dir}/manifest.json`)) {
  b = { manifest: JSON.parse(readFileSync(`${dir}/manifest.json`, "utf8")), wasm: readFileSync(`${dir}/plain.wasm`), wasmRelaxed: readFileSync(`${dir}/relaxed.wasm`) };
} else {
  const { compileToIR, buildWasm } = await import("../dist/compiler/compile.js");
  const r = compileToIR(src, "softmax.kiln");
  if (!r.ir) throw new Error("softmax did not compile");
  b = await buildWasm(r.ir, "softmax");
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/manifest.json`, JSON.stringify(b.manifest));
    writeFileSync(`${dir}/plain.wasm`, b.wasm);
    writeFileSync(`${dir}/relaxed.wasm`, b.wasmRelaxed);
  }
}
const m = await loadKilnModule(b.manifest, b.wasm, simd === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {});
const x = new Float32Array(256 * 1024);
let s = 12345;
for (let i = 0; i < x.length; i++) x[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 20;
let sum = 0;
for (let i = 0; i < 20; i++) sum += m.f({ x }).data[0];
const t0 = process.cpuUsage();
for (let i = 0; i < calls; i++) sum += m.f({ x }).data[i % 1024];
const t = process.cpuUsage(t0);
console.log(JSON.stringify({ simd, calls, cpuMsPerCall: (t.user + t.system) / 1000 / calls, check: sum }));
m.dispose();
