// MNIST training benchmark (issue 6's targets): trains dsl-examples/mnist_mlp.kiln (and mnist_cnn.kiln when it
// exists) on the bundled split (images 0-7999 train, 8000-9999 held out) on one core and reports the wall time
// and the held-out accuracy. Targets: MLP >= 95%, CNN >= 97%, each in under 2 minutes.
// Usage: npm run build && node bench/mnist-train.js [--epochs-mlp 8] [--epochs-cnn 4]

import { existsSync, readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { compileToIR } from "../dist/compiler/compile.js";
import { runTraining } from "../dist/compiler/cli/train.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });

const runs = [
  { file: "dsl-examples/mnist_mlp.kiln", epochs: arg("--epochs-mlp", 8), batch: 64, target: 0.95 },
  { file: "dsl-examples/mnist_cnn.kiln", epochs: arg("--epochs-cnn", 4), batch: 64, target: 0.97 },
];

console.log("model                          epochs  batch  time (s)  held-out accuracy  target");
for (const r of runs) {
  if (!existsSync(r.file)) {
    console.log(`${r.file.padEnd(30)} (missing)`);
    continue;
  }
  const ir = compileToIR(readFileSync(r.file, "utf8"), r.file).ir;
  const t0 = performance.now();
  const res = await runTraining(ir, { data: "mnist", epochs: r.epochs, steps: 0, batch: r.batch, seed: 1, classes: 10, checkNumerics: false, progress: quiet }, () => {});
  const secs = (performance.now() - t0) / 1000;
  const acc = res.accuracy.at(-1);
  const ok = acc >= r.target && secs < 120 ? "met" : "MISSED";
  console.log(`${r.file.padEnd(30)} ${String(r.epochs).padStart(6)}  ${String(r.batch).padStart(5)}  ${secs.toFixed(1).padStart(8)}  ${(acc * 100).toFixed(2).padStart(16)}%  ${ok} (>= ${r.target * 100}%, < 120 s)`);
}
