// Writes flowers.csv, the tutorial's dataset: 150 iris-like flowers of 3 species (50 each), 4 measurements in cm
// drawn from one Gaussian per species and measurement, seeded, so the file is the same on every run.
// `node dsl-examples/tutorial-app/make-flowers.mjs [OUT.csv]`
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// Per species: mean and spread of sepal length, sepal width, petal length, petal width (close to Fisher's iris).
const SPECIES = [
  { mean: [5.0, 3.4, 1.5, 0.25], sd: [0.35, 0.38, 0.17, 0.1] },
  { mean: [5.9, 2.8, 4.3, 1.3], sd: [0.5, 0.31, 0.47, 0.2] },
  { mean: [6.6, 3.0, 5.6, 2.0], sd: [0.63, 0.32, 0.55, 0.27] },
];

// mulberry32 and Box-Muller: a few lines, no dependency, and the same numbers in every Node version.
let state = 20261207;
function uniform() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());

const rows = ["sepal_length,sepal_width,petal_length,petal_width,species"];
for (let i = 0; i < 150; i++) {
  const s = i % 3;
  const x = SPECIES[s].mean.map((m, k) => Math.max(0.1, m + SPECIES[s].sd[k] * normal()).toFixed(1));
  rows.push(`${x.join(",")},${s}`);
}
const out = process.argv[2] ?? fileURLToPath(new URL("./flowers.csv", import.meta.url));
writeFileSync(out, rows.join("\n") + "\n");
console.log(`wrote ${out}: 150 flowers, 3 species`);
