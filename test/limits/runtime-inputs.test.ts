// Hostile inputs and files from issue 15 that the runtime used to accept silently: out-of-range class labels,
// a Tensor from another copy of the runtime, weights files with a tensor missing, data files whose contents
// disagree with their headers, and a manifest or wasm edited after compilation. Each must be a KilnError.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { writeModule } from "../../compiler/emit/module-writer.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { loadKilnModuleFromUrl } from "../../runtime/load.js";
import { loadWeights } from "../../runtime/quantize/io.js";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";
import { parseCsv } from "../../runtime/data/csv.js";
import { parseNpy } from "../../runtime/data/npy.js";
import { loadMnist, MNIST_FILES } from "../../runtime/data/mnist.js";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { expectKilnError, expectKilnErrorAsync, idxBytes, npyBytes } from "../data/helpers.js";

const SRC = `
model Net {
  param w: f32[4, 3] = he()
  param b: f32[3] = zeros()
  fn forward(x: f32[B, 4]) -> f32[B, 3] { return x @ w + b }
  fn loss(x: f32[B, 4], labels: i32[B]) -> f32 { return cross_entropy(forward(x), labels) }
  fn hot(labels: i32[B]) -> f32[B, 3] { return one_hot(labels, 3) }
  fn seq_loss(x: f32[B, 2, 4], labels: i32[B, 2]) -> f32 { return cross_entropy(reshape(x @ w + b, [B * 2, 3]), reshape(labels, [B * 2])) }
  fn hot_t(labels: i32[2, B]) -> f32[B, 2, 3] { return one_hot(transpose(labels), 3) }
}
train T {
  model: Net
  loss: loss
  optimizer: sgd(lr: 0.1)
}
`;

async function build() {
  const r = compileToIR(SRC, "net.kiln");
  expect(r.diagnostics).toEqual([]);
  return buildWasm(r.ir!, "net");
}

let built: Awaited<ReturnType<typeof build>>;
let mod: KilnModule & Record<string, (inputs: unknown, opts?: unknown) => Tensor>;
beforeAll(async () => {
  ensureRuntimeBuilt(); // the foreign-Tensor and generated-module tests load dist/ (tsc may run here)
  built = await build();
  mod = (await loadKilnModule(built.manifest, built.wasm)) as typeof mod;
}, 300_000);

const x = new Float32Array(2 * 4).fill(0.5);

describe("class labels are checked against the number of classes", () => {
  it.each([[10], [-1], [99], [3]])("label %i is rejected by cross_entropy, one_hot and the train step", (bad) => {
    const labels = new Int32Array([0, bad]);
    for (const call of [() => mod.Net.loss({ x, labels }), () => mod.Net.hot({ labels }), () => mod.T.step({ x, labels })]) {
      const e = expectKilnError(call, /input "labels" element 1 is/, new RegExp(`is ${bad}, not a class label in \\[0, 3\\)`));
      expect(e.code).toBe("input_value");
      expect(e.tensor).toBe("labels");
    }
  });

  it("labels reshaped or transposed on the way in are checked too (a sequence model's reshape(y, [B * T]))", () => {
    const x3 = new Float32Array(2 * 2 * 4).fill(0.5);
    expectKilnError(() => mod.Net.seq_loss({ x: x3, labels: new Int32Array([0, 1, 2, 5]) }), /input "labels" element 3 is 5, not a class label in \[0, 3\)/);
    expectKilnError(() => mod.Net.hot_t({ labels: new Int32Array([0, -1, 2, 1]) }), /input "labels" element 1 is -1/);
    expect(Number.isFinite(mod.Net.seq_loss({ x: x3, labels: new Int32Array([0, 1, 2, 0]) }).data[0])).toBe(true);
  });

  it("labels in range still give a loss", () => {
    const loss = mod.Net.loss({ x, labels: new Int32Array([0, 2]) });
    expect(Number.isFinite(loss.data[0])).toBe(true);
  });
});

describe("a Tensor from another copy of the runtime is accepted (no instanceof)", () => {
  it("dist/runtime's Tensor passes as an input of a module loaded from the sources", async () => {
    const other = (await import("../../dist/runtime/tensor.js")) as { Tensor: new (d: string, s: number[], v: Float32Array) => unknown };
    const foreign = new other.Tensor("f32", [2, 4], x);
    // A different class (another copy of the runtime): only the brand makes it a Tensor here.
    expect(Object.getPrototypeOf(foreign)).not.toBe(Tensor.prototype);
    expect(foreign).toBeInstanceOf(Tensor);
    const y = mod.Net.forward({ x: foreign });
    expect(Array.from(y.data)).toEqual(Array.from(mod.Net.forward({ x: new Tensor("f32", [2, 4], x) }).data));
  });

  it("a look-alike object without the brand is still rejected", () => {
    expectKilnError(() => mod.Net.forward({ x: { dtype: "f32", shape: [2, 4], data: x } }), /input "x" expected f32\[B, 4\]/);
  });
});

