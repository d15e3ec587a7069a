// Function inputs stored in 16 bits (precision pass: an f32 input only low matmuls read): the mixed MLP step
// reading x as f16 equals, bit for bit, the same program where x also feeds a non-matmul op (so x stays f32 and
// each matmul rounds it while packing); the manifest marks x; the bulk converters equal the scalar ones.
import { describe, expect, it } from "vitest";
import { readFileSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule, WASM_STATE, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { Rng } from "../../runtime/rng.js";
import { f32ArrayToBf16Bits, f32ArrayToF16Bits, f32ToBf16Bits, f32ToF16Bits } from "../../runtime/dtype.js";
import { printGraph } from "../../compiler/ir/print.js";
import { compile } from "./helpers.js";

const SRC = readFileSync("dsl-examples/mlp_train.kiln", "utf8");
// `+ 0.0 * sum(x)` adds exactly 0 to the loss and nothing to any weight gradient, but is a non-matmul use of x.
const KEPT = SRC.replace("return cross_entropy(forward(x), labels)", "return cross_entropy(forward(x), labels) + 0.0 * sum(x)");
const B = 5;

function batch(seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  // Values in [-3, 3) with a few exact f16 ties and values f16 cannot hold, so the rounding really matters.
  const x = Float32Array.from({ length: B * 784 }, () => rng.uniform(-3, 3));
  x[0] = 1 + 2 ** -11; // halfway between 1 and 1 + 2^-10: rounds to even (1)
  x[1] = 1e-7; // an f16 subnormal
  x[2] = 60001; // f16 spacing is 32 at this magnitude: rounds to 60000
  return { x, labels: Int32Array.from({ length: B }, () => Math.floor(rng.uniform(0, 10))) };
}

async function load(src: string, precision: "mixed-f16" | "mixed-bf16") {
  const ir = compile(src, "mlp_train.kiln", precision);
  const b = await buildWasm(ir, "mlp");
  return { ir, manifest: b.manifest, mod: await loadKilnModule(b.manifest, b.wasm, { seed: 11 }) };
}

const bits = (t: Tensor | Tensor[]): number[][] => (Array.isArray(t) ? t : [t]).map((x) => [...new Uint32Array(new Float32Array(x.data as Float32Array).buffer)]);
const paramBits = (m: KilnModule, names: string[]) => names.map((n) => {
  const d = m.getParam(n).data as Float32Array | Uint16Array | Int32Array;
  return [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];
});

describe("an f32 input only matmuls read is stored in 16 bits", { timeout: 120_000 }, () => {
  for (const H of ["f16", "bf16"] as const) {
    it(`mixed-${H}: manifest marks x, and results equal the program where x stays f32 bit for bit`, async () => {
      const low = await load(SRC, `mixed-${H}`);
      const kept = await load(KEPT, `mixed-${H}`);
      for (const fn of ["MLP.forward", "MLP.grads", "Sgd.step", "Adam.step"]) {
        const f = low.manifest.functions.find((g) => g.name === fn)!;
        expect(f.inputs[0], fn).toEqual({ name: "x", dtype: "f32", shape: ["B", 784], storage: H, convert: expect.stringMatching(new RegExp(`^to_${H}_`)) });
        expect(f.values.filter((v) => v.source.kind === "input").map((v) => v.dtype), fn).toEqual([H, "i32"].slice(0, f.inputs.length));
      }
      // The signature keeps f32 (the printer shows the storage); the variant's step keeps x in f32.
      expect(printGraph(low.ir.functions.find((g) => g.name === "Sgd.step")!)).toContain(`x: f32[B, 784] as ${H}`);
      expect(kept.manifest.functions.find((g) => g.name === "Sgd.step")!.inputs[0]!.storage).toBeUndefined();
      const names = low.manifest.params.map((p) => p.name);
      for (let step = 0; step < 3; step++) {
        const { x, labels } = batch(step);
        expect(bits(low.mod.call("MLP.grads", { x, labels }) as Tensor[]), `grads ${step}`).toEqual(bits(kept.mod.call("MLP.grads", { x, labels }) as Tensor[]));
        for (const fn of ["Sgd.step", "Adam.step"]) {
          expect(bits(low.mod.call(fn, { x, labels }) as Tensor), `${fn} loss ${step}`).toEqual(bits(kept.mod.call(fn, { x, labels }) as Tensor));
        }
        // Every param (masters, 16-bit copies, optimizer state) is bit-identical after the steps.
        expect(paramBits(low.mod, names), `params after step ${step}`).toEqual(paramBits(kept.mod, names));
      }
    });
  }

  it("the input's convert kernel and the JS conversion (a module without the kernel) store the same bits", async () => {
    for (const H of ["f16", "bf16"] as const) {
      const ir = compile(SRC, "mlp_train.kiln", `mixed-${H}`);
      const b = await buildWasm(ir, "mlp");
      const js = structuredClone(b.manifest);
      for (const f of js.functions) for (const i of f.inputs) delete i.convert;
      const [viaKernel, viaJs] = await Promise.all([loadKilnModule(b.manifest, b.wasm, { seed: 11 }), loadKilnModule(js, b.wasm, { seed: 11 })]);
      // Values around every rounding case: ties, subnormals, overflow to Inf, NaN, signed zeros.
      const cases = [65520, -65519, 2 ** -25, 3 * 2 ** -26, -0, NaN, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 3.3961776e38, -Infinity, 1.00390625, 2 ** -133];
      const x = Float32Array.from({ length: B * 784 }, (_, i) => cases[i % cases.length]! * (i % 2 ? 1 : -1));
      const fn = b.manifest.functions.find((f) => f.name === "MLP.forward")!;
      const xv = fn.values.findIndex((v) => v.source.kind === "input");
      const stored = (m: KilnModule): number[] => {
        let got: number[] = [];
        m[WASM_STATE]("test").executors.get("MLP.forward")!.run({ x }, undefined, (si, read) => {
          if (si === 0) got = [...(read(xv) as Uint16Array)];
        });
        return got;
      };
      const k = stored(viaKernel);
      expect(k.length).toBe(B * 784);
      expect(k, H).toEqual(stored(viaJs));
    }
  });

  it("a 16-bit array for the stored-low input is refused, naming the tensor and f32", async () => {
    const { mod } = await load(SRC, "mixed-f16");
    const labels = new Int32Array(B);
    expect(() => mod.call("Sgd.step", { x: new Uint16Array(B * 784), labels })).toThrow(/input "x" expected f32\[B, 784\]/);
    expect(() => mod.call("Sgd.step", { x: new Tensor("f16", [B, 784], new Uint16Array(B * 784)), labels })).toThrow(/input "x" expected f32/);
    // A plain number[] is still accepted (encoded as f32, then rounded while copied in).
    expect(Number.isFinite((mod.call("MLP.loss", { x: Array.from(batch(1).x), labels }) as Tensor).data[0])).toBe(true);
  });
});

describe("bulk f32 -> f16/bf16 conversion equals the scalar conversion", () => {
  // Special values: ties (1 + 2^-11 rounds to even 1, 1 + 3*2^-11 to 1 + 2^-9), the f16 max 65504, 65519.99
  // (rounds down) and 65520 (the tie above max: Inf), subnormals (2^-24 the smallest, 2^-25 the tie to 0,
  // 3 * 2^-26 rounds up), f32 subnormals, ±0, ±Inf, NaNs with payloads; bf16 ties at 1 + 2^-8.
  const specials = [0, -0, 1, -1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 65504, 65519.99, 65520, -65520, 1e9, 2 ** -14, 2 ** -14 - 2 ** -25,
    2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 1e-40, -1e-45, 3.4028234663852886e38, Infinity, -Infinity, NaN];
  const nanBits = [0x7fc00000, 0x7f800001, 0xffc00001, 0x7fa00000];
  function sample(): Float32Array {
    const rng = new Rng(3);
    const a = new Float32Array(specials.length + nanBits.length + 20000);
    a.set(specials);
    new Uint32Array(a.buffer).set(nanBits, specials.length);
    const u = new Uint32Array(a.buffer);
    // Random bit patterns cover every exponent, and random rounding remainders.
    for (let i = specials.length + nanBits.length; i < a.length; i++) u[i] = Math.floor(rng.uniform(0, 2 ** 32)) >>> 0;
    return a;
  }

  it("f16: every element equals f32ToF16Bits", () => {
    const a = sample();
    const out = new Uint16Array(a.length);
    f32ArrayToF16Bits(a, out);
    expect([...out]).toEqual([...a].map(f32ToF16Bits));
    // Hand-derived: 1 + 2^-11 -> 0x3c00 (tie to even), 65520 -> Inf 0x7c00, 2^-25 -> 0 (tie to even), 3*2^-26 -> 0x0001.
    expect([out[4], out[10], out[16], out[17]]).toEqual([0x3c00, 0x7c00, 0x0000, 0x0001]);
  });

  it("bf16: every element equals f32ToBf16Bits", () => {
    const a = sample();
    const out = new Uint16Array(a.length);
    f32ArrayToBf16Bits(a, out);
    expect([...out]).toEqual([...a].map(f32ToBf16Bits));
    // Hand-derived: 1 + 2^-8 is the tie between 1 (0x3f80) and 1 + 2^-7: even, 0x3f80; 1 + 3*2^-8 -> 0x3f82.
    expect([out[6], out[7]]).toEqual([0x3f80, 0x3f82]);
  });

  it("works on a Float32Array view at an offset", () => {
    const a = sample();
    const view = new Float32Array(a.buffer, 16, 100);
    const out = new Uint16Array(100);
    f32ArrayToF16Bits(view, out);
    expect([...out]).toEqual([...view].map(f32ToF16Bits));
  });
});

describe.skipIf(!existsSync("dist/compiler/cli/main.js") && !existsSync("dist/bin/kiln.js"))("kiln train with a stored-low input", { timeout: 300_000 }, () => {
  it("kiln train dsl-examples/mlp_train.kiln --steps 5 --precision mixed-f16 runs", () => {
    const out = execFileSync(process.execPath, ["bin/kiln.js", "train", "dsl-examples/mlp_train.kiln", "--steps", "5", "--precision", "mixed-f16"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toMatch(/loss/i);
    expect(out).not.toMatch(/NaN/);
    // GradScaler's defaults: five clean steps leave the initial scale.
    expect(out).toMatch(/kiln: loss scale 65536 after 5 clean steps/);
  });
});
