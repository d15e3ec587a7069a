// f16/bf16 bit patterns through the WGSL kernels, native and forced packed: rounding ties, overflow, subnormals,
// signed zero, infinities and NaN against golden bits derived by hand from IEEE 754 binary16 (1 sign, 5 exponent
// bits with bias 15, 10 fraction bits) and bfloat16 (the top half of binary32: 8 exponent bits, 7 fraction bits);
// every 16-bit pattern round-trips; copies keep NaN payloads; and the load option's error paths.
import { afterAll, describe, expect, it } from "vitest";
import { irOf } from "../helpers/backend.js";
import { Tensor } from "../../runtime/tensor.js";
import { KilnError } from "../../runtime/errors.js";
import { acquireDevice } from "../../runtime/webgpu/device.js";
import { loadKilnModuleWebGPU } from "../../runtime/webgpu/module.js";
import { buildWgsl } from "../../compiler/compile.js";
import { webgpuEnv } from "./helpers.js";
import { fromBits, loadMode, modesOf, toBits, type Half } from "./half-helpers.js";

const env = await webgpuEnv("f16/bf16 bit patterns on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);
const source = (H: Half) => `
fn down(x: f32[N]) -> ${H}[N] { return cast(x, ${H}) }
fn up(x: ${H}[N]) -> f32[N] { return cast(x, f32) }
fn tr(x: ${H}[N, R]) -> ${H}[R, N] { return transpose(x) }
`;

// f32 inputs -> binary16 bits. Ties go to the even fraction; 65520 = (2 - 2^-11) * 2^15 is the tie between
// 65504 (0x7bff, odd) and 2^16 (not finite), so it rounds to Inf; subnormals are multiples of 2^-24.
const F16_GOLDEN: [number, number][] = [
  [1, 0x3c00], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [-(1 + 2 ** -11), 0xbc00],
  [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [-65520, 0xfc00], [1e6, 0x7c00],
  [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [2 ** -25 + 2 ** -40, 0x0001],
  [3 * 2 ** -25, 0x0002], [5 * 2 ** -25, 0x0002], [-(2 ** -24), 0x8001], [1023 * 2 ** -24, 0x03ff],
  [0, 0x0000], [-0, 0x8000], [Infinity, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00],
];
// f32 inputs -> bfloat16 bits: round to nearest even on the low 16 bits of the binary32 pattern.
const BF16_GOLDEN: [number, number][] = [
  [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81], [-(1 + 2 ** -8), 0xbf80],
  [3.4028234663852886e38, 0x7f80], [3.3895313892515355e38, 0x7f7f], [2 ** -126, 0x0080], [-0, 0x8000], [0, 0x0000],
  [Infinity, 0x7f80], [-Infinity, 0xff80], [NaN, 0x7fc0], [0.1, 0x3dcd], [-2.5, 0xc020],
];

async function run(H: Half, mode: "native" | "packed", fn: string, t: Tensor): Promise<Tensor> {
  const mod = await loadMode(env, irOf(source(H)), mode, `bits-${H}`);
  const out = await (mod.call(fn, t) as { read(): Promise<Tensor> }).read();
  mod.dispose();
  return out;
}

describe.skipIf(!env.h)("f16/bf16 bit patterns on WebGPU", { timeout: 120_000 }, () => {
  for (const [H, golden] of [["f16", F16_GOLDEN], ["bf16", BF16_GOLDEN]] as const) {
    for (const mode of MODES) {
      if (H === "bf16" && mode === "native") continue;
      it(`${H} ${mode}: f32 -> ${H} rounding matches the hand-derived bits`, async () => {
        // The host conversion agrees with the hand derivation (it is what uploads use).
        expect(golden.map(([x]) => toBits(H, x))).toEqual(golden.map(([, b]) => b));
        const out = await run(H, mode, "down", new Tensor("f32", [golden.length], Float32Array.from(golden.map(([x]) => x))));
        expect([...(out.data as Uint16Array)].map((b) => b.toString(16))).toEqual(golden.map(([, b]) => b.toString(16)));
      });
      it(`${H} ${mode}: every 16-bit pattern widens exactly and rounds back to itself (NaN stays NaN)`, async () => {
        for (const n of [65536, 65535]) {
          const bits = Uint16Array.from({ length: n }, (_, i) => i);
          const wide = await run(H, mode, "up", new Tensor(H, [n], bits));
          const w = wide.data as Float32Array;
          for (let i = 0; i < n; i++) {
            const want = fromBits(H, i);
            if (!(Object.is(w[i], Math.fround(want)) || (Number.isNaN(want) && Number.isNaN(w[i]!)))) throw new Error(`up ${H} 0x${i.toString(16)}: got ${w[i]}, expected ${want}`);
          }
          const back = (await run(H, mode, "down", wide)).data as Uint16Array;
          for (let i = 0; i < n; i++) {
            // NaN comes back quiet with its sign: binary16 sign | 0x7e00; bfloat16 keeps its payload, quiet bit set.
            const nan = Number.isNaN(fromBits(H, i));
            const want = !nan ? i : H === "f16" ? (i & 0x8000) | 0x7e00 : i | 0x40;
            if (back[i] !== want) throw new Error(`${H} round trip 0x${i.toString(16)}: got 0x${back[i]!.toString(16)}, expected 0x${want.toString(16)}`);
          }
        }
      });
      it(`${H} ${mode}: copies keep every bit, NaN payloads included`, async () => {
        const pats = H === "f16" ? [0x7c01, 0xfe00, 0x7d55, 0x0001, 0x8000, 0x7c00, 0x3c00] : [0x7f81, 0xffc1, 0x0001, 0x8000, 0x7f80, 0x3f80, 0x4049];
        const n = 5, r = 3; // odd both ways: transposed halves land in both halves of words
        const x = Uint16Array.from({ length: n * r }, (_, i) => pats[i % pats.length]!);
        const out = (await run(H, mode, "tr", new Tensor(H, [n, r], x))).data as Uint16Array;
        for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) expect(out[j * n + i], `tr[${j}, ${i}]`).toBe(x[i * r + j]);
      });
    }
  }

  it("f16: \"native\" on a device without shader-f16 is a KilnError naming the feature and the fallback", async () => {
    // A device made without optional features lacks shader-f16 even where the adapter has it.
    const plain = await acquireDevice();
    try {
      const b = buildWgsl(irOf(source("f16")), "half");
      const err = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: plain.device, f16: "native" }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe("load_failed");
      expect((err as Error).message).toMatch(/shader-f16/);
      expect((err as Error).message).toMatch(/f16: "packed"/);
      // "auto" (the default) takes the packed kernels there and gives the same bits.
      const mod = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: plain.device });
      expect(mod.halfStorage).toBe("packed");
      const out = await (mod.call("down", new Tensor("f32", [3], Float32Array.from([1 + 2 ** -11, 65520, 2 ** -24]))) as { read(): Promise<Tensor> }).read();
      expect([...(out.data as Uint16Array)]).toEqual([0x3c00, 0x7c00, 0x0001]);
      mod.dispose();
      const bad = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: plain.device, f16: "half" as never }).then(() => null, (e: unknown) => e);
      expect((bad as KilnError).code).toBe("bad_option");
    } finally {
      plain.device.destroy();
    }
  });

  it("a module without f16 kernels ignores the option and reports no half storage", async () => {
    const b = buildWgsl(irOf("fn f(x: f32[N]) -> f32[N] { return x * 2.0 }\nfn g(x: bf16[N]) -> bf16[N] { return x }"), "plain");
    const mod = await loadKilnModuleWebGPU(b.manifest, b.wgsl!, { device: env.h!.device, f16: "native" });
    expect(mod.halfStorage).toBe(null);
    mod.dispose();
  });
});
