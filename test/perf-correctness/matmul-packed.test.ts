// The packed matmul kernels (plain SIMD128 and relaxed SIMD builds) against a float64 reference: plain and
// transposed operands, batched and broadcast batches, sizes around every block edge, K = 0 and row ranges.
import { describe, expect, it } from "vitest";
import type { MatmulKernel } from "../../compiler/codegen/kernel.js";
import { check, mm, randomCase, runPlain, runRelaxed, type MmCase } from "./mm-harness.js";

const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
const SPECS: MatmulKernel[] = TRANS.map(([transA, transB]) => mm(0, { transA, transB }));
const tname = (i: number) => ["nn", "tn", "nt", "tt"][i]!;

// 1, 3, 17, 255, 257 (the list) plus edges of MR (4, 6), NR (8), KC (256), MC (96) and NC (1024).
const SIZES: [number, number, number][] = [
  [1, 1, 1], [3, 3, 3], [17, 17, 17], [1, 255, 1], [255, 1, 255], [257, 3, 17], [3, 257, 257], [17, 255, 3],
  [4, 8, 8], [6, 16, 8], [5, 7, 9], [7, 5, 13], [24, 256, 16], [25, 257, 23], [96, 33, 40], [97, 9, 15],
  [12, 513, 12], [2, 3, 1030], [64, 784, 128], [1, 784, 10],
];

async function allVariants(specs: MatmulKernel[], cases: { which: number; c: MmCase; label: string }[]): Promise<void> {
  for (const [variant, run] of [["plain", runPlain], ["relaxed", runRelaxed]] as const) {
    const res = await run(specs, cases);
    res.forEach((r, n) => {
      const { c, label } = cases[n]!;
      check(c, r.out, `${variant} ${label}`);
      expect(r.guardIntact, `${variant} ${label}: wrote past the output`).toBe(true);
    });
  }
}

describe("packed matmul", () => {
  it("plain and transposed operands at odd and block-edge sizes", async () => {
    const cases = SIZES.flatMap(([M, K, N], s) => SPECS.map((spec, which) => ({ which, c: randomCase(spec, [], M, K, N, 100 * s + which), label: tname(which) })));
    await allVariants(SPECS, cases);
  }, 60_000);

  it("K = 0 writes zeros; M = 0 and N = 0 write nothing", async () => {
    const cases = [[3, 0, 5], [17, 0, 1], [0, 4, 5], [4, 4, 0], [0, 0, 0]].flatMap(([M, K, N]) =>
      SPECS.map((spec, which) => ({ which, c: randomCase(spec, [], M!, K!, N!, 7), label: tname(which) })));
    await allVariants(SPECS, cases);
    const z = await runPlain(SPECS, [{ which: 0, c: randomCase(SPECS[0]!, [], 3, 0, 5, 1) }]);
    expect(Array.from(z[0]!.out).every((x) => Object.is(x, 0))).toBe(true);
  });

  it("batched, with broadcast batch axes on either operand, transposed or not", async () => {
    const specs = [
      mm(1), mm(1, { aBcast: [true] }), mm(1, { bBcast: [true], transB: true }), mm(2, { aBcast: [true, false], bBcast: [false, true], transA: true }),
      mm(3, { aBcast: [false, true, false], bBcast: [false, false, true], transA: true, transB: true }),
    ];
    const cases = [
      { which: 0, c: randomCase(specs[0]!, [3], 5, 7, 9, 1) }, { which: 0, c: randomCase(specs[0]!, [0], 5, 7, 9, 2) },
      { which: 0, c: randomCase(specs[0]!, [2], 17, 257, 19, 3) }, { which: 1, c: randomCase(specs[1]!, [4], 6, 5, 10, 4) },
      { which: 2, c: randomCase(specs[2]!, [4], 13, 9, 17, 5) }, { which: 3, c: randomCase(specs[3]!, [2, 3], 3, 4, 5, 6) },
      { which: 3, c: randomCase(specs[3]!, [3, 1], 9, 2, 17, 7) }, { which: 4, c: randomCase(specs[4]!, [2, 2, 3], 7, 6, 9, 8) },
      { which: 1, c: randomCase(specs[1]!, [2], 4, 0, 9, 9) },
    ].map((x) => ({ ...x, label: `batched #${x.which}` }));
    await allVariants(specs, cases);
  }, 60_000);

  it("a row range [m0, m1) writes exactly those rows of every batch", async () => {
    const spec = mm(1, { transA: true });
    const c = randomCase(spec, [2], 37, 19, 21, 11);
    for (const rows of [[0, 37], [0, 12], [12, 37], [5, 6], [36, 37], [20, 20]] as const) {
      const [r] = await runPlain([spec], [{ which: 0, c: { ...c, rows } }]);
      check({ ...c, rows }, r!.out, `rows ${rows}`);
      const u32 = new Uint32Array(r!.out.buffer);
      for (let idx = 0; idx < u32.length; idx++) {
        const i = Math.floor(idx / c.N) % c.M;
        if (i < rows[0] || i >= rows[1]) expect(u32[idx], `row ${i} outside ${rows}`).toBe(0xabababab);
      }
    }
  });
});
