// `node bench/train-utils.js [--rounds 6]`: what gpt_char's lr schedule and global-norm clipping cost per training
// step on wasm, 1 thread (run `npm run build` first: it uses dist/). The example is compiled as written and with
// its schedule and clip_grad_norm lines removed; rounds of 5 steps interleave the two so drift on a shared machine
// hits both alike, and each prints the median CPU time per step over the rounds after the first (warm-up).
import { readFileSync } from "node:fs";
import { compileToIR, buildWasm } from "../dist/compiler/compile.js";
import { loadKilnModule } from "../dist/runtime/wasm/module.js";
import { Tensor } from "../dist/runtime/tensor.js";

const at = process.argv.indexOf("--rounds");
const rounds = at > 0 ? Number(process.argv[at + 1]) : 6;
const full = readFileSync(new URL("../dsl-examples/gpt_char.kiln", import.meta.url), "utf8");
const plain = full.replace(/\n\s*schedule:.*\n\s*clip_grad_norm:.*/, "");
if (plain === full) throw new Error("gpt_char.kiln no longer has the schedule and clip_grad_norm lines this bench removes");
const mods = {};
for (const [name, src] of Object.entries({ "schedule + clip_grad_norm": full, "neither": plain })) {
  const r = compileToIR(src, "gpt_char.kiln");
  const b = await buildWasm(r.ir, "gpt_char");
  mods[name] = await loadKilnModule(b.manifest, b.wasm, { seed: 0 });
}
const B = 32;
const x = new Tensor("i32", [B, 64], Int32Array.from({ length: B * 64 }, (_, i) => (i * 7) % 65));
const y = new Tensor("i32", [B, 64], Int32Array.from({ length: B * 64 }, (_, i) => (i * 11) % 65));
const times = Object.fromEntries(Object.keys(mods).map((k) => [k, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, mod] of Object.entries(mods)) {
    const t0 = process.cpuUsage();
    for (let s = 0; s < 5; s++) mod.call("Train.step", { x, y });
    const u = process.cpuUsage(t0);
    times[name].push((u.user + u.system) / 1000 / 5);
  }
}
for (const [name, v] of Object.entries(times)) {
  const s = v.slice(1).sort((a, b) => a - b);
  console.log(`gpt_char Train.step, batch ${B}, ${name}: median ${s[Math.floor(s.length / 2)].toFixed(1)} ms CPU/step (rounds: ${v.map((t) => t.toFixed(0)).join(" ")})`);
}
