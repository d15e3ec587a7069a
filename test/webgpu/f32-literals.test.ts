// WGSL f32 literals at the ends of f32's range: the shortest round-tripping decimal of FLT_MAX ("3.4028235e38")
// lies beyond it, which Tint rejects, so literals must be in range as written (an imported GPT's
// masked_fill(-inf) becomes where(mask, -3.4028234663852886e38, x)). Checked on text and on the device against
// the float64 reference. Skips the device part, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { f32Literal } from "../../compiler/codegen/wgsl/values.js";
import { buildWgsl } from "../../compiler/compile.js";
import { expectClose, irOf } from "../helpers/backend.js";
import { runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("f32 literals on WebGPU");
afterAll(() => env.h?.device.destroy());

// FLT_MAX = (2 - 2^-23) * 2^127, its f32 neighbour below, the smallest normal and subnormal, and ordinary values.
const FLT_MAX = (2 - 2 ** -23) * 2 ** 127;
const VALUES = [FLT_MAX, -FLT_MAX, (2 - 2 ** -22) * 2 ** 127, 2 ** -126, 2 ** -149, 0.1, -2.5, 1e30, 123456789];

describe("f32Literal", () => {
  it("writes each value as a decimal inside f32's range that rounds back to it", () => {
    for (const v of VALUES) {
      const s = f32Literal(v)!;
      expect(s, String(v)).toMatch(/^-?[\d.]+(e-?\d+)?f$/);
      const x = Number(s.slice(0, -1));
      expect(Math.abs(x), s).toBeLessThanOrEqual(FLT_MAX);
      expect(Math.fround(x), s).toBe(Math.fround(v));
    }
    expect(f32Literal(0.1)).toBe("0.1f");
    expect(f32Literal(-FLT_MAX)).toBe("-3.4028234663852886e38f");
  });
});

const SRC = `
fn masked(x: f32[N]) -> f32[N] {
  return where(x > 0.0, x, (-3.4028234663852886e38)) + where(x < -0.5, 3.4028234663852886e38, 0.0) * 0.0
}
fn big(x: f32[N]) -> f32[N] {
  return x * 1.0e38 - 3.4028232635611926e38 * 0.5 + 3.4028234663852886e38 * 0.0
}
`;

describe.skipIf(!env.h)("f32 literals near FLT_MAX on WebGPU", () => {
  it("compile and match the reference", async () => {
    const ir = irOf(SRC);
    expect(buildWgsl(ir, "lit").wgsl).toContain("3.4028234663852886e38f");
    const x = { dtype: "f32" as const, shape: [5], data: [-1, -0.25, 0, 0.5, 2] };
    for (const fn of ["masked", "big"]) {
      const { gpu, ref } = await runGpuVsRef(env, ir, fn, { x });
      expectClose(gpu[0]!, ref[0]!, `${fn} on WebGPU`);
    }
  }, 60_000);
});
