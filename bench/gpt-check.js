// Correctness check for the GPT bench case: every system runs the same 5 Adam steps of gpt_char.kiln's GPT from
// the same weights on the same batch (bench/common.js) and prints its losses; they must agree (forward, backward
// and update all enter from step 2 on), and match PyTorch's.
// `node bench/gpt-check.js [--systems kiln,jax,tfjs]`.
import { cases, inputsOf } from "./common.js";
import { benchArgs } from "./common.js";

const { opt } = benchArgs(1);
// From `/usr/bin/python3 scripts/gpt_bench_torch.py` (PyTorch 1.13, torch.optim.Adam, the same weights and batch).
const TORCH = [4.199682, 4.084351, 3.947572, 3.959319, 3.819417];
const steps = TORCH.length;
const names = opt("--systems", "kiln,jax,tfjs").split(",");
const c = cases(false).find((x) => x.kind === "gpttrain");
const inp = inputsOf(c);
const losses = {};
for (const name of names) {
  const sys = await (await import(`./systems/${name}.js`)).system({ threads: 1, simd: "plain" });
  const prepared = await sys.prepare(c, inp);
  losses[sys.label] = [];
  for (let i = 0; i < steps; i++) losses[sys.label].push((await prepared.run())[0]);
  await prepared.dispose?.();
  console.log(`${sys.label.padEnd(10)} ${losses[sys.label].map((l) => l.toFixed(6)).join(" ")}`);
}
losses.pytorch = TORCH;
const all = Object.values(losses);
let worst = 0;
for (let i = 0; i < steps; i++) {
  const col = all.map((l) => l[i]);
  worst = Math.max(worst, Math.max(...col) - Math.min(...col));
}
console.log(`${c.id}: largest spread of a step's loss across systems and PyTorch ${worst.toExponential(2)}`);
if (!(worst < 1e-4)) {
  console.log("FAILED: the systems disagree by more than 1e-4");
  process.exit(1);
}
process.exit(0);
