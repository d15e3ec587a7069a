// Codegen stage (wasm): horizontal reductions of one f32x4 for the row kernels, in two shuffles rather than three
// lane extractions and scalar ops: at 64 columns a row's set-up and reductions are a fair part of its time (and
// V8 spells a scalar f32.max / f32.min in about eight instructions, f32x4.pmax / pmin in one).
import type { E, FnBuilder, Var } from "./context.js";

const lanes32 = (...l: number[]): number[] => l.flatMap((i) => [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]);
const SWAP_PAIRS = lanes32(1, 0, 3, 2);
const SWAP_HALVES = lanes32(2, 3, 0, 1);

/**
 * f(f(v0, v1), f(v2, v3)) as a scalar: lanes (f(0,1), f(1,0), f(2,3), f(3,2)) into `t`, then lane 0 of f(t, t
 * with its halves swapped). For f32x4.add this is the order the scalar code summed the extracted lanes in, so the
 * same bits (addition is commutative); for pmax / pmin the max / min of the lanes (NaN lanes aside, which they skip
 * unless first).
 */
export function horizontal(fb: FnBuilder, f: (a: E, b: E) => E, v: Var, t: Var): E {
  const m = fb.m;
  return m.block(null, [
    t.set(f(v.get(), m.i8x16.shuffle(v.get(), v.get(), SWAP_PAIRS))),
    m.f32x4.extract_lane(f(t.get(), m.i8x16.shuffle(t.get(), t.get(), SWAP_HALVES)), 0),
  ], fb.t.f32);
}
