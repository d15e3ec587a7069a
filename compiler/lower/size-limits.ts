// Lowering helper: the largest tensor a program may declare or compute. Shapes past it used to compile and then
// fail at load time (a RangeError in initParams, or a wasm memory growing past the machine) instead of a K412.

import { formatType, type TensorType } from "../ir/types.js";

/**
 * Elements one tensor may hold: 2^28, i.e. 1 GiB of f32. A wasm32 memory holds 4 GiB in all (params, inputs
 * and scratch together), and every index a kernel computes must stay an exact i32.
 */
export const MAX_ELEMENTS = 2 ** 28;

/** The K412 message for a type whose concrete dims multiply past MAX_ELEMENTS, or undefined. */
export function tooManyElements(t: TensorType): string | undefined {
  let n = 1;
  for (const d of t.shape) if (typeof d === "number") n *= d;
  if (n <= MAX_ELEMENTS) return undefined;
  return `${formatType(t)} has ${n.toLocaleString("en-US")} elements; a tensor may have at most ${MAX_ELEMENTS.toLocaleString("en-US")} (2^28)`;
}

export const TOO_MANY_ELEMENTS_HINT = "split the tensor, or use a smaller shape";

/**
 * IR nodes one function may lower to (inlined calls and unrolled loops included). Passes and codegen are linear
 * but not cheap (about a millisecond per node on a slow machine, through every pass and both SIMD builds), so
 * this keeps any legal program's compile time bounded: a 1,024-iteration loop with a 100-term body lowered to
 * 200,000 nodes and ran for minutes.
 */
export const MAX_GRAPH_NODES = 40_000;
