// `node bench/ranges.js results.json`: from a `--json` bench output, per case and system the median ms over rounds,
// each round's ms with the share of a CPU the process got while timing (CPU seconds / wall seconds), and the range
// over rounds of every 1-thread peer / Kiln ratio taken within the same round (the systems ran back to back), and
// the CPU milliseconds per call (ms x CPU share, all threads; median over rounds): what a call cost in CPU time,
// which on a shared machine says more than wall time about a free core.
import { readFileSync } from "node:fs";
import { median } from "./common.js";

const { results } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const PEERS = ["tfjs-wasm", "onnxruntime-web", "jax-js"];
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
for (const c of [...new Set(results.map((r) => r.case))]) {
  console.log(`\n${c}\n\n| system | threads | median ms | CPU ms per call | per round: ms (CPU share) | ${PEERS.map((p) => `${p} / this, range`).join(" | ")} |`);
  console.log(`|---|---|---|---|---|${PEERS.map(() => "---").join("|")}|`);
  const rows = results.filter((r) => r.case === c);
  for (const r of rows) {
    const perRound = r.runs.map((ms, i) => {
      const cpu = r.cpu?.[i];
      return `${fmt(ms)} (${cpu ? (cpu.s / cpu.wall).toFixed(2) : "?"})`;
    });
    const ratios = PEERS.map((p) => {
      const peer = rows.find((x) => x.system === p && x.threads === 1);
      if (!r.system.startsWith("kiln") || !peer) return "—";
      const within = r.round.map((rd, i) => {
        const j = peer.round.indexOf(rd);
        return j < 0 ? null : peer.runs[j] / r.runs[i];
      }).filter((x) => x !== null);
      return within.length ? `${Math.min(...within).toFixed(2)}-${Math.max(...within).toFixed(2)}x` : "—";
    });
    const cpuMs = r.runs.map((ms, i) => (r.cpu?.[i] ? (ms * r.cpu[i].s) / r.cpu[i].wall : null)).filter((x) => x !== null);
    console.log(`| ${r.system} | ${r.threads} | ${fmt(r.ms)} | ${cpuMs.length ? fmt(median(cpuMs)) : "?"} | ${perRound.join(", ")} | ${ratios.join(" | ")} |`);
  }
}
