// `node bench/import-models.js [--models resnet18,mobilenet_v2,encoder] [--rounds N]`: models imported by `kiln import`
// against onnxruntime-web running the same ONNX file, both WebAssembly on one thread, in one process (run `npm run
// build` first: it uses dist/). The models come from test/import/make_nets.py (Debian's python3 torch and
// torchvision, random weights; 64x64 images, 16 tokens), exported to a temporary folder; inputs are the same for
// both. Prints median milliseconds per forward at batch 1 and 8 over interleaved rounds, and ORT time / Kiln time.
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
const models = opt("--models", "resnet18,mobilenet_v2,encoder").split(",");
const rounds = Number(opt("--rounds", 10));
const SHAPES = { resnet18: [3, 64, 64], mobilenet_v2: [3, 64, 64], squeezenet1_1: [3, 64, 64], encoder: [16], encoder17: [16], gpt: [16] };
const VOCAB = { encoder: 50, encoder17: 50, gpt: 40 };

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const dir = mkdtempSync(join(tmpdir(), "kiln-import-bench-"));
const py = spawnSync("/usr/bin/python3", [new URL("../test/import/make_nets.py", import.meta.url).pathname, dir, ...models], { encoding: "utf8" });
if (py.status !== 0) throw new Error(`make_nets.py failed (torch and torchvision are needed):\n${py.stderr}`);

console.log("| model | batch | kiln ms | onnxruntime-web ms | ort / kiln |\n|---|---|---|---|---|");
for (const name of models) {
  const out = join(dir, `${name}-kiln`);
  if ((await main(["import", join(dir, `${name}.onnx`), "--out", out], () => {}, (s) => console.error(s))) !== 0) throw new Error(`kiln import ${name} failed`);
  const b = await buildWasm(compileToIR(readFileSync(join(out, `${name}.kiln`), "utf8"), `${name}.kiln`).ir, name);
  const mod = await loadKilnModule(b.manifest, b.wasm, { threads: 1 });
  for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(out, `${name}.safetensors`))).tensors)) mod.setParam(k, t);
  const fn = b.manifest.functions.find((f) => f.name.endsWith(".forward"));
  const session = await ort.InferenceSession.create(readFileSync(join(dir, `${name}.onnx`)), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  for (const batch of [1, 8]) {
    const shape = [batch, ...SHAPES[name]];
    const n = shape.reduce((a, c) => a * c, 1);
    const ids = VOCAB[name];
    const x = ids ? Int32Array.from({ length: n }, (_, i) => (i * 7) % ids) : Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const ox = ids ? new ort.Tensor("int64", BigInt64Array.from(x, BigInt), shape) : new ort.Tensor("float32", x, shape);
    const kiln = () => mod.call(fn.name, { x }, { batch });
    const onnx = () => session.run({ x: ox });
    kiln();
    await onnx();
    const tk = [], to = [];
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      kiln();
      tk.push(performance.now() - t);
      t = performance.now();
      await onnx();
      to.push(performance.now() - t);
    }
    const [mk, mo] = [median(tk), median(to)];
    console.log(`| ${name} | ${batch} | ${mk.toFixed(2)} | ${mo.toFixed(2)} | ${(mo / mk).toFixed(2)}x |`);
  }
  await session.release();
}