describe("strict weight loading", () => {
  const file = (tensors: Record<string, Tensor>) => serializeSafetensors(tensors, { format: "kiln-weights" });
  const w = new Tensor("f32", [4, 3], new Float32Array(12).fill(1));
  const b = new Tensor("f32", [3], new Float32Array(3).fill(2));

  it("a missing tensor is an error naming it, and nothing is written", async () => {
    const before = Array.from(mod.getParam("Net.w").data);
    const e = await expectKilnErrorAsync(loadWeights(mod, file({ "Net.w": new Tensor("f32", [4, 3], new Float32Array(12).fill(7)) })), /no tensor "Net.b"/, /partial: true/);
    expect(e.tensor).toBe("Net.b");
    expect(Array.from(mod.getParam("Net.w").data)).toEqual(before);
  });

  it("a mismatched tensor is an error naming it before anything is written", async () => {
    const before = Array.from(mod.getParam("Net.w").data);
    const e = await expectKilnErrorAsync(loadWeights(mod, file({ "Net.w": w, "Net.b": new Tensor("f32", [4]) })), /"Net.b" must be f32\[3\], got f32\[4\]/);
    expect(e.tensor).toBe("Net.b");
    expect(Array.from(mod.getParam("Net.w").data)).toEqual(before);
  });

  it("an extra tensor is an error naming it", async () => {
    await expectKilnErrorAsync(loadWeights(mod, file({ "Net.w": w, "Net.b": b, "Net.c": b })), /"Net.c" of the file is not a param/);
  });

  it("{ partial: true } loads only the tensors present", async () => {
    const m2 = await loadKilnModule(built.manifest, built.wasm);
    await loadWeights(m2, file({ "Net.w": w }), { partial: true });
    expect(Array.from(m2.getParam("Net.w").data)).toEqual(Array(12).fill(1));
    await loadWeights(m2, file({ "Net.w": w, "Net.b": b }));
    expect(Array.from(m2.getParam("Net.b").data)).toEqual([2, 2, 2]);
  });
});

describe("data readers check what the header promises", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-mnist-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const mnist = async (dims: number[], labels: number[]) => {
    const n = dims.reduce((a, c) => a * c, 1);
    await writeFile(join(dir, MNIST_FILES.images), gzipSync(idxBytes(0x08, dims, Array(n).fill(3))));
    await writeFile(join(dir, MNIST_FILES.labels), gzipSync(idxBytes(0x08, [labels.length], labels)));
    return loadMnist({ dir, split: "all" });
  };

  it("MNIST images of 14 x 56 (the same byte count as 28 x 28)", async () => {
    await expectKilnErrorAsync(mnist([2, 14, 56], [1, 2]), /shape \[2, 14, 56\], expected \[N, 28, 28\]/);
  });

  it("MNIST with fewer labels than images, or a label past 9", async () => {
    await expectKilnErrorAsync(mnist([2, 28, 28], [1]), /1 labels for 2 images/);
    await expectKilnErrorAsync(mnist([2, 28, 28], [1, 12]), /label 1 is 12, not a digit/);
    expect((await mnist([2, 28, 28], [1, 9])).length).toBe(2);
  });

  it("CSV: 1e400 (and 1e39 for f32) is out of range, not Infinity", () => {
    expectKilnError(() => parseCsv("a,b\n1,1e400\n"), /row 1 .*column 2 "b": 1e400 is out of range for f32/);
    expectKilnError(() => parseCsv("1,1e39\n", { header: false }), /1e39 is out of range for f32/);
    expect(parseCsv("a,b\n1,inf\n").data.data[1]).toBe(Infinity);
  });

  it("NPY: a header naming descr twice", () => {
    const header = "{'descr': '<f4', 'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
    expectKilnError(() => parseNpy(npyBytes(header, new Uint8Array(8))), /the key 'descr' appears 2 times/);
  });
});

describe("manifest and wasm belong together (integrity digests)", () => {
  let dir: string;
  const path = () => join(dir, "net.manifest.json");
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kiln-integrity-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const write = () => writeModule({ outDir: dir, baseName: "net", manifest: built.manifest, wasm: built.wasm, wasmRelaxed: built.wasmRelaxed });
  const edit = async (change: (m: any) => void) => {
    const m = JSON.parse(await readFile(path(), "utf8"));
    change(m);
    await writeFile(path(), JSON.stringify(m, null, 2));
  };

  it("an untouched module loads", async () => {
    await write();
    const m = await loadKilnModuleFromUrl(path());
    expect(m.manifest.integrity?.manifest).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    ["a step removed", (m: any) => m.functions[0].steps.pop()],
    ["steps reordered", (m: any) => { const f = m.functions.find((g: any) => g.steps.length > 1); f.steps.push(f.steps.shift()); }],
    ["a matmul size changed", (m: any) => { const s = m.functions[0].steps.find((x: any) => x.ints?.length); s.ints[s.ints.length - 1] += 1; }],
    ["an init with a negative std", (m: any) => { m.params[0].init = { kind: "normal", mean: 0, std: -1 }; }],
  ])("%s is a KilnError", async (_name, change) => {
    await write();
    await edit(change);
    const e = await expectKilnErrorAsync(loadKilnModuleFromUrl(path()), /was changed after it was compiled/);
    expect(e.code).toBe("bad_manifest");
  });

  it("a wasm from another build is a KilnError naming the file", async () => {
    await write();
    const other = await buildWasm(compileToIR(SRC.replace("f32[4, 3] = he()", "f32[4, 3] = xavier()").replace("x @ w + b", "x @ w - b"), "net.kiln").ir!, "net");
    await writeFile(join(dir, "net.wasm"), other.wasm);
    const e = await expectKilnErrorAsync(loadKilnModuleFromUrl(path()), /net.wasm does not belong to the manifest/);
    expect(e.code).toBe("load_failed");
  });

  it("a damaged wasm byte is caught before instantiation", async () => {
    await write();
    const bytes = new Uint8Array(await readFile(join(dir, "net.wasm")));
    bytes[bytes.length - 1] ^= 1;
    await writeFile(join(dir, "net.wasm"), bytes);
    await expectKilnErrorAsync(loadKilnModuleFromUrl(path()), /does not belong to the manifest/);
  });
});
