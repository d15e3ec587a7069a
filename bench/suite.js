// One system in its own process (onnxruntime-web fixes its thread count per process; peers do not share a heap):
// `node bench/suite.js SYSTEM THREADS [--quick] [--simd plain|relaxed] [--kernel-only] [--only PREFIX]` times every case with benchmark.js and
// prints one JSON line per case: the median time per call over benchmark.js's samples, the CPU share the process
// got meanwhile and its CPU time per call, and a checksum.
import Benchmark from "benchmark";
import { cases, checksum, inputsOf, median } from "./common.js";

const [systemName, threadsArg, ...rest] = process.argv.slice(2);
const quick = rest.includes("--quick");
const simd = rest.includes("--simd") ? rest[rest.indexOf("--simd") + 1] : "plain";
const only = rest.includes("--only") ? rest[rest.indexOf("--only") + 1] : null;
const threads = Number(threadsArg);

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

/** Times `run` (sync or async) with benchmark.js; returns seconds per call, one per sample. */
function time(run, isAsync) {
  return new Promise((resolve, reject) => {
    const opts = quick ? { minSamples: 4, maxTime: 0.25, initCount: 1 } : { minSamples: 10, maxTime: 1.5, initCount: 1 };
    const b = isAsync
      ? new Benchmark("case", { ...opts, defer: true, fn: (d) => run().then(() => d.resolve(), reject) })
      : new Benchmark("case", { ...opts, fn: run });
    b.on("complete", () => (b.error ? reject(b.error) : resolve(b.stats.sample)));
    b.on("error", () => reject(b.error));
    b.run();
  });
}

const mod = await import(`./systems/${systemName}.js`);
const sys = await mod.system({ threads, simd, kernelOnly: rest.includes("--kernel-only") });
if (!sys) {
  emit({ unavailable: true });
  process.exit(0);
}
for (const c of cases(quick)) {
  if (only && !c.id.startsWith(only)) continue;
  const inp = inputsOf(c);
  let prepared;
  try {
    prepared = await sys.prepare(c, inp);
  } catch (e) {
    emit({ system: sys.label, threads, case: c.id, error: String(e?.message ?? e).split("\n")[0] });
    continue;
  }
  if (!prepared) continue;
  try {
    // The first call (fresh state: it matters for the training step) gives the checksum and warms up.
    const first = await prepared.run();
    const isAsync = prepared.run() instanceof Promise;
    // The CPU this process got while timing (all its threads), against the wall time: on a shared machine a share
    // well under the thread count means the neighbours took the rest. cpuMs: that CPU time over the calls made
    // (benchmark.js's calibration included), per call, which neighbours' load disturbs far less than ms.
    let calls = 0;
    const counted = () => (calls++, prepared.run());
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const samples = await time(counted, isAsync);
    const used = process.cpuUsage(cpu0);
    const wallS = (performance.now() - wall0) / 1e3;
    const cpuS = (used.user + used.system) / 1e6;
    const cpu = { s: cpuS, wall: wallS };
    emit({ system: sys.label, threads, case: c.id, ms: median(samples) * 1e3, cpuMs: (cpuS * 1e3) / calls, cpuShare: cpuS / wallS, samples: samples.length, check: checksum(first), cpu });
  } catch (e) {
    emit({ system: sys.label, threads, case: c.id, error: String(e?.message ?? e).split("\n")[0] });
  } finally {
    await prepared.dispose?.();
  }
}
// Peers may keep worker threads (onnxruntime-web) alive.
process.exit(0);
