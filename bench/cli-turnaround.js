// CLI turnaround: wall time and CPU time (all threads of the process) of `kiln` commands, cold (empty compile
// cache) and cached (second run of an unchanged program), each the median of --runs runs in a fresh process.
//   node bench/cli-turnaround.js [--runs 5] [--kiln path/to/bin/kiln.js] [--json]
// --kiln points at another checkout's bin/kiln.js to measure it the same way (a checkout without the cache only
// has cold numbers).

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const runs = Number(arg("--runs", "5"));
const kiln = resolve(arg("--kiln", join(root, "bin", "kiln.js")));
const json = process.argv.includes("--json");

// Reports the child's own CPU time (user + system, every thread) on exit, on stderr's last line.
const hook = `data:text/javascript,process.on("exit",()=>{const c=process.cpuUsage();process.stderr.write("\\n@cpu "+((c.user+c.system)/1e6)+"\\n")})`;

function once(args, env) {
  const t = performance.now();
  const r = spawnSync(process.execPath, ["--import", hook, kiln, ...args], { cwd: root, env: { ...process.env, ...env }, encoding: "utf8" });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`kiln ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  const cpu = Number(/@cpu ([\d.]+)\s*$/.exec(r.stderr)?.[1]);
  return { wall, cpu };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function measure(label, args, cached) {
  const walls = [], cpus = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), "kiln-bench-cache-"));
    try {
      const env = { KILN_CACHE: "1", KILN_CACHE_DIR: dir };
      if (cached) once(args, env); // fills the cache
      const m = once(args, env);
      walls.push(m.wall);
      cpus.push(m.cpu);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { label, mode: cached ? "cached" : "cold", wall: median(walls), cpu: median(cpus), runs };
}

const out = mkdtempSync(join(tmpdir(), "kiln-bench-out-"));
const cases = [
  ["kiln run dsl-examples/autograd.kiln --fn df --input x=2", ["run", "dsl-examples/autograd.kiln", "--fn", "df", "--input", "x=2"]],
  ["kiln compile dsl-examples/mlp.kiln", ["compile", "dsl-examples/mlp.kiln", "--out", join(out, "mlp")]],
  ["kiln compile dsl-examples/mnist_cnn.kiln", ["compile", "dsl-examples/mnist_cnn.kiln", "--out", join(out, "cnn")]],
];
const results = [];
try {
  for (const [label, args] of cases) for (const cached of [false, true]) results.push(measure(label, args, cached));
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (json) console.log(JSON.stringify(results, null, 2));
else {
  console.log(`kiln CLI turnaround (${kiln}), median of ${runs} fresh processes, Node ${process.version}`);
  for (const r of results) console.log(`${r.label.padEnd(58)} ${r.mode.padEnd(7)} wall ${r.wall.toFixed(2)} s  cpu ${r.cpu.toFixed(2)} s`);
}
