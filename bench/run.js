// `npm run bench [-- --quick] [--runs N] [--only PREFIX] [--systems kiln,jax] [--no-relaxed] [--json FILE]`: Kiln
// against tfjs-backend-wasm, onnxruntime-web and jax-js, back to back on this machine, one process per system and
// thread count; prints ms, GFLOP/s and Kiln's speed ratio to each peer (median over runs of per-run medians).
import { spawn } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { benchArgs, cases, median } from "./common.js";
import { formatTable, targets } from "./table.js";

const { args, opt, quick, runs, only, jsonOut } = benchArgs(3);
const systems = opt("--systems", null)?.split(",");

// Node 20 runs relaxed SIMD only behind this flag; every system gets it (jax-js uses it too when present).
// --no-relaxed runs everything without it: plain SIMD128 everywhere (Kiln's relaxed rows disappear).
const NODE_FLAGS = args.includes("--no-relaxed") ? [] : ["--experimental-wasm-relaxed-simd"];

/** Processes to run: [suite args, label]. Peers without threads under Node run once, at 1 thread. */
function configs() {
  const out = [];
  for (const threads of [1, 2]) {
    for (const simd of ["plain", "relaxed"]) {
      out.push(["kiln", threads, "--simd", simd]);
      // The kernel-only rows check the 1-thread kernel targets; quick mode skips their 2-thread twins.
      if (threads === 1 || !quick) out.push(["kiln", threads, "--simd", simd, "--kernel-only"]);
    }
    out.push(["ort", threads]);
  }
  out.push(["tfjs", 1], ["jax", 1]);
  return systems ? out.filter((c) => systems.includes(c[0])) : out;
}

function runSuite(cfg) {
  const [system, threads, ...extra] = cfg;
  const argv = [...NODE_FLAGS, new URL("./suite.js", import.meta.url).pathname, system, String(threads), ...extra];
  if (quick) argv.push("--quick");
  if (only) argv.push("--only", only);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => {
      const rows = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      if (code !== 0) rows.push({ system, threads, case: "*", error: `exit ${code}: ${err.trim().split("\n").slice(-1)[0]}` });
      resolve(rows);
    });
  });
}

// The bench runs the compiled compiler and runtime (dist/): warn when a source is newer than its build.
for (const f of ["compiler/codegen/wasm/matmul.ts", "compiler/codegen/plan.ts", "runtime/wasm/threads.ts", "runtime/wasm/executor.ts"]) {
  const src = new URL(`../${f}`, import.meta.url);
  const out = new URL(`../dist/${f.replace(/\.ts$/, ".js")}`, import.meta.url);
  if (!existsSync(out)) throw new Error(`${out.pathname} is missing: run \`npm run build\` first`);
  if (statSync(src).mtimeMs > statSync(out).mtimeMs) console.error(`warning: dist/ is older than ${f}: run \`npm run build\``);
}

const started = Date.now();
const all = [];
for (let r = 0; r < runs; r++) {
  for (const cfg of configs()) {
    const rows = await runSuite(cfg);
    for (const row of rows) if (!row.unavailable) all.push({ ...row, run: r });
    process.stderr.write(`run ${r + 1}/${runs}: ${cfg.join(" ")} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

// Median over runs per (case, system, threads).
const byKey = new Map();
for (const row of all) {
  if (row.error) continue;
  const key = `${row.case}|${row.system}|${row.threads}`;
  const e = byKey.get(key) ?? { case: row.case, system: row.system, threads: row.threads, ms: [], round: [], cpu: [], check: row.check };
  e.ms.push(row.ms);
  e.round.push(row.run);
  e.cpu.push(row.cpu ?? null);
  byKey.set(key, e);
}
const results = [...byKey.values()].map((e) => ({ ...e, runs: e.ms, ms: median(e.ms) }));
const errors = all.filter((r) => r.error);

const caseList = cases(quick).filter((c) => !only || c.id.startsWith(only));
const machine = `${cpus()[0]?.model ?? "?"}, ${cpus().length} logical CPUs, Node ${process.version}, flags: ${NODE_FLAGS.join(" ")}`;
console.log(`Kiln benchmark (${quick ? "quick" : "full"}, ${runs} run${runs > 1 ? "s" : ""}; median over runs of benchmark.js medians)`);
console.log(`Machine: ${machine}`);
console.log(formatTable(caseList, results));
console.log(targets(caseList, results));
if (quick) console.log("  (quick mode: few short samples, one run; judge the targets on a full run)");
for (const e of errors) console.log(`error: ${e.system} ${e.threads}T ${e.case}: ${e.error}`);
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ machine, quick, runs, results, errors }, null, 2));
