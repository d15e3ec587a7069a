// `node bench/call-cpu.js [--base DIR] [--rounds 3] [--relaxed]`: CPU time per call (process.cpuUsage, which the
// neighbours' load disturbs far less than wall time) of small calls where per-call work matters: the MLP forward
// at batch 64 (dsl-examples/mlp.kiln), a tiny 16-8-4 MLP at batch 1 (almost all per-call overhead), and the
// encoder of test/import/make_nets.py imported by `kiln import` at batch 1 and 8, with onnxruntime-web (1 thread)
// on the same ONNX file. Each system runs in its own process, rounds interleaved; `--base DIR` adds Kiln built
// in DIR (a tree with its own dist/, as for bench/ab.js). Run `npm run build` first.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { mlpWeights, inputsOf, cases } from "./common.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const here = resolve(new URL("..", import.meta.url).pathname);
const TINY = `model M {
  param w1: f32[16, 8] = he()
  param b1: f32[8] = zeros()
  param w2: f32[8, 4] = xavier()
  param b2: f32[4] = zeros()
  fn forward(x: f32[B, 16]) -> f32[B, 4] {
    return relu(x @ w1 + b1) @ w2 + b2
  }
}`;

/** us of CPU per call of `call`, after a warm-up, over `n` calls. */
async function cpuPerCall(call, n) {
  // Long enough for V8 to tier the wasm up (onnxruntime-web ran 2-3x slower over its first ~1000 calls).
  for (let i = 0; i < Math.max(20, n / 2); i++) await call();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await call();
  const u = process.cpuUsage(c0);
  return (u.user + u.system) / n;
}

async function child(kind, root, dir, relaxed) {
  const out = {};
  if (kind === "ort") {
    const ort = await import("onnxruntime-web");
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    const session = await ort.InferenceSession.create(readFileSync(join(dir, "encoder.onnx")), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    for (const batch of [1, 8]) {
      const x = new ort.Tensor("int64", BigInt64Array.from({ length: batch * 16 }, (_, i) => BigInt((i * 7) % 50)), [batch, 16]);
      out[`encoder b=${batch}`] = await cpuPerCall(() => session.run({ [session.inputNames[0]]: x }), batch === 1 ? 2000 : 300);
    }
    return out;
  }
  const { compileToIR, buildWasm } = await import(join(root, "dist/compiler/compile.js"));
  const { loadKilnModule } = await import(join(root, "dist/runtime/wasm/module.js"));
  const { parseSafetensors } = await import(join(root, "dist/runtime/safetensors.js"));
  const load = async (src, params) => {
    const b = await buildWasm(compileToIR(src, "bench.kiln").ir, "bench");
    return { b, m: await loadKilnModule(b.manifest, b.wasm, { params, ...(relaxed ? { relaxedWasm: b.wasmRelaxed } : {}) }) };
  };
  const w = mlpWeights();
  const mlp = (await load(readFileSync(join(here, "dsl-examples/mlp.kiln"), "utf8"), { "MLP.w1": w.w1, "MLP.b1": w.b1, "MLP.w2": w.w2, "MLP.b2": w.b2 })).m;
  const x = inputsOf(cases(true).find((c) => c.kind === "mlp")).x;
  out["mlp forward b=64"] = await cpuPerCall(() => mlp.MLP.forward({ x }), 2000);
  const tiny = (await load(TINY)).m;
  const xt = new Float32Array(16).fill(0.5);
  out["tiny mlp b=1"] = await cpuPerCall(() => tiny.M.forward({ x: xt }), 50000);
  const enc = await load(readFileSync(join(dir, "encoder-kiln/encoder.kiln"), "utf8"));
  for (const [k, t] of Object.entries(parseSafetensors(readFileSync(join(dir, "encoder-kiln/encoder.safetensors"))).tensors)) enc.m.setParam(k, t);
  const fn = enc.b.manifest.functions.find((f) => f.name.endsWith(".forward"));
  for (const batch of [1, 8]) {
    const ids = new Int32Array(batch * 16).map((_, i) => (i * 7) % 50);
    out[`encoder b=${batch}`] = await cpuPerCall(() => enc.m.call(fn.name, { [fn.inputs[0].name]: ids }, { batch }), batch === 1 ? 4000 : 1000);
  }
  return out;
}

if (args[0] === "--child") {
  const [, kind, root, dir, simd] = args;
  process.stdout.write(JSON.stringify(await child(kind, root, dir, simd === "relaxed")) + "\n");
  process.exit(0);
}

const rounds = Number(opt("--rounds", 3));
const base = opt("--base", null);
const simd = args.includes("--relaxed") ? "relaxed" : "plain";
if (base && !existsSync(join(base, "dist"))) throw new Error(`${base}/dist is missing: build that tree first`);
const dir = mkdtempSync(join(tmpdir(), "kiln-call-cpu-"));
const py = spawnSync("/usr/bin/python3", [join(here, "test/import/make_nets.py"), dir, "encoder"], { encoding: "utf8" });
if (py.status !== 0) throw new Error(`make_nets.py failed (torch is needed):\n${py.stderr}`);
const { main } = await import(join(here, "dist/compiler/cli/main.js"));
if ((await main(["import", join(dir, "encoder.onnx"), "--out", join(dir, "encoder-kiln")], () => {}, (s) => console.error(s))) !== 0) throw new Error("kiln import failed");

const systems = [[`kiln ${simd}`, "kiln", here], ...(base ? [[`kiln ${simd} base`, "kiln", resolve(base)]] : []), ["onnxruntime-web", "ort", here]];
const rows = {};
for (let r = 0; r < rounds; r++) {
  for (let s = 0; s < systems.length; s++) {
    const [label, kind, root] = systems[(s + r) % systems.length];
    const flags = simd === "relaxed" ? ["--experimental-wasm-relaxed-simd"] : [];
    const p = spawnSync(process.execPath, [...flags, new URL(import.meta.url).pathname, "--child", kind, root, dir, simd], { encoding: "utf8", cwd: here });
    if (p.status !== 0) throw new Error(`${label}: ${p.stderr}`);
    const res = JSON.parse(p.stdout.trim().split("\n").pop());
    for (const [c, us] of Object.entries(res)) ((rows[c] ??= {})[label] ??= []).push(us);
    console.error(`round ${r + 1} ${label}: ${Object.entries(res).map(([c, us]) => `${c} ${us.toFixed(1)} us`).join(", ")} (load ${loadavg()[0].toFixed(1)})`);
  }
}
const range = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
console.log(`CPU us per call, ranges over ${rounds} rounds (${simd} build; load average now ${loadavg().map((x) => x.toFixed(1)).join(" ")})`);
for (const [c, bySys] of Object.entries(rows)) console.log(`${c.padEnd(18)} ${Object.entries(bySys).map(([l, xs]) => `${l}: ${range(xs)}`).join(" | ")}`);
