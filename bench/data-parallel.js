// Data-parallel training benchmark (issue 17): samples per second of the MNIST MLP and CNN training steps with one
// replica on one thread, one replica with the intra-op thread pool (threads: 2), and 2 data-parallel replicas
// (runtime/parallel/) with the all-reduce overlapped with backward and with a separate reduce round (the default
// overlaps when the gradients make more than one bucket),
// at batch 64 and 256. Configurations alternate round by round and each reports its median
// round, so a neighbour's load hits all of them alike; the CPU time the process got (all its threads) and the load
// average are printed beside, since on a shared machine "the second core" may not be free.
// Usage: npm run build && node bench/data-parallel.js [--rounds 5] [--seconds 1] [--batches 64,256] [--models mlp,cnn]

import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { Tensor } from "../dist/runtime/tensor.js";
import { DataParallelTrainer } from "../dist/runtime/parallel/trainer.js";
import { randomF32 } from "./common.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const rounds = Number(arg("--rounds", 5));
const seconds = Number(arg("--seconds", 1));
const batchSizes = arg("--batches", "64,256").split(",").map(Number);
const models = arg("--models", "mlp,cnn").split(",");
const FILES = { mlp: ["dsl-examples/mnist_mlp.kiln", [784]], cnn: ["dsl-examples/mnist_cnn.kiln", [1, 28, 28]] };

function batch(shape, b, seed) {
  const per = shape.reduce((a, c) => a * c, 1);
  const y = new Int32Array(b);
  for (let i = 0; i < b; i++) y[i] = (i * 7 + seed) % 10;
  return { x: new Tensor("f32", [b, ...shape], randomF32(b * per, seed)), labels: new Tensor("i32", [b], y) };
}

/** Runs `step` for about `seconds`; samples per second, and CPU seconds per wall second over the run. */
async function timed(step, b) {
  const cpu0 = process.cpuUsage(), t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000 || n < 3) {
    await step();
    n++;
  }
  const wall = (performance.now() - t0) / 1000, cpu = process.cpuUsage(cpu0);
  return { rate: (n * b) / wall, cores: (cpu.user + cpu.system) / 1e6 / wall };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`node ${process.version}, ${availableParallelism()} cores visible, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at start`);
console.log("model  batch  config                   samples/s  (rounds: min..max)  cores used  CPU us/sample  vs 1 thread");
for (const m of models) {
  const [file, shape] = FILES[m];
  const ir = compileToIR(readFileSync(file, "utf8"), file, [], [], { dataParallel: true }).ir;
  const build = await buildWasm(ir, m);
  for (const b of batchSizes) {
    const data = [0, 1, 2, 3].map((s) => batch(shape, b, s + 1));
    const one = await loadKilnModule(build.manifest, build.wasm, { seed: 1 });
    const pool = await loadKilnModule(build.manifest, build.wasm, { seed: 1, threads: 2 });
    const dp = await DataParallelTrainer.create(build.manifest, build.wasm, { replicas: 2, seed: 1, overlap: true });
    // The separate reduce round (the gradient buckets reduced after grad, not during it): one message round more.
    const dpSep = await DataParallelTrainer.create(build.manifest, build.wasm, { replicas: 2, seed: 1, overlap: false });
    let k = 0;
    const configs = {
      "1 replica, 1 thread": () => one.call("Train.step", data[k++ % 4]),
      "1 replica, threads 2": () => pool.call("Train.step", data[k++ % 4]),
      "2 replicas, overlap": () => dp.step(data[k++ % 4]),
      "2 replicas, no overlap": () => dpSep.step(data[k++ % 4]),
    };
    const res = Object.fromEntries(Object.keys(configs).map((c) => [c, []]));
    for (const f of Object.values(configs)) for (let i = 0; i < 3; i++) await f(); // warm up
    const phases0 = { ...dp.times };
    for (let r = 0; r < rounds; r++) for (const [c, f] of Object.entries(configs)) res[c].push(await timed(f, b));
    const base = median(res["1 replica, 1 thread"].map((x) => x.rate));
    for (const [c, xs] of Object.entries(res)) {
      const rates = xs.map((x) => x.rate);
      const med = median(rates);
      // CPU time per sample (all the process's threads) is what a free core would turn into speed: it shows the
      // work a configuration adds, which wall-clock rates on a busy machine hide.
      const cores = median(xs.map((x) => x.cores)), perSample = median(xs.map((x) => (x.cores / x.rate) * 1e6));
      console.log(`${m.padEnd(5)}  ${String(b).padStart(5)}  ${c.padEnd(24)} ${med.toFixed(0).padStart(8)}  (${Math.min(...rates).toFixed(0)}..${Math.max(...rates).toFixed(0)})`.padEnd(68) + `${cores.toFixed(2).padStart(6)}  ${perSample.toFixed(0).padStart(12)}   ${(med / base).toFixed(2)}x`);
    }
    const steps = dp.times.steps - phases0.steps;
    const ms = (p) => ((dp.times[p] - phases0[p]) / steps).toFixed(2);
    console.log(`       2 replicas per step (ms, coordinator's view): grad ${ms("grad")}  all-reduce ${ms("reduce")}  apply ${ms("apply")} (with the overlap, grad includes the all-reduce)`);
    one.dispose();
    pool.dispose();
    dp.dispose();
    dpSep.dispose();
  }
}
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at end`);
