// Column splits of small-M matmuls in the relaxed-SIMD build (6-row microkernel, the same 8-column panels):
// the cases of threads-cols-cases.ts, equal to one relaxed thread bit for bit and to the float64 reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WASM_STATE } from "../../runtime/wasm/module.js";
import { checkAllShapes, checkChunksAlone, rand, sameByColumns, setUp, type Setup } from "./threads-cols-cases.js";

let s: Setup;
beforeAll(async () => {
  s = await setUp((b) => ({ relaxedWasm: b.wasmRelaxed }));
});
afterAll(() => {
  for (const m of s.multi.values()) m.dispose();
});

describe("column splits (relaxed SIMD)", () => {
  it("runs the relaxed build", () => {
    expect(s.one[WASM_STATE]("test").simd).toBe("relaxed");
    expect(s.multi.get(2)![WASM_STATE]("test").simd).toBe("relaxed");
  });
  it("equal one thread bit for bit and the reference: plain, transposed, epilogue; N odd, tiny, past a block", () => checkAllShapes(s));
  it("a column chunk alone writes exactly its columns, as the whole call does", () => checkChunksAlone(s));
  it("a batched matmul of few rows and a prepacked weight", () => {
    sameByColumns(s, 2, "bmm", { a: { shape: [3, 8, 512], data: rand(3 * 8 * 512, 1) }, b: { shape: [3, 512, 200], data: rand(3 * 512 * 200, 2) } });
    sameByColumns(s, 2, "Wide.forward", { x: { shape: [6, 1024], data: rand(6 * 1024, 3) } });
  });
});
