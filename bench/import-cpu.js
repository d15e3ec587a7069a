// `node bench/import-cpu.js [--models mobilenet_v2,resnet18] [--rounds 20] [--batches 1,8]`: models imported by
// `kiln import` against onnxruntime-web on the same ONNX file, both WebAssembly on one thread in this process, timed
// by CPU time (process.cpuUsage around each call) as well as wall time, so a shared, loaded machine still gives
// usable ratios. Rounds interleave the two systems; prints medians. Uses dist/ (`npm run build`) and
// test/import/make_nets.py (Debian's python3 torch, random weights, 64x64 images) like bench/import-models.js.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { main } from "../dist/compiler/cli/main.js";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { parseSafetensors } from "../dist/runtime/safetensors.js";
import { median } from "./common.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const models = opt("--models", "mobilenet_v2,resnet18").split(",");
const rounds = Number(opt("--rounds", 20));
const batches = opt("--batches", "1,8").split(",").map(Number);

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const dir = mkdtempSync(join(tmpdir(), "kiln-import-cpu-"));
const py = spawnSync("/usr/bin/python3", [new URL("../test/import/make_nets.py", import.meta.url).pathname, dir, ...models], { encoding: "utf8" });
if (py.status !== 0) throw new Error(`make_nets.py failed (torch and torchvision are needed):\n${py.stderr}`);

const cpuMs = (c) => (c.user + c.system) / 1e3;
console.log(`load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
console.log("| model | batch | kiln CPU ms | ort CPU ms | ort / kiln (CPU) | kiln wall ms | ort wall ms |\n|---|---|---|---|---|---|---|");
for (const name of models) {
  const out = join(dir, `${name}-kiln`);
  if ((await main(["import", join(dir, `${name}.onnx`), "--out", out], () => {}, (s) => console.error(s))) !== 0) throw new Error(`kiln import ${name} failed`);
  const b = await buildWasm(compileToIR(readFileSync(join(out, `${name}.kiln`), "utf8"), `${name}.kiln`).ir, name);
  const mod = await loadKilnModule(b.manifest, b.wasm, { threads: 1 });
  for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(out, `${name}.safetensors`))).tensors)) mod.setParam(k, t);
  const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"));
  const session = await ort.InferenceSession.create(readFileSync(join(dir, `${name}.onnx`)), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  for (const batch of batches) {
    const shape = [batch, 3, 64, 64];
    const x = Float32Array.from({ length: shape.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i));
    const ox = new ort.Tensor("float32", x, shape);
    const kiln = async () => mod.call(fn.name, { x }, { batch });
    const onnx = () => session.run({ x: ox });
    for (let i = 0; i < 3; i++) { await kiln(); await onnx(); }
    const t = { kc: [], oc: [], kw: [], ow: [] };
    const time = async (f, cpu, wall) => {
      const c0 = process.cpuUsage(), w0 = performance.now();
      await f();
      wall.push(performance.now() - w0);
      cpu.push(cpuMs(process.cpuUsage(c0)));
    };
    for (let r = 0; r < rounds; r++) {
      await time(kiln, t.kc, t.kw);
      await time(onnx, t.oc, t.ow);
    }
    const [kc, oc] = [median(t.kc), median(t.oc)];
    console.log(`| ${name} | ${batch} | ${kc.toFixed(2)} | ${oc.toFixed(2)} | ${(oc / kc).toFixed(2)}x | ${median(t.kw).toFixed(2)} | ${median(t.ow).toFixed(2)} |`);
  }
  await session.release();
}
