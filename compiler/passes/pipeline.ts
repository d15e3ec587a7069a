// Passes: the one ordered list of named IR -> IR passes. Each can be dumped (`--dump-after NAME`); the verifier
// runs after each. A pass may report diagnostics (e.g. autodiff through an integer cast); the pipeline stops at
// the first pass that does. Fusion must stay last: it annotates the graph for the planner.

import type { DiagnosticBag } from "../diagnostics.js";
import type { IRModule } from "../ir/graph.js";
import { verifyModule, verifyNoMeta } from "../ir/verify.js";
import { autodiff } from "./autodiff.js";
import { expand } from "./expand.js";
import { fusion } from "./fusion.js";
import { nchwGrad } from "./nchw-grad.js";
import { simplify } from "./simplify.js";
import { precision } from "./precision.js";

export interface Pass {
  readonly name: string;
  readonly run: (m: IRModule, diags: DiagnosticBag) => IRModule;
}

export const PIPELINE: readonly Pass[] = [
  { name: "autodiff", run: autodiff },
  { name: "expand", run: expand },
  // Before simplify, which drops the NHWC copies it leaves dead.
  { name: "nchw-grad", run: nchwGrad },
  { name: "simplify", run: simplify },
  // After autodiff and simplify so backward matmuls and the optimizer's updates get the policy too.
  { name: "precision", run: precision },
  { name: "fusion", run: fusion },
];

/** Names accepted by --dump-after: "lower" (the IR straight from lowering) and every pass. */
export const DUMP_POINTS = ["lower", ...PIPELINE.map((p) => p.name)];

/** Passes that may be switched off (for comparisons and debugging); the others are needed for correctness. */
export const OPTIONAL_PASSES = ["simplify", "fusion"];

export function runPipeline(m: IRModule, diags: DiagnosticBag, onAfter?: (pass: string, m: IRModule) => void, skip: readonly string[] = []): IRModule | undefined {
  verifyModule(m, "lower");
  onAfter?.("lower", m);
  for (const p of PIPELINE) {
    if (skip.includes(p.name) && OPTIONAL_PASSES.includes(p.name)) continue;
    m = p.run(m, diags);
    if (diags.hasErrors) return undefined;
    verifyModule(m, p.name);
    if (p.name === "autodiff") {
      const left = m.functions.flatMap(verifyNoMeta).filter((s) => s.includes("gradient"));
      if (left.length) throw new Error(`internal compiler error:\n  ${left.join("\n  ")}`);
    }
    onAfter?.(p.name, m);
  }
  return m;
}
