// The GPT bench case (bench/: gpt_char.kiln's GPT with plain Adam, B = 8, T = 64) in Kiln against PyTorch 1.13:
// the forward's logits and 5 training steps' losses from the bench's own weights and batch (bench/common.js).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cases, gptAdamSource, gptWeights, inputsOf } from "../../bench/common.js";
import { irOf, wasmModule } from "../helpers/backend.js";

// From `/usr/bin/python3 scripts/gpt_bench_torch.py` (PyTorch 1.13.1, torch.optim.Adam(lr=0.003, betas=(0.9,
// 0.999), eps=1e-8), the same LCG weights and token batch rebuilt in NumPy).
const TORCH_LOSSES = [4.199682, 4.084351, 3.947572, 3.959319, 3.819417];
const TORCH_LOGITS_SUM = -571.331375;
const TORCH_LOGITS_ABS = 4527.619777;

const src = gptAdamSource(readFileSync(new URL("../../dsl-examples/gpt_char.kiln", import.meta.url), "utf8"));

describe("the GPT bench case against PyTorch", () => {
  it("forward logits and 5 Adam steps' losses", async () => {
    expect(src).toContain("train Step {");
    const mod = await wasmModule(irOf(src, "gpt_char.kiln"));
    for (const [name, w] of Object.entries(gptWeights())) mod.setParam(name, w.data);
    const c = cases(false).find((x: { kind: string }) => x.kind === "gpttrain");
    const { x, y } = inputsOf(c);
    const logits = mod.call("GPT.forward", { x }).data as Float32Array;
    let sum = 0;
    let abs = 0;
    for (const v of logits) {
      sum += v;
      abs += Math.abs(v);
    }
    expect(Math.abs(sum - TORCH_LOGITS_SUM)).toBeLessThan(1e-3);
    expect(Math.abs(abs - TORCH_LOGITS_ABS)).toBeLessThan(1e-3);
    const losses = TORCH_LOSSES.map(() => (mod.call("Step.step", { x, y }).data as Float32Array)[0]!);
    losses.forEach((l, i) => expect(Math.abs(l - TORCH_LOSSES[i]!), `step ${i + 1}: ${l} vs ${TORCH_LOSSES[i]}`).toBeLessThan(2e-5));
  }, 120_000);
});
