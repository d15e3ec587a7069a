// IR stage, call-time size limits: a known axis sliced to a symbolic end (`pos[:, 0:T]` of a [1, 16, D] position
// table) is only defined while T <= 16, which a call's sizes alone decide. Each such slice gives one limit; the
// planner lists them in the manifest and the runtime (runtime/dim-expr.ts checkDimLimits) and the reference
// interpreter check them when they bind a call's dims, so a sequence longer than the table is a KilnError.

import type { DimLimit } from "../../runtime/manifest.js";
import type { Graph } from "./graph.js";
import { formatType } from "./types.js";

export function dimLimits(g: Graph): DimLimit[] {
  const out = new Map<string, DimLimit>();
  for (const n of g.nodes) {
    if (n.op !== "slice") continue;
    const a = n.attrs as { axis: number; start: number; end: number | string };
    const x = g.nodes[n.inputs[0]!]!;
    const size = x.type.shape[a.axis];
    if (typeof size !== "number" || typeof a.end !== "string") continue;
    const src = x.op === "param" ? `param ${(x.attrs as { name: string }).name} ` : "";
    const at = n.span ? ` (${n.span.file}:${n.span.line}:${n.span.col})` : "";
    const what = `the slice [${a.start}:${a.end}] of axis ${a.axis} of ${src}${formatType(x.type)}${at}`;
    // The tightest limit of each dim is the one a call breaks first.
    const prev = out.get(a.end);
    if (!prev || size < prev.max) out.set(a.end, { dim: a.end, max: size, what });
  }
  return [...out.values()];
}
