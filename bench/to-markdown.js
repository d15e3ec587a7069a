// `node bench/to-markdown.js results.json`: the compact table of docs/performance.md from a `--json` bench output
// (ms and GFLOP/s per system; Kiln's best 1-thread build against the fastest peer).
import { readFileSync } from "node:fs";

const { results } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const COLS = [
  ["kiln", 1], ["kiln-relaxed", 1], ["kiln kernel", 1], ["kiln-relaxed kernel", 1], ["kiln", 2], ["kiln-relaxed", 2],
  ["tfjs-wasm", 1], ["onnxruntime-web", 1], ["onnxruntime-web", 2], ["jax-js", 1],
];
const PEERS = ["tfjs-wasm", "onnxruntime-web", "jax-js"];
const flops = (c) => {
  const m = /^matmul (\d+)/.exec(c);
  if (m) return 2 * Number(m[1]) ** 3;
  if (c.startsWith("mlp forward")) return 2 * 64 * (784 * 128 + 128 * 10);
  if (c.startsWith("mlp train")) return 2 * 64 * (2 * 784 * 128 + 3 * 128 * 10);
  return null;
};
const cases = [...new Set(results.map((r) => r.case))];
const get = (c, s, t) => results.find((r) => r.case === c && r.system === s && r.threads === t);
const cell = (c, r) => (r ? (flops(c) ? `${r.ms.toFixed(3)} (${(flops(c) / r.ms / 1e6).toFixed(0)})` : r.ms.toFixed(3)) : "—");
const head = ["case", ...COLS.map(([s, t]) => `${s} ${t}T`), "best Kiln 1T / best peer 1T"];
console.log(`| ${head.join(" | ")} |`);
console.log(`|${head.map(() => "---").join("|")}|`);
for (const c of cases) {
  const kiln = ["kiln", "kiln-relaxed"].map((s) => get(c, s, 1)).filter(Boolean).sort((a, b) => a.ms - b.ms)[0];
  const peer = PEERS.map((s) => get(c, s, 1)).filter(Boolean).sort((a, b) => a.ms - b.ms)[0];
  const ratio = kiln && peer ? `${(peer.ms / kiln.ms).toFixed(2)}x (${peer.system})` : "—";
  console.log(`| ${c} | ${COLS.map(([s, t]) => cell(c, get(c, s, t))).join(" | ")} | ${ratio} |`);
}
console.log("\nms per call (GFLOP/s); median over runs of benchmark.js medians.");
