// Floor division in dim expressions (compiler/ir/dim-expr.ts): the printed forms, and that every form the
// compiler builds evaluates (runtime/dim-expr.ts) to floor(value / s) for every size 1..40, checked by brute force
// against Math.floor on the integers, not against the code under test.
import { describe, expect, it } from "vitest";
import { addDim, dimAtLeast, floorDivDim, mulDims, scaleDim } from "../../compiler/ir/dim-expr.js";
import { evalDimExpr } from "../../runtime/dim-expr.js";
import type { Dim } from "../../compiler/ir/types.js";

const val = (d: Dim, H: number) => (typeof d === "number" ? d : evalDimExpr(d, { H, C: 3 }));

describe("floor division of dims", () => {
  it("prints canonical forms: constants kept in [0, s) inside, nested divisions folded", () => {
    expect(floorDivDim("H", 2)).toBe("H/2");
    expect(floorDivDim("H+1", 2)).toBe("(H+1)/2");
    expect(floorDivDim("H-3", 2)).toBe("(H+1)/2-2");
    expect(floorDivDim("H+4", 2)).toBe("H/2+2");
    expect(floorDivDim("4*C", 2)).toBe("2*C");
    expect(floorDivDim("H/2", 2)).toBe("H/4");
    expect(floorDivDim("H/2+1", 2)).toBe("(H+2)/4");
    expect(floorDivDim(7, 2)).toBe(3);
    expect(mulDims("H/2", "C")).toBe("(H/2)*C");
    expect(scaleDim("(H+1)/2-1", 2)).toBe("2*((H+1)/2)-2");
  });
  it("every form evaluates to the floor of the quotient for H = 1..40", () => {
    const cases: [Dim, number][] = [["H", 2], ["H+1", 2], ["H-3", 2], ["H+4", 3], ["H-7", 4], ["H/2", 2], ["H/2+1", 2], ["(H+1)/3-1", 2], ["H*C", 2], ["H-1", 5]];
    for (const [d, s] of cases) {
      const q = floorDivDim(d, s);
      for (let H = 1; H <= 40; H++) expect(val(q, H), `floor((${d}) / ${s}) at H = ${H}: ${q}`).toBe(Math.floor(val(d, H) / s));
    }
    for (const [d, s] of cases) {
      const m = addDim(mulDims(floorDivDim(d, s), C3), 1)!;
      for (let H = 1; H <= 40; H++) expect(val(m, H)).toBe(Math.floor(val(d, H) / s) * 3 + 1);
    }
  });
  it("dimAtLeast holds only where the inequality is true for every size", () => {
    // s floor(X / s) + (s - 1) >= X: the strided window gradient's padded size against the input's.
    expect(dimAtLeast(addDim(scaleDim(floorDivDim("H+1", 2), 2), 1)!, "H+1")).toBe(true);
    expect(dimAtLeast(scaleDim(floorDivDim("H+1", 2), 2), "H+1")).toBe(false);
    expect(dimAtLeast(addDim(scaleDim(floorDivDim("H", 4), 2), 1)!, "H/2")).toBe(true);
    expect(dimAtLeast(scaleDim(floorDivDim("H", 4), 2), "H/2")).toBe(false);
    expect(dimAtLeast("H+1", "H")).toBe(true);
    expect(dimAtLeast("H", "H+1")).toBe(false);
    // Each true case above really holds, and each false one fails at some H (brute force).
    const holds = (a: Dim, b: Dim) => Array.from({ length: 40 }, (_, i) => i + 1).every((H) => val(a, H) >= val(b, H));
    expect(holds(addDim(scaleDim(floorDivDim("H", 4), 2), 1)!, "H/2")).toBe(true);
    expect(holds(scaleDim(floorDivDim("H", 4), 2), "H/2")).toBe(false);
  });
});
const C3 = 3;
