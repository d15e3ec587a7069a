// Codegen helper: the loop order of a strided copy. A copy visits every (source, destination) pair once in any
// order, so when its innermost axis is a few elements (a pooling or im2col window's taps) the planner moves the
// longest axis of known size innermost: the copy kernel's per-row loop setup then runs once per long row.
import type { DimPoly } from "../../runtime/manifest.js";
import type { Dim } from "../ir/types.js";

/** Rows shorter than this many bytes are too short for the copy kernel's bulk path anyway (copy.ts). */
const SHORT_ROW_BYTES = 64;

function constOf(p: DimPoly): number | undefined {
  if (p.length === 0) return 0;
  return p.length === 1 && p[0]!.length === 1 ? p[0]![0] : undefined;
}

/** ext, in strides and out strides with one axis moved last, or unchanged when the last axis is long enough. */
export function orderCopyAxes(ext: readonly Dim[], ins: readonly DimPoly[], outs: readonly DimPoly[], elemBytes: number): { ext: Dim[]; ins: DimPoly[]; outs: DimPoly[] } {
  const same = { ext: [...ext], ins: [...ins], outs: [...outs] };
  const r = ext.length;
  const last = ext[r - 1];
  if (r < 2 || typeof last !== "number" || last * elemBytes >= SHORT_ROW_BYTES) return same;
  let best = -1;
  for (let k = 0; k < r - 1; k++) {
    const e = ext[k];
    if (typeof e !== "number" || e <= last) continue;
    const b = best < 0 ? undefined : (ext[best] as number);
    // Longest first; on a tie the smaller destination stride (writes closer together).
    if (b === undefined || e > b || (e === b && (constOf(outs[k]!) ?? Infinity) < (constOf(outs[best]!) ?? Infinity))) best = k;
  }
  if (best < 0) return same;
  const move = <T>(xs: readonly T[]): T[] => [...xs.slice(0, best), ...xs.slice(best + 1), xs[best]!];
  return { ext: move(ext), ins: move(ins), outs: move(outs) };
}
