// `node bench/import-models.js [--models resnet18,mobilenet_v2,encoder] [--rounds 3]` (also squeezenet1_1, encoder17,
// gpt, and encoder_seq, encoder_causal_seq, gpt_seq: a symbolic sequence length, run at 16 tokens): models imported by `kiln
// import` against onnxruntime-web running the same ONNX file, wasm on one thread (run `npm run build` first: it uses
// dist/). The models come from test/import/make_nets.py (Debian's python3 torch and torchvision, random weights;
// 64x64 images, 16 tokens), exported once to a temporary folder; inputs are the same for every system. Each system
// (Kiln plain SIMD, Kiln relaxed SIMD, onnxruntime-web) runs each model in a process of its own
// (bench/import-worker.js), the rounds interleaving them in a rotating order, as bench/ab.js does. Prints per round
// the ms and CPU ms per call (with the CPU share the process got and the load average), then per model and batch
// the range over rounds of ORT / Kiln by wall time and by CPU time, and a table of Kiln's cold compile (`kiln
// import` + compile to wasm, ms) and .wasm bytes against onnxruntime-web's cold session create and the
// ort-wasm*.wasm it instantiated.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { median } from "./common.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const models = opt("--models", "resnet18,mobilenet_v2,encoder").split(",");
const rounds = Number(opt("--rounds", 3));
const SYSTEMS = ["kiln", "kiln-relaxed", "ort"];

for (const f of ["compiler/frontend/onnx/index.ts", "compiler/codegen/plan.ts", "runtime/wasm/executor.ts"]) {
  const out = new URL(`../dist/${f.replace(/\.ts$/, ".js")}`, import.meta.url);
  if (!existsSync(out)) throw new Error(`${out.pathname} is missing: run \`npm run build\` first`);
  if (statSync(new URL(`../${f}`, import.meta.url)).mtimeMs > statSync(out).mtimeMs) console.error(`warning: dist/ is older than ${f}: run \`npm run build\``);
}

const dir = mkdtempSync(join(tmpdir(), "kiln-import-bench-"));
const py = spawnSync("/usr/bin/python3", [new URL("../test/import/make_nets.py", import.meta.url).pathname, dir, ...models], { encoding: "utf8" });
if (py.status !== 0) throw new Error(`make_nets.py failed (torch and torchvision are needed):\n${py.stderr}`);

const started = Date.now(), load0 = loadavg();
const runs = [], setups = [];
for (let r = 0; r < rounds; r++) {
  for (const name of models) {
    for (const sys of SYSTEMS.map((_, i) => SYSTEMS[(i + r) % SYSTEMS.length])) {
      const p = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", new URL("./import-worker.js", import.meta.url).pathname, sys, name, dir], { encoding: "utf8", maxBuffer: 1 << 24 });
      if (p.status !== 0) {
        console.log(`round ${r + 1} ${name} ${sys}: exited ${p.status}: ${p.stderr.trim().split("\n").slice(-1)[0]}`);
        continue;
      }
      for (const o of p.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))) {
        if (o.setup) {
          setups.push({ ...o, round: r });
          continue;
        }
        runs.push({ ...o, round: r });
        console.log(`round ${r + 1} ${name.padEnd(13)} b=${o.batch} ${sys.padEnd(12)} ${o.ms.toFixed(2).padStart(8)} ms  cpu ${o.cpuMs.toFixed(2).padStart(8)} ms/call (share ${o.cpuShare.toFixed(2)}, ${o.calls} calls)  load ${loadavg()[0].toFixed(1)}`);
      }
    }
  }
}

const range = (xs) => (xs.length ? `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x` : "—");
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
console.log(`\n${cpus()[0]?.model}, ${cpus().length} logical CPUs, Node ${process.version}; ${rounds} rounds, one process per system and model; load average ${load0[0].toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (${((Date.now() - started) / 1000).toFixed(0)} s)`);
console.log("\n| model | batch | kiln ms (cpu ms/call) | kiln relaxed ms (cpu) | onnxruntime-web ms (cpu) | ORT / kiln wall | ORT / kiln cpu | ORT / kiln relaxed wall | ORT / kiln relaxed cpu |\n|---|---|---|---|---|---|---|---|---|");
for (const name of models) {
  for (const batch of [1, 8]) {
    const of = (sys) => runs.filter((o) => o.model === name && o.batch === batch && o.system === sys);
    const cell = (sys) => (of(sys).length ? `${fmt(median(of(sys).map((o) => o.ms)))} (${fmt(median(of(sys).map((o) => o.cpuMs)))})` : "—");
    // Ratios within a round: the two processes ran back to back.
    const ratio = (k, cpu) => of(k).map((a) => [of("ort").find((b) => b.round === a.round), a]).filter(([b]) => b).map(([b, a]) => (cpu ? b.cpuMs / a.cpuMs : b.ms / a.ms));
    console.log(`| ${name} | ${batch} | ${cell("kiln")} | ${cell("kiln-relaxed")} | ${cell("ort")} | ${range(ratio("kiln", false))} | ${range(ratio("kiln", true))} | ${range(ratio("kiln-relaxed", false))} | ${range(ratio("kiln-relaxed", true))} |`);
    const sums = runs.filter((o) => o.model === name && o.batch === batch).map((o) => o.check.sum);
    if (Math.max(...sums) - Math.min(...sums) > 1e-3 * (Math.abs(sums[0]) + 1)) console.log(`  !! ${name} b=${batch}: output sums differ: ${Math.min(...sums)} .. ${Math.max(...sums)}`);
  }
}
console.log("\n| model | kiln import + compile: ms, median (range) | its CPU ms | kiln .wasm bytes, plain / relaxed | onnxruntime-web session create: ms, median (range) | its CPU ms | onnxruntime-web .wasm bytes |\n|---|---|---|---|---|---|---|");
for (const name of models) {
  const k = setups.filter((s) => s.model === name && s.system.startsWith("kiln"));
  const o = setups.filter((s) => s.model === name && s.system === "ort");
  const med = (xs) => (xs.length ? `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})` : "—");
  console.log(`| ${name} | ${med(k.map((s) => s.compileMs))} | ${med(k.map((s) => s.cpuMs))} | ${k[0] ? `${k[0].wasmBytes} / ${k[0].relaxedBytes}` : "—"} | ${med(o.map((s) => s.createMs))} | ${med(o.map((s) => s.cpuMs))} | ${o[0] ? `${o[0].wasmBytes} (${o[0].wasmFile})` : "—"} |`);
}
