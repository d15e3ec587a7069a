// The WebGPU runtime around 16-bit storage: f16/bf16 params (init, getParam, setParam on odd sizes, compared with
// wasm's same seeded stream), fused kernels with more inputs than bindings (the `pack` buffer holds 16-bit members
// at word offsets), guarded steps whose 16-bit output is zero-filled, and the .wgsl file's native sections.
import { afterAll, describe, expect, it } from "vitest";
import { irOf, wasmModule } from "../helpers/backend.js";
import { Rng } from "../../runtime/rng.js";
import { Tensor } from "../../runtime/tensor.js";
import { buildWgsl } from "../../compiler/compile.js";
import { WGSL_F16_SUFFIX } from "../../runtime/manifest.js";
import { renderElementwise } from "../../compiler/codegen/wgsl/elementwise.js";
import { renderShader } from "../../compiler/codegen/wgsl/shader.js";
import type { ElementwiseKernel } from "../../compiler/codegen/kernel.js";
import { webgpuEnv } from "./helpers.js";
import { TINY, UNIT, expectWithin, fromBits as fromBitsH, fromValues, loadMode, modesOf, randomInput, runMode, toBits, valuesOf, type Half } from "./half-helpers.js";

const env = await webgpuEnv("f16/bf16 runtime on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);

const source = (H: Half) => `
model M {
  param w: ${H}[5] = uniform(low: -2, high: 2)
  fn scale(x: ${H}[5]) -> ${H}[5] { return x * w }
}
fn many(a: ${H}[N], b: ${H}[N], c: ${H}[N], d: ${H}[N], e: ${H}[N], f: ${H}[N], g: ${H}[N], h: ${H}[N]) -> ${H}[N] {
  return a * b + c * d - e * f + g * h
}
fn both(x: f32[N], y: f32[N]) -> (f32[N], ${H}[N]) {
  let z = x * y + 1.0
  return z, cast(z, ${H})
}
fn pick(x: ${H}[N]) -> ${H}[N] {
  if sum(cast(x, f32)) > 0.0 { return x * x } else { return x + x }
}
`;
const ulps = (H: Half, k: number) => (_i: number, w: number) => k * 2 * UNIT[H] * Math.abs(w) + k * TINY[H];

describe.skipIf(!env.h)("WebGPU runtime with f16/bf16 tensors", { timeout: 120_000 }, () => {
  for (const H of ["f16", "bf16"] as const) {
    const ir = irOf(source(H));
    for (const mode of MODES) {
      if (H === "bf16" && mode === "native") continue;
      it(`${H} ${mode}: params initialise as on wasm, and getParam/setParam round-trip the bits`, async () => {
        const wasm = await wasmModule(ir, 3);
        const b = buildWgsl(ir, "half");
        const { loadKilnModuleWebGPU } = await import("../../runtime/webgpu/module.js");
        const gpu = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: env.h!.device, f16: mode, seed: 3 });
        const w = await gpu.getParam("M.w");
        expect(w.dtype).toBe(H);
        expect([...(w.data as Uint16Array)]).toEqual([...(wasm.getParam("M.w").data as Uint16Array)]);
        const bits = Uint16Array.from([1, 2.5, -3, 2 ** -14, 65504].map((v) => toBits(H, v)));
        gpu.setParam("M.w", new Tensor(H, [5], bits));
        expect([...((await gpu.getParam("M.w")).data as Uint16Array)]).toEqual([...bits]);
        const x = fromValues(H, [5], [1, 1, 1, 1, 0.5]);
        const y = await (gpu.call("M.scale", x.tensor) as { read(): Promise<Tensor> }).read();
        expect([...(y.data as Uint16Array)]).toEqual([...bits].map((b, i) => (i === 4 ? toBits(H, 0.5 * 65504) : b)));
        gpu.dispose();
      });
      it(`${H} ${mode}: a fused kernel with 8 inputs reads 16-bit members of its pack`, async () => {
        const b = buildWgsl(ir, "half");
        const fn = b.manifest.functions.find((f) => f.name === "many")!;
        expect(b.manifest.wgsl!.kernels[fn.steps.at(-1)!.kernel]!.buffers).toContain("pack");
        const rng = new Rng(11);
        for (const n of [1, 3, 17, 257]) {
          const ins = Object.fromEntries("abcdefgh".split("").map((k) => [k, randomInput(rng, H, [n])]));
          const r = await runMode(env, ir, "many", ins, mode, `rt-${H}`);
          // Four products and three sums, each rounded in f32, then one rounding to H: within 1 ulp of H plus
          // 7 f32 roundings of terms up to 16 (4 * 16 * 2^-24 * 7 absolute).
          expectWithin(valuesOf(r.gpu[0]!), r.ref[0]!.data, (i, v) => ulps(H, 1)(i, v) + 7 * 64 * UNIT.f32, `many n=${n}`);
        }
      });
      it(`${H} ${mode}: an f32 result and its 16-bit copy (one multi-output kernel where fusion allows)`, async () => {
        const rng = new Rng(12);
        for (const n of [1, 3, 17, 257]) {
          const r = await runMode(env, ir, "both", { x: randomInput(rng, "f32", [n]), y: randomInput(rng, "f32", [n]) }, mode, `rt-${H}`);
          const z = r.gpu[0]!.data as Float32Array;
          // The copy is exactly the f32 result rounded (host RNE), whatever the reference's float64 z.
          expect([...(r.gpu[1]!.data as Uint16Array)], `copy n=${n}`).toEqual([...z].map((v) => toBits(H, v)));
          expectWithin([...z], r.ref[0]!.data, (_i, v) => 3 * UNIT.f32 * (Math.abs(v) + 16), `z n=${n}`);
        }
      });
      it(`${H} ${mode}: guarded steps (if/else) fill and select 16-bit outputs`, async () => {
        for (const sign of [1, -1]) {
          const x = fromValues(H, [7], [1, 2, 3, 0.5, 0.25, 3, 1].map((v) => sign * v));
          const r = await runMode(env, ir, "pick", { x }, mode, `rt-${H}`);
          expectWithin(valuesOf(r.gpu[0]!), r.ref[0]!.data, () => 0, `pick sign=${sign}`);
        }
      });
    }
  }

  it("multi-output kernels with 16-bit extra outputs compile in both variants (the master-weight copy shape)", async () => {
    // out = x * y (f32), out_1 = cast(out, f16), out_2 = cast(out, bf16): the pair loop stores f32 per element.
    const prod = { t: "op", op: "mul", attrs: {}, dtype: "f32", args: [{ t: "in", index: 0 }, { t: "in", index: 1 }] } as const;
    const k: ElementwiseKernel = {
      kind: "elementwise", rank: 1, out: "f32", expr: prod,
      inputs: [{ dtype: "f32", bcast: [false] }, { dtype: "f16", bcast: [false] }],
      extraOutputs: [{ dtype: "f16", expr: { t: "op", op: "cast", attrs: { to: "f16" }, dtype: "f16", args: [prod] } }, { dtype: "bf16", expr: { t: "op", op: "cast", attrs: { to: "bf16" }, dtype: "bf16", args: [prod] } }],
    } as ElementwiseKernel;
    for (const mode of MODES) {
      const code = renderShader(renderElementwise("multi", k, mode));
      expect(code).toContain("out_2[w] = pk2;");
      const d = env.h!.device;
      const info = await d.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === "error").map((m) => m.message), mode).toEqual([]);
    }
  });

  it("mixed-precision param copies: initialised from, and kept in step with, their f32 masters", async () => {
    const { compileToIR } = await import("../../compiler/compile.js");
    const src = "model L {\n  param w: f32[3, 5] = uniform(low: -1, high: 1)\n  fn f(x: f32[B, 3]) -> f32[B, 5] { return x @ w }\n}";
    for (const H of ["f16", "bf16"] as const) {
      const ir = compileToIR(src, "l.kiln", [], [], { precision: `mixed-${H}` }).ir!;
      const copy = ir.params.find((p) => p.role === "copy")!;
      for (const mode of MODES) {
        const mod = await loadMode(env, ir, mode, undefined, 9);
        const bitsOf = async () => [...((await mod.getParam(copy.name)).data as Uint16Array)];
        const master = [...((await mod.getParam("L.w")).data as Float32Array)];
        expect(await bitsOf(), `${H} ${mode} init`).toEqual(master.map((v) => toBits(H, v)));
        const next = Array.from({ length: 15 }, (_, i) => 1 + i * 2 ** -9);
        mod.setParam("L.w", next);
        expect(await bitsOf(), `${H} ${mode} after setParam`).toEqual(next.map((v) => toBits(H, v)));
        expect(() => mod.setParam(copy.name, next)).toThrow(/copy of "L.w"/);
        const x = fromValues("f32", [2, 3], [1, 0, 0, 0, 1, 0.5]);
        const y = await (mod.call("L.f", x.tensor) as { read(): Promise<Tensor> }).read();
        // x row 0 is (1, 0, 0): the product row is row 0 of the 16-bit copy of w, exactly (the kernel reads the copy).
        const wl = next.map((v) => toBits(H, v));
        expect([...(y.data as Float32Array)].slice(0, 5)).toEqual(wl.slice(0, 5).map((b) => fromBitsH(H, b)));
        mod.dispose();
      }
    }
  });

  it("the .wgsl file has a native section for exactly the kernels that bind f16", () => {
    const f16 = buildWgsl(irOf(source("f16")), "half");
    const flagged = Object.entries(f16.manifest.wgsl!.kernels).filter(([, k]) => k.f16).map(([n]) => n);
    expect(flagged.length).toBeGreaterThan(0);
    for (const name of Object.keys(f16.manifest.wgsl!.kernels)) {
      const native = f16.wgsl!.includes(`// @kiln-kernel ${name}${WGSL_F16_SUFFIX}\n`);
      expect(native, name).toBe(flagged.includes(name));
    }
    expect(f16.wgsl!.match(/^enable f16;$/gm)!.length).toBe(flagged.length);
    // bf16 has no native WGSL type: one (packed) section per kernel.
    const bf16 = buildWgsl(irOf(source("bf16")), "half");
    expect(Object.values(bf16.manifest.wgsl!.kernels).some((k) => k.f16)).toBe(false);
    expect(bf16.wgsl!).not.toContain("enable f16;");
  });
});
