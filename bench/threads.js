// `node bench/threads.js [--rounds 3] [--only PREFIX] [--simd plain|relaxed|both] [--modes free,busy] [--base DIR]`: Kiln on
// 2 threads against 1 (issue 19's "threads that always help"): matmul 512 and 1024 and the MLP training step,
// one process per configuration (bench/suite.js), rounds interleaved. Mode "free": nothing else of ours runs;
// "busy": a separate busy-loop process occupies a core for the whole measurement (2 threads must then not be
// slower than 1). Prints per case the ms range of each thread count, the ratio range (1-thread ms / 2-thread ms
// of the same round), the CPU share each process got and its CPU ms per call, and the load average.
// `--base DIR` also runs the 2-thread configuration of Kiln built in DIR (a tree with its own dist/, as for
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
