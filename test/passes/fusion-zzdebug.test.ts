import { it } from "vitest";
import { readFileSync } from "node:fs";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { planMemory } from "../../runtime/memory-plan.js";
it("dbg", async () => {
  const r = compileToIR(readFileSync("dsl-examples/mlp_train.kiln", "utf8"), "t.kiln", [], []);
  const b = await buildWasm(r.ir!, "t");
  const fn = b.manifest.functions.find((f) => f.name === "Sgd.step")!;
  const bytes = fn.values.map((v) => (v.source.kind === "fused" ? 0 : v.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : 64), 1) * 4));
  const plan = planMemory(fn, bytes, (i) => fn.values[i].shape.every((d) => typeof d === "number"));
  console.log(plan.peak, plan.naive, [...plan.intoParam.values()]);
  for (const s of fn.steps) console.log(s.kernel, s.buffers.map((v) => `${v}:${bytes[v]}@${plan.offsets[v]}`).join(","), s.outputs ?? 1, s.ops.join(" "));
});
