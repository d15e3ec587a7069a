// `node bench/threads.js [--rounds 3] [--only PREFIX] [--simd plain|relaxed|both] [--modes free,busy] [--base DIR]`: Kiln on
// 2 threads against 1 (issue 19's "threads that always help"): matmul 512 and 1024 and the MLP training step,
// one process per configuration (bench/suite.js), rounds interleaved. Mode "free": nothing else of ours runs;
// "busy": a separate busy-loop process occupies a core for the whole measurement (2 threads must then not be
// slower than 1). Prints per case the ms range of each thread count, the ratio range (1-thread ms / 2-thread ms
// of the same round), the CPU share each process got and its CPU ms per call, and the load average.
// `--paired N` measures instead fastest and 25th-percentile single calls, 1 and 2 threads alternating in one
// process (see pairedChild). `--base DIR` also runs the 2-thread configuration of Kiln built in DIR (a tree with its own dist/, as for
// bench/ab.js), in the same rounds. Run `npm run build` first (suite.js loads dist/).
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { benchArgs } from "./common.js";

const { opt } = benchArgs(3);
const rounds = Number(opt("--rounds", 3));
const only = opt("--only", null);
const simds = opt("--simd", "both") === "both" ? ["plain", "relaxed"] : [opt("--simd", "both")];
const modes = opt("--modes", "free,busy").split(",");
const CASES = ["matmul 512 nn", "matmul 1024 nn", "mlp train step b=64"].filter((c) => !only || c.startsWith(only));
const suite = new URL("./suite.js", import.meta.url).pathname;
const base = opt("--base", null);
if (base && !existsSync(join(base, "dist"))) throw new Error(`${base}/dist is missing: build that tree first`);

/** One suite.js process (of this tree, or of `--base` with tree "base") for one case: its JSON row. */
function measure(threads, simd, c, tree = "here") {
  const script = tree === "base" ? join(resolve(base), "bench/suite.js") : suite;
  const p = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", script, "kiln", String(threads), "--simd", simd, "--only", c], { encoding: "utf8" });
  const row = p.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((r) => r.case === c);
  if (p.status !== 0 || !row || row.error) throw new Error(`kiln ${threads}T ${simd} ${c}: ${row?.error ?? p.stderr.trim().split("\n").pop()}`);
  return row;
}

/** A process spinning on one core until killed. */
function busyLoop() {
  return spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
}

/**
 * `--paired N`: one process per tree loads the case on 1 and on 2 threads and alternates single calls, N of
 * each; the fastest call and the 25th percentile of each estimate the times when a core is free of neighbours
 * (on a shared machine the medians mostly measure the neighbours).
 */
async function pairedChild(root, simd, c, n) {
  const { cases, inputsOf } = await import(join(root, "bench/common.js"));
  const { system } = await import(join(root, "bench/systems/kiln.js"));
  const cs = cases(false).find((x) => x.id === c);
  const inp = inputsOf(cs);
  const runs = {};
  for (const t of [1, 2]) runs[t] = await (await system({ threads: t, simd, kernelOnly: false })).prepare(cs, inp);
  const ms = { 1: [], 2: [] };
  for (let i = 0; i < n + 3; i++) {
    for (const t of i % 2 ? [2, 1] : [1, 2]) {
      const t0 = performance.now();
      runs[t].run();
      if (i >= 3) ms[t].push(performance.now() - t0);
    }
  }
  const stats = runs[2].stats?.() ?? {};
  for (const t of [1, 2]) runs[t].dispose?.();
  const q = (xs, f) => [...xs].sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))];
  return { min1: q(ms[1], 0), min2: q(ms[2], 0), p25_1: q(ms[1], 0.25), p25_2: q(ms[2], 0.25), stats };
}

if (opt("--child-paired", null)) {
  const [root, simd, c, n] = opt("--child-paired", null).split("|");
  process.stdout.write(JSON.stringify(await pairedChild(root, simd, c, Number(n))) + "\n");
  process.exit(0);
}

