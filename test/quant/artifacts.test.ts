// Quantized weights as files: safetensors with I8 weights, F32 scales and quantization metadata, loaded back
// bit-identically (dynamic and static); mismatches between file and module, and bad values, are errors naming
// the tensor. Plus the `kiln quantize` command.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quantizeDynamic, quantizationOf } from "../../runtime/quantize/dynamic.js";
import { quantizeStatic } from "../../runtime/quantize/static.js";
import { loadQuantized, loadWeights, serializeQuantized } from "../../runtime/quantize/io.js";
import { parseSafetensors, serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";
import { main } from "../../compiler/cli/main.js";
import { build, compileAndLoad, mlpSource, values } from "./helpers.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";

const SRC = mlpSource("L");
const FLOAT_ONLY = `model L {\n  param w1: f32[40, 24] = he()\n  fn forward(x: f32[40, 24]) -> f32[40, 24] { return x * w1 }\n}\n`;

async function trained() {
  const m = await compileAndLoad(SRC, { seed: 4 });
  m.setParam("L.b1", values(24, 2).map((v) => v * 0.1));
  m.setParam("L.b2", values(7, 3).map((v) => v * 0.1));
  return m;
}
const x = values(9 * 40, 8);
const errOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    return e as Error & { tensor?: string };
  }
  throw new Error("expected an error");
};

