// `node [--experimental-wasm-relaxed-simd] bench/profile-import.js [--model mobilenet_v2] [--batch 1] [--calls 40]
// [--relaxed] [--top 25]`: per kernel, where a model imported by `kiln import` (test/import/make_nets.py, Debian's
// python3 torch, random weights) spends its forward at one thread, with bench/step-times.js' step observer. Prints
// the whole call's median and CPU time per call, the time per kernel kind summed over steps, then the slowest
// steps. A profile, not a benchmark. Uses dist/ (`npm run build`).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../dist/compiler/cli/main.js";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { parseSafetensors } from "../dist/runtime/safetensors.js";
import { stepTimes } from "./step-times.js";
import { benchArgs, median } from "./common.js";

const { args, opt } = benchArgs(1);
const name = opt("--model", "mobilenet_v2");
const batch = Number(opt("--batch", 1));
const calls = Number(opt("--calls", 40));
const top = Number(opt("--top", 25));
const relaxed = args.includes("--relaxed");

const dir = mkdtempSync(join(tmpdir(), "kiln-profile-import-"));
const py = spawnSync("/usr/bin/python3", [new URL("../test/import/make_nets.py", import.meta.url).pathname, dir, name], { encoding: "utf8" });
if (py.status !== 0) throw new Error(`make_nets.py failed (torch and torchvision are needed):\n${py.stderr}`);
const out = join(dir, `${name}-kiln`);
if ((await main(["import", join(dir, `${name}.onnx`), "--out", out], () => {}, (s) => console.error(s))) !== 0) throw new Error(`kiln import ${name} failed`);
const r = compileToIR(readFileSync(join(out, `${name}.kiln`), "utf8"), `${name}.kiln`);
if (!r.ir) throw new Error(`compile failed: ${JSON.stringify(r.diagnostics)}`);
const b = await buildWasm(r.ir, name);
const m = await loadKilnModule(b.manifest, relaxed ? b.wasmRelaxed : b.wasm, { threads: 1 });
for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(out, `${name}.safetensors`))).tensors)) m.setParam(k, t);
const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"));
const shape = [batch, 3, 64, 64];
const x = Float32Array.from({ length: shape.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i));
m.call(fn.name, { x }, { batch }); // binds the batch's sizes before the executor is driven directly
const skip = Math.floor(calls / 6);
let cpu0 = process.cpuUsage();
const { steps: times, totals } = stepTimes(m, fn, { x }, calls, (i) => {
  if (i === skip) cpu0 = process.cpuUsage();
});
const cpu = process.cpuUsage(cpu0);
const us = times.map((t) => median(t.slice(skip)) * 1000);
console.log(`${name}.forward, batch ${batch}${relaxed ? ", relaxed SIMD" : ""}: ${fn.steps.length} steps, sum of medians ${us.reduce((a, v) => a + v, 0).toFixed(0)} us, ` +
  `call median ${median(totals.slice(skip)).toFixed(2)} ms, CPU ${((cpu.user + cpu.system) / 1e3 / (calls - skip)).toFixed(2)} ms per call`);
const byKind = new Map();
fn.steps.forEach((s, i) => {
  const k = `${s.kernel.replace(/_\d+$/, "")} ${s.ops.join(",")}`;
  const e = byKind.get(k) ?? { us: 0, n: 0 };
  byKind.set(k, { us: e.us + us[i], n: e.n + 1 });
});
console.log("by kind (kernel family, fused ops): total us, steps");
[...byKind].sort((a, b) => b[1].us - a[1].us).slice(0, top).forEach(([k, v]) => console.log(`  ${v.us.toFixed(0).padStart(8)} us ${String(v.n).padStart(4)}x  ${k}`));
console.log("slowest steps:");
us.map((u, i) => [u, i]).sort((a, b) => b[0] - a[0]).slice(0, top).forEach(([u, i]) => console.log(`  ${String(i).padStart(4)} ${fn.steps[i].kernel.padEnd(28)} ${fn.steps[i].ops.join(",").padEnd(50)} ${u.toFixed(1).padStart(8)} us  [${fn.values[fn.steps[i].buffers.at(-1)].shape.join(", ")}]`));
m.dispose();
