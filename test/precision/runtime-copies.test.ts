// Runtime side of mixed precision: a copy param (role "copy") is derived from its f32 master when the master is
// initialised, set or loaded, is never set on its own, and is not saved.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { initParams } from "../../runtime/init.js";
import type { Manifest } from "../../runtime/manifest.js";
import { f16BitsToF32, f32ToF16Bits, f32ToBf16Bits } from "../../runtime/dtype.js";
import { irOf } from "../helpers/backend.js";

/** An f32 module plus hand-added copy params (so the test needs no f16 kernels). */
async function moduleWithCopies() {
  const ir = irOf(`model M {\n param w: f32[5] = normal(mean: 0, std: 100)\n param v: f32[2] = ones()\n fn f(x: f32[5]) -> f32[5] { return x * w }\n}`);
  const b = await buildWasm(ir, "t");
  const params = b.manifest.params.flatMap((p) =>
    p.name === "M.w" ? [p, { ...p, name: "M.w.f16", role: "copy" as const, copyOf: "M.w", dtype: "f16" as const, init: { kind: "copy" as const, of: "M.w" } }, { ...p, name: "M.w.bf16", role: "copy" as const, copyOf: "M.w", dtype: "bf16" as const, init: { kind: "copy" as const, of: "M.w" } }] : [p],
  );
  const manifest: Manifest = { ...b.manifest, params };
  return { manifest, wasm: b.wasm, plain: b.manifest };
}

describe("mixed-precision copy params", () => {
  it("initParams derives a copy from its master without drawing from the RNG", () => {
    const seen: number[][] = [];
    const slots = [
      { name: "a", init: { kind: "normal" as const, mean: 0, std: 1 }, numel: 3 },
      { name: "a.f16", init: { kind: "copy" as const, of: "a" }, numel: 3 },
      { name: "b", init: { kind: "normal" as const, mean: 0, std: 1 }, numel: 2 },
    ];
    initParams(slots, 5, (_i, v) => seen.push(Array.from(v)));
    const plain: number[][] = [];
    initParams([slots[0], slots[2]], 5, (_i, v) => plain.push(Array.from(v)));
    expect(seen[2]).toEqual(plain[1]); // b is the same with or without the copy in between
    expect(seen[1]).toEqual(seen[0].map(Math.fround));
  });

  it("a copy is a bad manifest when its master is missing", () => {
    expect(() => initParams([{ name: "c", init: { kind: "copy", of: "nope" }, numel: 1 }], 0, () => {})).toThrow(/copy of "nope"/);
  });

  it("the loaded module holds the master rounded to f16/bf16, and setParam on the master refreshes the copies", async () => {
    const { manifest, wasm, plain } = await moduleWithCopies();
    const mod = await loadKilnModule(manifest, wasm, { seed: 3 });
    const ref = await loadKilnModule(plain, wasm, { seed: 3 });
    const w = Array.from(mod.getParam("M.w").data as Float32Array);
    expect(w).toEqual(Array.from(ref.getParam("M.w").data as Float32Array)); // the masters do not depend on copies
    expect(Array.from(mod.getParam("M.w.f16").data as Uint16Array)).toEqual(w.map(f32ToF16Bits));
    expect(Array.from(mod.getParam("M.w.bf16").data as Uint16Array)).toEqual(w.map(f32ToBf16Bits));
    // 70000 overflows f16 (max 65504) to Inf; 1e-8 is below f16's smallest subnormal (2^-24) and flushes to 0.
    mod.setParam("M.w", [1, 0.1, 70000, 1e-8, -2.5]);
    expect(Array.from(mod.getParam("M.w.f16").data as Uint16Array, f16BitsToF32)).toEqual([1, 0.0999755859375, Infinity, 0, -2.5]);
  });

  it("loading options.params sets masters and their copies; a copy cannot be set on its own", async () => {
    const { manifest, wasm } = await moduleWithCopies();
    const mod = await loadKilnModule(manifest, wasm, { params: { "M.w": [1, 2, 3, 4, 5] } });
    expect(Array.from(mod.getParam("M.w.f16").data as Uint16Array, f16BitsToF32)).toEqual([1, 2, 3, 4, 5]);
    expect(() => mod.setParam("M.w.f16", [1, 2, 3, 4, 5])).toThrow(/copy of "M.w".*set "M.w" instead/);
  });
});
