// Before/after on a shared machine: `node bench/ab.js --base DIR [--rounds 3] [--only PREFIX] [--quick]
// [--peers ort,tfjs]` times Kiln built from this checkout (dist/) and from DIR (another commit's tree with its own
// dist/, e.g. `git archive COMMIT | tar -x -C DIR` + `npx tsc -p DIR/tsconfig.json`), plain and relaxed, and the
// peers at 1 thread, one process each, interleaved round by round in a rotating order. Prints per round ms and
// CPU time per call, then per case the range over rounds of the ratios (peer / Kiln and before / after) by wall
// time (benchmark.js's median) and by CPU time per call, the latter less disturbed by the neighbours' load.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { benchArgs } from "./common.js";

const { opt, quick, only } = benchArgs(3);
const rounds = Number(opt("--rounds", 3));
const base = opt("--base", null);
const peers = opt("--peers", "ort,tfjs").split(",").filter(Boolean);
const here = new URL(".", import.meta.url).pathname;
if (base && !existsSync(join(base, "dist"))) throw new Error(`${base}/dist is missing: build that tree first`);
// DIR runs this checkout's bench/ (same cases and inputs) against its own dist/.
if (base) cpSync(here, join(base, "bench"), { recursive: true });

const configs = [
  ...(base ? [["before", resolve(base, "bench"), "kiln", "plain"], ["before", resolve(base, "bench"), "kiln", "relaxed"]] : []),
  ["after", here, "kiln", "plain"], ["after", here, "kiln", "relaxed"],
  ...peers.map((p) => ["peer", here, p, "plain"]),
];
const label = ([tag, , sys, simd]) => (sys === "kiln" ? `kiln ${simd} ${tag}` : sys);

const rows = [];
for (let r = 0; r < rounds; r++) {
  const order = configs.map((_, i) => configs[(i + r) % configs.length]);
  for (const cfg of order) {
    const [, dir, sys, simd] = cfg;
    const argv = ["--experimental-wasm-relaxed-simd", join(dir, "suite.js"), sys, "1", "--simd", simd];
    if (quick) argv.push("--quick");
    if (only) argv.push("--only", only);
    const p = spawnSync(process.execPath, argv, { encoding: "utf8" });
    for (const line of p.stdout.split("\n").filter((l) => l.startsWith("{"))) {
      const o = JSON.parse(line);
      if (o.unavailable) continue;
      if (o.error) { console.log(`error ${label(cfg)} ${o.case}: ${o.error}`); continue; }
      rows.push({ round: r, who: label(cfg), case: o.case, ms: o.ms, cpuMs: o.cpuMs, sum: o.check.sum });
      console.log(`round ${r + 1} ${o.case.padEnd(20)} ${label(cfg).padEnd(20)} ${o.ms.toFixed(3).padStart(9)} ms  cpu ${o.cpuMs.toFixed(3)} ms/call (share ${o.cpuShare.toFixed(2)})  load ${loadavg()[0].toFixed(1)}`);
    }
    if (p.status !== 0) console.log(`${label(cfg)} exited ${p.status}: ${p.stderr.trim().split("\n").slice(-1)[0]}`);
  }
}

const range = (xs) => (xs.length ? `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x` : "—");
console.log(`\n${cpus()[0]?.model}, ${cpus().length} logical CPUs, Node ${process.version}; ${rounds} rounds; ratio ranges over rounds`);
for (const c of [...new Set(rows.map((r) => r.case))]) {
  const at = (who, r) => rows.find((x) => x.case === c && x.who === who && x.round === r);
  const ratio = (num, den, cpu) => [...Array(rounds).keys()].map((r) => [at(num, r), at(den, r)])
    .filter(([a, b]) => a && b).map(([a, b]) => (cpu ? a.cpuMs / b.cpuMs : a.ms / b.ms));
  console.log(`${c}:`);
  for (const simd of ["plain", "relaxed"]) {
    const k = `kiln ${simd} after`;
    const ms = rows.filter((x) => x.case === c && x.who === k).map((x) => x.ms);
    if (!ms.length) continue;
    const cms = rows.filter((x) => x.case === c && x.who === k).map((x) => x.cpuMs);
    const parts = [`ms ${Math.min(...ms).toFixed(2)}-${Math.max(...ms).toFixed(2)}, cpu ms/call ${Math.min(...cms).toFixed(2)}-${Math.max(...cms).toFixed(2)}`];
    if (base) parts.push(`before/after wall ${range(ratio(`kiln ${simd} before`, k, false))} cpu ${range(ratio(`kiln ${simd} before`, k, true))}`);
    for (const p of peers) parts.push(`${p}/kiln wall ${range(ratio(p, k, false))} cpu ${range(ratio(p, k, true))}`);
    console.log(`  ${k}: ${parts.join("; ")}`);
  }
  const sums = rows.filter((x) => x.case === c).map((x) => x.sum);
  if (Math.max(...sums) - Math.min(...sums) > 1e-3 * (Math.abs(sums[0]) + 1)) console.log(`  !! output sums differ: ${Math.min(...sums)} .. ${Math.max(...sums)}`);
}
