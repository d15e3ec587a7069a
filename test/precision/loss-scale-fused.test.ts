// The loss scaler's overflow check fused into the backward kernels, on the real backends: under mixed-f16 the
// weight gradient's matmul stores f16 and clears the step's finite flag when a sum rounds to f16 Inf (finite in
// f32), so the step is skipped (masters, f16 copies and momentum bit-identical, scale halved) on wasm (1 and 2
// threads, fused and unfused) and on WebGPU (native and packed f16), as on the reference interpreter
// (test/precision/loss-scale-mixed.test.ts).
import { afterAll, describe, expect, it } from "vitest";
import { compileToIR, buildWasm } from "../../compiler/compile.js";
import { planModule } from "../../compiler/codegen/plan.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { webgpuEnv } from "../webgpu/helpers.js";
import { loadMode, modesOf } from "../webgpu/half-helpers.js";

const SRC = `
model M {
  param w: f32[3, 2] = constant(0.5)
  fn loss(x: f32[1, 3]) -> f32 { return sum((x @ w) ** 2) }
}
train T { model: M, loss: loss, optimizer: sgd(lr: 0.001, momentum: 0.9), loss_scale: dynamic(init: 1024, interval: 3) }`;

const ir = (skip: string[] = []): IRModule => compileToIR(SRC, "t.kiln", [], skip, { precision: "mixed-f16" }).ir!;
// x @ w = [150, 150] for x = [300, 1, 1]; dL/dw = 2 (x @ w) x^T times the scale 1024: 2 * 150 * 300 * 1024 ~ 9.2e7,
// beyond f16's largest finite 65504 but finite in f32 (hand-derived, as in loss-scale-mixed.test.ts).
const CLEAN = [1, 2, 3], F16_OVERFLOW = [300, 1, 1];
const STATE = ["M.w", "M.w.f16", "T.momentum.M.w"];

interface Stepper {
  step(x: number[]): Promise<void>;
  param(name: string): Promise<number[]>;
}

async function expectSkipped(s: Stepper, what: string): Promise<void> {
  await s.step(CLEAN);
  const before = await Promise.all(STATE.map((n) => s.param(n)));
  expect((await s.param("T.scaler.scale"))[0], what).toBe(1024);
  await s.step(F16_OVERFLOW);
  for (let i = 0; i < STATE.length; i++) expect(await s.param(STATE[i]!), `${what} ${STATE[i]}`).toEqual(before[i]);
  expect((await s.param("T.scaler.scale"))[0], what).toBe(512);
  expect((await s.param("T.scaler.good_steps"))[0], what).toBe(0);
  await s.step(CLEAN);
  expect(await s.param("M.w"), `${what}: a clean step after the skip is taken`).not.toEqual(before[0]);
  expect((await s.param("T.scaler.good_steps"))[0], what).toBe(1);
}

describe("fused overflow check under mixed-f16", () => {
  it("the plan checks the f16 weight gradient in its matmul (no finite kernel)", () => {
    const plan = planModule(ir());
    const spec = new Map(plan.kernels.map((k) => [k.name, k.spec]));
    const fn = plan.functions.find((f) => f.name === "T.step")!;
    const flagged = fn.steps.map((s) => spec.get(s.kernel)!).filter((k) => "flag" in k && k.flag);
    expect(flagged.map((k) => k.kind)).toEqual(["matmul"]);
    expect(flagged[0]).toMatchObject({ epilogue: { out: "f16" } });
    expect(fn.steps.filter((s) => spec.get(s.kernel)!.kind === "finite")).toEqual([]);
  });

  for (const [name, skip] of [["fused", []], ["unfused", ["fusion"]]] as const) {
    for (const threads of [1, 2]) {
      it(`wasm, ${name}, ${threads} thread(s): an f16-only overflow is skipped`, async () => {
        const b = await buildWasm(ir([...skip]), "ls");
        const mod = await loadKilnModule(b.manifest, b.wasm, { threads });
        await expectSkipped({
          step: async (x) => void mod.call("T.step", { x: new Tensor("f32", [1, 3], x) }),
          param: async (n) => Array.from(mod.getParam(n).data as ArrayLike<number>),
        }, `wasm ${name} ${threads}`);
      });
    }
  }
});

const env = await webgpuEnv("fused overflow check on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());

describe.skipIf(!env.h)("fused overflow check under mixed-f16 on WebGPU", { timeout: 180_000 }, () => {
  for (const mode of modesOf(env)) {
    it(`${mode} f16: an f16-only overflow is skipped`, async () => {
      const mod = await loadMode(env, ir(), mode, "loss-scale-fused");
      await expectSkipped({
        step: async (x) => {
          const r = mod.call("T.step", { x: new Tensor("f32", [1, 3], x) });
          await (Array.isArray(r) ? r[0]! : r).read();
        },
        param: async (n) => Array.from((await mod.getParam(n)).data as ArrayLike<number>),
      }, `webgpu ${mode}`);
      mod.dispose();
    });
  }
});
