// `node bench/threads-nsplit-ab.js [calls]`: mnist_cnn's forward at batch 64 compiled with column splits and
// without (KILN_THREADS_NSPLIT=0), each on 1 and 2 threads (2 without the fallback to one, so every big kernel
// splits), calls alternating in one process: wall and process CPU ms per call, the pool's splits, and whether
// all four outputs are bit-identical. With one core to spare the 2-thread CPU time shows the work a split
// adds. Run `npm run build` first (it loads dist/).
const root = new URL("..", import.meta.url).pathname;
const { compileToIR, buildWasm } = await import(root + "/dist/compiler/compile.js");
const { loadKilnModule, WASM_STATE } = await import(root + "/dist/runtime/wasm/module.js");
const { cnnWeights, inputsOf, cases } = await import(root + "/bench/common.js");
const { readFileSync } = await import("node:fs");
const CNN = readFileSync(root + "/dsl-examples/mnist_cnn.kiln", "utf8");
const n = Number(process.argv[2] ?? 100);
const cs = cases(false).find((x) => x.id === "cnn forward b=64");
const inp = inputsOf(cs);
const params = Object.fromEntries(Object.entries(cnnWeights()).map(([k, v]) => [`MnistCNN.${k}`, v]));
const build = async (ns) => { process.env.KILN_THREADS_NSPLIT = ns; return buildWasm(compileToIR(CNN, "b.kiln").ir, "bench"); };
const runs = {};
for (const [k, ns] of [["cols", "1"], ["rows", "0"]]) for (const t of [1, 2]) {
  const b = await build(ns);
  const m = await loadKilnModule(b.manifest, b.wasm, { threads: t, params });
  if (t === 2) m[WASM_STATE]("x").pool.fallback = false;
  runs[`${k} ${t}T`] = { m, call: () => m.call("MnistCNN.forward", { x: inp.x }), ms: [], cpu: [], out: null };
}
const keys = Object.keys(runs);
for (let i = 0; i < n + 3; i++) for (const k of (i % 2 ? keys : [...keys].reverse())) {
  const r = runs[k];
  const c0 = process.cpuUsage(), t0 = performance.now();
  const o = r.call();
  const t = performance.now() - t0, c = process.cpuUsage(c0);
  r.out = o.data;
  if (i >= 3) { r.ms.push(t); r.cpu.push((c.user + c.system) / 1000); }
}
const q = (xs, f) => [...xs].sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))];
for (const k of keys) {
  const r = runs[k];
  const st = r.m[WASM_STATE]("x").pool?.stats;
  console.log(`${k}: wall min ${q(r.ms, 0).toFixed(2)} p25 ${q(r.ms, 0.25).toFixed(2)} med ${q(r.ms, 0.5).toFixed(2)} ms; process CPU med ${q(r.cpu, 0.5).toFixed(2)} ms${st ? ` splits ${st.dispatches} cols ${st.cols}` : ""}`);
}
const same = keys.every((k) => runs[k].out.every((v, i) => Object.is(v, runs[keys[0]].out[i])));
console.log("all four outputs bit-identical:", same);
process.exit(0);