const paired = Number(opt("--paired", 0));
if (paired > 0) {
  const trees = [["this tree", resolve(new URL("..", import.meta.url).pathname)], ...(base ? [["base", resolve(base)]] : [])];
  console.log(`Paired calls in one process per tree, ${paired} of each thread count, ${rounds} rounds (ratio = 1-thread ms / 2-thread ms)`);
  console.log("| mode | tree | build | case | fastest 1T / 2T ms | ratio of fastest | 25th pct 1T / 2T ms | ratio of 25th pct | load |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const mode of modes) for (const simd of simds) {
    for (const c of CASES) {
      for (const [label, root] of trees) {
        const rs = [];
        for (let r = 0; r < rounds; r++) {
          const busy = mode === "busy" ? busyLoop() : null;
          if (busy) await new Promise((res) => setTimeout(res, 200));
          const p = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", new URL(import.meta.url).pathname, "--child-paired", [root, simd, c, paired].join("|")], { encoding: "utf8" });
          busy?.kill();
          if (p.status !== 0) throw new Error(`${label} ${simd} ${c}: ${p.stderr}`);
          rs.push({ ...JSON.parse(p.stdout.trim().split("\n").pop()), load: loadavg()[0] });
        }
        const f = (k, d = 2) => `${Math.min(...rs.map((x) => x[k])).toFixed(d)}-${Math.max(...rs.map((x) => x[k])).toFixed(d)}`;
        const ratios = (a, b) => rs.map((x) => x[a] / x[b]);
        const rr = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x`;
        // The 2-thread pool's own account, summed over rounds (absent for a tree without PoolStats).
        const st = rs.reduce((a, x) => (Object.entries(x.stats).forEach(([k, v]) => (a[k] = (a[k] ?? 0) + v)), a), {});
        const pool = "dispatches" in st ? ` (2T pool: ${st.dispatches} splits, ${st.starved} starved, ${st.solo} kept on one thread${st.soloCalls !== undefined ? `, ${st.soloCalls} whole calls on one thread` : ""})` : "";
        console.log(`| ${mode} | ${label} | ${simd} | ${c} | ${f("min1")} / ${f("min2")} | ${rr(ratios("min1", "min2"))} | ${f("p25_1")} / ${f("p25_2")} | ${rr(ratios("p25_1", "p25_2"))}${pool} | ${f("load", 1)} |`);
      }
    }
  }
  process.exit(0);
}

const results = new Map();
for (const mode of modes) {
  for (let r = 0; r < rounds; r++) {
    const busy = mode === "busy" ? busyLoop() : null;
    try {
      if (busy) await new Promise((res) => setTimeout(res, 200));
      for (const simd of simds) {
        for (const c of CASES) {
          // Alternate which thread count goes first, so a neighbour's burst does not always land on the same one.
          const order = [1, 2, ...(base ? ["base"] : [])];
          if (r % 2 === 1) order.reverse();
          const row = {};
          for (const t of order) row[t] = t === "base" ? measure(2, simd, c, "base") : measure(t, simd, c);
          const key = `${mode}|${simd}|${c}`;
          const e = results.get(key) ?? { mode, simd, c, one: [], two: [], ratio: [], share1: [], share2: [], cpu1: [], cpu2: [], load: [], baseRatio: [] };
          if (row.base) e.baseRatio.push(row[1].ms / row.base.ms);
          e.one.push(row[1].ms);
          e.two.push(row[2].ms);
          e.ratio.push(row[1].ms / row[2].ms);
          e.share1.push(row[1].cpuShare);
          e.share2.push(row[2].cpuShare);
          e.cpu1.push(row[1].cpuMs);
          e.cpu2.push(row[2].cpuMs);
          e.load.push(loadavg()[0]);
          results.set(key, e);
          const baseNote = row.base ? `, base 2T ${row.base.ms.toFixed(2)} ms (${(row[1].ms / row.base.ms).toFixed(2)}x)` : "";
          console.error(`${mode} round ${r + 1} ${simd} ${c}: 1T ${row[1].ms.toFixed(2)} ms, 2T ${row[2].ms.toFixed(2)} ms, ratio ${(row[1].ms / row[2].ms).toFixed(2)}x${baseNote} (load ${loadavg()[0].toFixed(2)})`);
        }
      }
    } finally {
      busy?.kill();
    }
  }
}

const range = (xs, d = 2) => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;
console.log(`Kiln 2 threads vs 1, ${rounds} rounds interleaved (ratio = 1-thread ms / 2-thread ms; share = CPU the process got / wall time)`);
const baseCol = base ? " base 2T ratio |" : "";
console.log(`| mode | build | case | 1 thread ms | 2 threads ms | ratio |${baseCol} CPU share 1T / 2T | CPU ms/call 1T / 2T | load |`);
console.log(`|---|---|---|---|---|---|${base ? "---|" : ""}---|---|---|`);
for (const e of results.values()) {
  const b = base ? ` ${range(e.baseRatio)}x |` : "";
  console.log(`| ${e.mode} | ${e.simd} | ${e.c} | ${range(e.one)} | ${range(e.two)} | ${range(e.ratio)}x |${b} ${range(e.share1)} / ${range(e.share2)} | ${range(e.cpu1)} / ${range(e.cpu2)} | ${range(e.load, 1)} |`);
}
