// The planner's copy loop order (compiler/codegen/copy-order.ts): which axis moves innermost, which never do,
// and that the reordered copy writes exactly what the original order writes (a JS model of the copy kernel).
import { describe, it, expect } from "vitest";
import { orderCopyAxes } from "../../compiler/codegen/copy-order.js";
import { polyConst, polyStrides } from "../../compiler/codegen/dim-poly.js";
import type { DimPoly } from "../../runtime/manifest.js";
import type { Dim } from "../../compiler/ir/types.js";

const num = (p: DimPoly): number => (p.length === 0 ? 0 : p[0]![0]);

/** out[Σ i_k outs_k] = in[Σ i_k ins_k] over every index, in loop order (last axis fastest); returns out. */
function model(ext: number[], ins: number[], outs: number[], input: Float32Array, outLen: number): Float32Array {
  const out = new Float32Array(outLen).fill(NaN);
  const idx = new Array<number>(ext.length).fill(0);
  const total = ext.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    let src = 0;
    let dst = 0;
    for (let k = 0; k < ext.length; k++) { src += idx[k]! * ins[k]!; dst += idx[k]! * outs[k]!; }
    out[dst] = input[src]!;
    for (let k = ext.length - 1; k >= 0; k--) { if (++idx[k]! < ext[k]!) break; idx[k] = 0; }
  }
  return out;
}

// A 2x2 stride-2 pooling window over x [2, 3, 8, 6]: out [2, 4, 3, 3, 2, 2] (N, OH, OW, C, KH, KW).
const X = [2, 3, 8, 6];
const xs = polyStrides(X).map(num);
const WIN_EXT = [2, 4, 3, 3, 2, 2];
const WIN_INS = [xs[0]!, 2 * xs[2]!, 2 * xs[3]!, xs[1]!, xs[2]!, xs[3]!];
const WIN_OUTS = polyStrides(WIN_EXT).map(num);

describe("copy loop order", () => {
  it("a window's taps: the longest known axis moves innermost (ties: smaller destination stride), the rest keep their order", () => {
    const o = orderCopyAxes(WIN_EXT, WIN_INS.map(polyConst), WIN_OUTS.map(polyConst), 4);
    // OH (4) is the longest; C and OW (3) lose to it.
    expect(o.ext).toEqual([2, 3, 3, 2, 2, 4]);
    expect(o.ins.map(num)).toEqual([WIN_INS[0], WIN_INS[2], WIN_INS[3], WIN_INS[4], WIN_INS[5], WIN_INS[1]]);
    expect(o.outs.map(num)).toEqual([WIN_OUTS[0], WIN_OUTS[2], WIN_OUTS[3], WIN_OUTS[4], WIN_OUTS[5], WIN_OUTS[1]]);
    const tie = orderCopyAxes([5, 5, 2], [[[1]], [[10]], [[100]]], [[[10]], [[2]], [[1]]], 4);
    expect(tie.ext).toEqual([5, 2, 5]);
    expect(tie.outs.map(num)).toEqual([10, 1, 2]);
  });

  it("the reordered window copy writes the same output as the original order", () => {
    const input = Float32Array.from({ length: X.reduce((a, b) => a * b, 1) }, (_, i) => i * 0.5 - 7);
    const n = WIN_EXT.reduce((a, b) => a * b, 1);
    const want = model(WIN_EXT, WIN_INS, WIN_OUTS, input, n);
    const o = orderCopyAxes(WIN_EXT, WIN_INS.map(polyConst), WIN_OUTS.map(polyConst), 4);
    const got = model(o.ext as number[], o.ins.map(num), o.outs.map(num), input, n);
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(got.some(Number.isNaN)).toBe(false);
  });

  it("leaves long rows, symbolic axes and rank-1 copies alone", () => {
    const keep = (ext: Dim[], bytes: number) => orderCopyAxes(ext, ext.map(() => polyConst(1)), ext.map(() => polyConst(1)), bytes).ext;
    expect(keep([64, 16], 4)).toEqual([64, 16]); // 64 bytes: the bulk memory.copy path
    expect(keep([64, 16], 2)).toEqual([16, 64]); // 32 bytes of f16: short
    expect(keep(["B", 2], 4)).toEqual(["B", 2]); // a symbolic extent may be 1
    expect(keep([3, "B"], 4)).toEqual([3, "B"]);
    expect(keep([3, 2], 4)).toEqual([2, 3]);
    expect(keep([2, 3], 4)).toEqual([2, 3]);
    expect(keep([3, 3], 4)).toEqual([3, 3]); // not longer: no move
    expect(keep([7], 4)).toEqual([7]);
  });
});
