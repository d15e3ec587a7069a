import { describe, expect, test } from "vitest";
import { Rng } from "../../runtime/rng.js";

describe("Rng", () => {
  test("seed 1 gives pinned first values (xoshiro128** seeded by splitmix32)", () => {
    const r = new Rng(1);
    expect([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([393288148, 2174103013, 3814759091, 2092745082]);
    const u = new Rng(1);
    expect(u.uniform()).toBe(393288148 / 4294967296);
    expect(u.uniform()).toBe(2174103013 / 4294967296);
    const n = new Rng(1);
    expect(n.normal()).toBeCloseTo(-0.43793005304649774, 12);
    expect(n.normal()).toBeCloseTo(-0.017062476182535664, 12);
    expect(n.normal()).toBeCloseTo(-2.086604810008575, 12);
  });

  test("same seed, same stream; different seeds differ", () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.nextU32())).not.toEqual(sa);
    expect(new Rng().nextU32()).toBe(new Rng(0).nextU32());
    // Large and negative seeds work and are distinct from small ones.
    expect(new Rng(2 ** 40 + 1).nextU32()).not.toBe(new Rng(1).nextU32());
    const neg = new Rng(-1);
    expect(new Set(Array.from({ length: 10 }, () => neg.nextU32())).size).toBe(10);
  });

  test("rejects non-integer seeds", () => {
    expect(() => new Rng(1.5)).toThrow(/seed/);
    expect(() => new Rng(Number.NaN)).toThrow(/seed/);
  });

  test("uniform range and normal moments", () => {
    const r = new Rng(7);
    const n = 100_000;
    let min = Infinity, max = -Infinity, sum = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform(-2, 3);
      min = Math.min(min, u); max = Math.max(max, u); sum += u;
    }
    expect(min).toBeGreaterThanOrEqual(-2);
    expect(max).toBeLessThan(3);
    expect(sum / n).toBeCloseTo(0.5, 1);
    let s1 = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const z = r.normal(1, 2); s1 += z; s2 += z * z; }
    const mean = s1 / n, std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean - 1)).toBeLessThan(0.03);
    expect(Math.abs(std - 2)).toBeLessThan(0.03);
  });
});
