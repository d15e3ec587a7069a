// Passes: the one ordered list of named IR -> IR passes. Each can be dumped (`--dump-after NAME`); the verifier
// runs after each. Later issues insert autodiff (before simplify), precision, fusion and memory planning here.

import type { IRModule } from "../ir/graph.js";
import { verifyModule } from "../ir/verify.js";
import { simplify } from "./simplify.js";

export interface Pass {
  readonly name: string;
  readonly run: (m: IRModule) => IRModule;
}

export const PIPELINE: readonly Pass[] = [{ name: "simplify", run: simplify }];

/** Names accepted by --dump-after: "lower" (the IR straight from lowering) and every pass. */
export const DUMP_POINTS = ["lower", ...PIPELINE.map((p) => p.name)];

export function runPipeline(m: IRModule, onAfter?: (pass: string, m: IRModule) => void): IRModule {
  verifyModule(m, "lower");
  onAfter?.("lower", m);
  for (const p of PIPELINE) {
    m = p.run(m);
    verifyModule(m, p.name);
    onAfter?.(p.name, m);
  }
  return m;
}
