// One calling convention: load() picks a backend from "wasm", "webgpu", "auto" or a list and says which and why;
// trained weights load strictly as part of loading; results read the same way on every backend (await t.read(),
// outputs by name); a Tensor is one whichever copy of the runtime made it.
import { describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadCompiled, backendOrder, isTensor, Tensor, serializeSafetensors, KilnError, type KilnModule } from "../../runtime/index.js";
import { writeModule } from "../../compiler/emit/module-writer.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { kernelsWasm, testManifest } from "./helpers.js";

const wasmOnly = async () => {
  const wasm = await kernelsWasm();
  return { manifest: testManifest(), sources: { wasm: async () => wasm } };
};

async function errorOf(p: Promise<unknown>): Promise<KilnError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error("expected a KilnError");
}

describe("backend choice", () => {
  test("auto and lists fall down to a backend that can start, and say why", async () => {
    const { manifest, sources } = await wasmOnly();
    expect(backendOrder(manifest, "auto")).toEqual(["wasm"]);
    expect(backendOrder({ ...manifest, wgsl: { file: "x.wgsl", kernels: {} } }, "auto")).toEqual(["webgpu", "wasm"]);
    const m = (await loadCompiled(manifest, sources, { backend: ["webgpu", "wasm"] })) as KilnModule;
    expect(m.backend).toBe("wasm");
    expect(m.threads).toBe(1);
    expect(m.fallbackReason).toMatch(/^webgpu: this module was compiled without the WGSL target/);
    const plain = (await loadCompiled(manifest, sources, {})) as KilnModule;
    expect(plain.backend).toBe("wasm");
    expect(plain.fallbackReason).toBeNull();
    expect((await errorOf(loadCompiled(manifest, sources, { backend: "cuda" as never }))).message).toMatch(/backend must be "wasm", "webgpu", "auto" or a list/);
    // The last backend's own error, after the reasons the earlier ones gave.
    const only = await errorOf(loadCompiled(manifest, sources, { backend: ["webgpu"] }));
    expect(only.message).toMatch(/compiled without the WGSL target/);
  });

  test("results read the same on every backend: await t.read(), sync(), outputs by name", async () => {
    const { manifest, sources } = await wasmOnly();
    const m = (await loadCompiled(manifest, sources, { seed: 1 })) as KilnModule & { Net: { stats: (i: object) => Tensor[] & { total: Tensor; doubled: Tensor } } };
    const y = m.call("Net.forward", { x: [1, 2, 3, 4] }) as Tensor;
    expect(await y.read()).toBe(y);
    await m.sync();
    const r = m.Net.stats({ x: [1, 2, 3, 4] });
    expect(r.total).toBe(r[0]);
    expect(r.doubled).toBe(r[1]);
    expect(r.total.toArray()).toBe(10);
    expect(Object.keys(r)).toEqual(["0", "1"]); // names are not enumerable: printing and comparing are unchanged
  });
});

describe("weights at load", () => {
  const weights = (tensors: Record<string, Tensor>) => serializeSafetensors(tensors, { format: "kiln-weights" });

  test("bytes set the params; missing, extra and mismatched tensors are KilnErrors naming them", async () => {
    const { manifest, sources } = await wasmOnly();
    const m = (await loadCompiled(manifest, sources, { weights: weights({ "Net.b": new Tensor("f32", [4], [1, 2, 3, 4]) }) })) as KilnModule;
    expect(Array.from(m.getParam("Net.b").data)).toEqual([1, 2, 3, 4]);

    const missing = await errorOf(loadCompiled(manifest, sources, { weights: weights({}) }));
    expect(missing).toMatchObject({ tensor: "Net.b", message: expect.stringMatching(/no tensor "Net.b".*partial: true/) });
    const partial = (await loadCompiled(manifest, sources, { weights: weights({}), partialWeights: true, seed: 3 })) as KilnModule;
    expect(partial.getParam("Net.b").shape).toEqual([4]);

    const extra = await errorOf(loadCompiled(manifest, sources, { weights: weights({ "Net.b": new Tensor("f32", [4]), "Net.w9": new Tensor("f32", [1]) }) }));
    expect(extra).toMatchObject({ tensor: "Net.w9", message: expect.stringMatching(/"Net.w9" of the file is not a param/) });
    const shape = await errorOf(loadCompiled(manifest, sources, { weights: weights({ "Net.b": new Tensor("f32", [2, 2]) }) }));
    expect(shape).toMatchObject({ tensor: "Net.b", message: expect.stringMatching(/"Net.b" must be f32\[4\], got f32\[2, 2\]/) });
    const dtype = await errorOf(loadCompiled(manifest, sources, { weights: weights({ "Net.b": new Tensor("i32", [4]) }) }));
    expect(dtype).toMatchObject({ tensor: "Net.b", message: expect.stringMatching(/"Net.b" must be f32\[4\], got i32\[4\]/) });
  });

  test("a path loads too; an unreadable one says which", async () => {
    const { manifest, sources } = await wasmOnly();
    const dir = mkdtempSync(join(tmpdir(), "kiln-weights-"));
    const file = join(dir, "w.safetensors");
    writeFileSync(file, weights({ "Net.b": new Tensor("f32", [4], [4, 3, 2, 1]) }));
    const m = (await loadCompiled(manifest, sources, { weights: file })) as KilnModule;
    expect(Array.from(m.getParam("Net.b").data)).toEqual([4, 3, 2, 1]);
    expect((await errorOf(loadCompiled(manifest, sources, { weights: join(dir, "nope.safetensors") }))).message).toMatch(/nope\.safetensors/);
  });
});

describe("one runtime per app", () => {
  test("a Tensor is a Tensor to every copy of the runtime (brand, not prototype)", async () => {
    ensureRuntimeBuilt();
    const dir = mkdtempSync(join(tmpdir(), "kiln-brand-"));
    await writeModule({ outDir: join(dir, "a"), baseName: "net", manifest: testManifest(), wasm: await kernelsWasm(), standalone: true });
    await writeModule({ outDir: join(dir, "b"), baseName: "net", manifest: testManifest(), wasm: await kernelsWasm(), standalone: true });
    const a = pathToFileURL(join(dir, "a", "net.js")).href;
    const b = pathToFileURL(join(dir, "b", "net.js")).href;
    const script = `
      const A = await import(${JSON.stringify(a)});
      const B = await import(${JSON.stringify(b)});
      const ma = await A.load(), mb = await B.load();
      const t = new A.Tensor("f32", [1, 4], [1, 2, 3, 4]);
      const y = mb.Net.forward({ x: t });
      const z = ma.call("Other.forward", { v: mb.call("Other.forward", { v: [1, 2] }) });
      console.log(JSON.stringify({ cross: t instanceof B.Tensor, notPlain: ({}) instanceof B.Tensor, y: y.shape, z: Array.from(z.data) }));`;
    const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: dir, encoding: "utf8" }).trim());
    expect(out).toEqual({ cross: true, notPlain: false, y: [1, 2, 2], z: [4, 8] });
    expect(isTensor(new Tensor("f32", [1]))).toBe(true);
    expect(isTensor({ dtype: "f32", shape: [1], data: new Float32Array(1) })).toBe(false);
  });
});
