// Prepacked matmul weights (runtime/wasm/prepack.ts): inference matmuls on a param read B packed once, and the
// packed copy must follow the param (prepack-cases.ts); the relaxed build: prepack.relaxed.test.ts.
import { describe, expect, it } from "vitest";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { KilnError } from "../../runtime/errors.js";
import { built, expectPackedFollowParams } from "./prepack-cases.js";

describe("prepacked matmul weights", () => {
  it("the compiler marks inference matmuls on params, not the training step's", () => {
    const fns = Object.fromEntries(built.manifest.functions.map((f) => [f.name, f]));
    for (const name of ["P.nn", "P.nt", "P.wide", "P.fwd", "P.loss"]) expect(fns[name]!.steps.some((s) => s.prepackB), name).toBe(true);
    expect(fns["P.nt"]!.steps.find((s) => s.prepackB)!.prepackB!.kernel).toBe("__kiln_prepack_b_t");
    expect(fns["P.wide"]!.steps.find((s) => s.prepackB)!.prepackB).toMatchObject({ kernel: "__kiln_prepack_b_n", K: 40, N: 1030 });
    // The 3x3 conv is an implicit GEMM stored in NCHW (plan-conv-gather.ts): w is that gemm's A, so nothing to prepack.
    expect(fns["P.conv"]!.steps.some((s) => s.prepackB)).toBe(false);
    // The Winograd conv's weight transform is prepacked (layout "winograd": the weight [O, 9 C] as N x K).
    expect(fns["P.wino"]!.steps[0]!.kernel).toMatch(/^conv_wino_/);
    expect(fns["P.wino"]!.steps[0]!.prepackB).toEqual({ kernel: "__kiln_prepack_wino", K: 144, N: 30, layout: "winograd" });
    expect(fns["Step.step"]!.steps.some((s) => s.prepackB)).toBe(false);
  });

  it("plain build: results follow setParam and training steps", () => expectPackedFollowParams({}, "plain"));
  it("plain build, 2 threads: results follow setParam and training steps", () => expectPackedFollowParams({ threads: 2 }, "plain"));

  it("a prepackB that does not match its param is a bad manifest", async () => {
    const manifest = structuredClone(built.manifest);
    delete manifest.integrity;
    const step = manifest.functions.find((f) => f.name === "P.nn")!.steps.find((s) => s.prepackB)!;
    step.prepackB!.K = 299;
    const e = await loadKilnModule(manifest, built.wasm).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).code).toBe("bad_manifest");
    expect((e as KilnError).message).toMatch(/prepacks param "P.wa" as 299 x 21/);
  });
});