describe("quantized safetensors", () => {
  it("dynamic: I8 weights + F32 scales + metadata, loaded back bit-identically into a fresh module", async () => {
    const m = await trained();
    quantizeDynamic(m);
    const bytes = serializeQuantized(m);
    const f = parseSafetensors(bytes);
    expect(Object.fromEntries(Object.entries(f.tensors).map(([k, t]) => [k, `${t.dtype}[${t.shape.join(",")}]`]))).toEqual({
      "L.w1": "i8[40,24]", "L.w1.scale": "f32[24]", "L.b1": "f32[24]", "L.w2": "i8[24,7]", "L.w2.scale": "f32[7]", "L.b2": "f32[7]",
    });
    expect(f.metadata.quantized).toBe("int8");
    expect(JSON.parse(f.metadata["kiln.quantization"]!).mode).toBe("dynamic");
    const fresh = await compileAndLoad(SRC);
    await loadQuantized(fresh, bytes);
    expect(Array.from(fresh.L.forward({ x }).data)).toEqual(Array.from(m.L.forward({ x }).data));
    expect(Array.from(quantizationOf(fresh)!.weights.get("L.w1")!.q)).toEqual(Array.from(quantizationOf(m)!.weights.get("L.w1")!.q));
  });

  it("static: the calibrated ranges travel in the metadata", async () => {
    const m = await trained();
    const batches = [0, 1, 2].map((s) => ({ x: values(16 * 40, 20 + s) }));
    const r = await quantizeStatic(m, { fn: "L.forward", data: batches, batches: 3, calibration: { percentile: 99.9 } });
    expect(r.ops.map((o) => `${o.input}->${o.output}`)).toEqual(["static->q8", "q8->f32"]);
    const bytes = serializeQuantized(m);
    expect(JSON.parse(parseSafetensors(bytes).metadata["kiln.quantization"]!).activations.steps).toHaveLength(2);
    const fresh = await compileAndLoad(SRC);
    const rep = await loadWeights(fresh, bytes);
    expect(rep!.mode).toBe("static");
    expect(Array.from(fresh.L.forward({ x }).data)).toEqual(Array.from(m.L.forward({ x }).data));
  });

  it("file/module mismatches and bad values are errors naming the tensor", async () => {
    const m = await trained();
    quantizeDynamic(m);
    const q = parseSafetensors(serializeQuantized(m));
    const floatFile = serializeSafetensors({ "L.w1": new Tensor("f32", [40, 24], values(960, 1)) });
    const fresh = await compileAndLoad(SRC);
    expect(await errOf(loadQuantized(fresh, floatFile))).toMatchObject({ tensor: "L.w1", message: expect.stringMatching(/holds float weights/) });
    // int8 weights into a module without int8 kernels for them (a float module)
    const floatMod = await compileAndLoad(FLOAT_ONLY);
    expect(await errOf(loadQuantized(floatMod, q))).toMatchObject({ tensor: "L.w1", message: expect.stringMatching(/"L.w1" is int8 but this module has no int8 kernel/) });
    // ... or through the float path
    const b = await build(SRC);
    expect(await errOf(loadKilnModule(b.manifest, b.wasm, { params: { "L.w1": q.tensors["L.w1"]! } }))).toMatchObject({ tensor: "L.w1", message: expect.stringMatching(/expected f32\[40, 24\].*dtype i8/) });
    // float weights into a quantized module
    expect(await errOf(loadWeights(m, floatFile, { partial: true }))).toMatchObject({ tensor: "L.w1", message: expect.stringMatching(/quantized to int8/) });
    // loadWeights is strict: the other weights missing from the file is an error of its own
    expect(await errOf(loadWeights(m, floatFile))).toMatchObject({ tensor: "L.b1", message: expect.stringMatching(/no tensor for param "L.b1"/) });
    const bad = (edit: (t: Record<string, Tensor>) => void) => {
      const t = Object.fromEntries(Object.entries(q.tensors).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data.slice())]));
      edit(t);
      return serializeSafetensors(t, q.metadata);
    };
    const cases: [(t: Record<string, Tensor>) => void, string, RegExp][] = [
      [(t) => ((t["L.w1.scale"]!.data as Float32Array)[3] = NaN), "L.w1", /scale of channel 3 is NaN/],
      [(t) => ((t["L.w2.scale"]!.data as Float32Array)[0] = 0), "L.w2", /channel 0 has scale 0 but a nonzero value/],
      [(t) => ((t["L.w1"]!.data as Int8Array)[0] = -128), "L.w1", /outside \[-127, 127\]/],
      [(t) => (t["L.w2"] = new Tensor("i8", [7, 24], t["L.w2"]!.data)), "L.w2", /must be i8\[24, 7\]/],
      [(t) => (t["L.b9"] = new Tensor("f32", [1], [0])), "L.b9", /not a param/],
    ];
    for (const [edit, tensor, msg] of cases) {
      const e = await errOf(loadQuantized(fresh, bad(edit)));
      expect(e.tensor, String(msg)).toBe(tensor);
      expect(e.message).toMatch(msg);
    }
    expect(quantizationOf(fresh)).toBeUndefined(); // nothing applied by a failed load
  });

  it("kiln quantize writes a smaller file and reports each op; bad uses are clear errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-quant-"));
    const m = await trained();
    writeFileSync(join(dir, "m.kiln"), SRC);
    writeFileSync(join(dir, "w.safetensors"), serializeSafetensors(m.paramsByName()));
    const out: string[] = [], err: string[] = [];
    const code = await main(["quantize", join(dir, "m.kiln"), "--weights", join(dir, "w.safetensors"), "--out", join(dir, "q.safetensors")], (s) => out.push(s), (s) => err.push(s));
    expect(err).toEqual([]);
    expect(code).toBe(0);
    // One step: bias and relu are the matmul's epilogue (passes/fusion.ts fuseMatmulEpilogues).
    expect(out.join("\n")).toMatch(/L.forward steps 0: L.w1 \[K=40, N=24\] \(\+ add, relu fused\)/);
    expect(out.join("\n")).toMatch(/wrote .*q.safetensors: \d+ bytes \(f32 weights .*: \d+ bytes, \d\.\d+x smaller\)/); // header-bound at this size; MNIST: 3.95x
    expect(parseSafetensors(new Uint8Array(readFileSync(join(dir, "q.safetensors")))).tensors["L.w1"]!.dtype).toBe("i8");
    const run = async (...args: string[]) => {
      const e: string[] = [];
      return { code: await main(["quantize", ...args], () => {}, (s) => e.push(s)), err: e.join("\n") };
    };
    expect(await run(join(dir, "m.kiln"))).toMatchObject({ code: 2, err: expect.stringMatching(/needs --weights/) });
    expect(await run(join(dir, "m.kiln"), "--weights", join(dir, "q.safetensors"))).toMatchObject({ code: 1, err: expect.stringMatching(/already quantized/) });
    expect(await run(join(dir, "m.kiln"), "--weights", join(dir, "w.safetensors"), "--mode", "static")).toMatchObject({ code: 1, err: expect.stringMatching(/calibrates on data: add --data mnist/) });
    writeFileSync(join(dir, "f.kiln"), FLOAT_ONLY);
    writeFileSync(join(dir, "fw.safetensors"), serializeSafetensors({ "L.w1": new Tensor("f32", [40, 24], values(960, 1)) }));
    expect(await run(join(dir, "f.kiln"), "--weights", join(dir, "fw.safetensors"), "--out", join(dir, "none.safetensors"))).toMatchObject({ code: 1, err: expect.stringMatching(/has no matmul on a param weight .* nothing was written/) });
    expect(existsSync(join(dir, "none.safetensors"))).toBe(false);
  }, 60_000);
});
