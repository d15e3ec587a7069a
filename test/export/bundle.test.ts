// kiln export --format bundle: one ES module that loads alone (copied into an empty folder, run by a separate
// Node process) with the embedded weights, gives the compiled module's outputs, is deterministic, reports its
// size, runs on WebGPU (Dawn in Node, when an adapter exists) and carries int8 weights from kiln quantize.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { closeness, kiln, lcg, moduleWithWeights, tmp } from "./helpers.js";
import { webgpuEnv } from "../webgpu/helpers.js";

/** Runs `code` (an ES module body with `m` = the loaded bundle) in a fresh Node process inside `dir`. */
function inNode(dir: string, file: string, code: string): string {
  const script = `const m = await (await import("./${file}")).load();\n${code}`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: dir, encoding: "utf8" });
}

describe("kiln export --format bundle", () => {
  it("mnist_cnn: one file, alone in its folder, gives the compiled module's outputs with the embedded weights", async () => {
    const dir = tmp();
    const { mod, weights } = await moduleWithWeights("dsl-examples/mnist_cnn.kiln", 7, dir);
    const out = join(dir, "alone", "mnist_cnn.bundle.js");
    const r = await kiln("export", "dsl-examples/mnist_cnn.kiln", "--format", "bundle", "--weights", weights, "--out", out);
    expect(r.code, r.err).toBe(0);
    const size = readFileSync(out).length;
    expect(r.out).toContain(`(${(size / 1024).toFixed(1)} KiB, ${size} bytes;`);
    expect(readdirSync(join(dir, "alone"))).toEqual(["mnist_cnn.bundle.js"]);
    const x = lcg(2 * 784, 11);
    writeFileSync(join(dir, "alone", "x.json"), JSON.stringify(Array.from(x)));
    const code = `const x = Float32Array.from(JSON.parse(await (await import("node:fs/promises")).readFile("x.json", "utf8")));
console.log(JSON.stringify(Array.from(m.call("MnistCNN.forward", { x }, { batch: 2 }).data)));`;
    const got = JSON.parse(inNode(join(dir, "alone"), "mnist_cnn.bundle.js", code));
    const want = (mod.call("MnistCNN.forward", { x }, { batch: 2 }) as { data: Float32Array }).data;
    expect(closeness(got, want, 1e-6, 1e-7)).toBeLessThanOrEqual(1);
  });

  it("is deterministic: the same inputs give the same bytes", async () => {
    const dir = tmp();
    const { weights } = await moduleWithWeights("dsl-examples/mlp.kiln", 1, dir);
    for (const n of ["a", "b"]) expect((await kiln("export", "dsl-examples/mlp.kiln", "--format", "bundle", "--weights", weights, "--out", join(dir, `${n}.js`))).code).toBe(0);
    expect(readFileSync(join(dir, "a.js")).equals(readFileSync(join(dir, "b.js")))).toBe(true);
  });

  it("without --weights the params come from the init rules and options.seed, as with load()", async () => {
    const dir = tmp();
    const { mod } = await moduleWithWeights("dsl-examples/mlp.kiln", 5, dir);
    expect((await kiln("export", "dsl-examples/mlp.kiln", "--format", "bundle", "--out", join(dir, "mlp.bundle.js"))).code).toBe(0);
    const got = JSON.parse(inNode(dir, "mlp.bundle.js", "const s = await import('./mlp.bundle.js'); const n = await s.load({ seed: 5 });\nconsole.log(JSON.stringify(Array.from(n.getParam('MLP.w2').data.slice(0, 8))));"));
    expect(got).toEqual(Array.from((mod.getParam("MLP.w2").data as Float32Array).slice(0, 8)));
  });

  it("carries int8 weights from kiln quantize --out and runs the int8 kernels", async () => {
    const dir = tmp();
    const { weights } = await moduleWithWeights("dsl-examples/mnist_mlp.kiln", 2, dir);
    const q = join(dir, "q.safetensors");
    expect((await kiln("quantize", "dsl-examples/mnist_mlp.kiln", "--weights", weights, "--out", q)).code).toBe(0);
    const f32 = join(dir, "f32.bundle.js"), int8 = join(dir, "int8.bundle.js");
    expect((await kiln("export", "dsl-examples/mnist_mlp.kiln", "--format", "bundle", "--weights", weights, "--out", f32)).code).toBe(0);
    expect((await kiln("export", "dsl-examples/mnist_mlp.kiln", "--format", "bundle", "--weights", q, "--out", int8)).code).toBe(0);
    // The quantized weights (mnist_mlp's w1 784x256 and w2 256x10) take 1 byte per element instead of 4: the int8
    // bundle saves at least those 3 bytes per element (more once encoded), whatever the size of the kernels' code.
    expect(readFileSync(f32).length - readFileSync(int8).length).toBeGreaterThan(3 * (784 * 256 + 256 * 10));
    // Each bundle has its own Tensor class, so the shared input is a plain typed array.
    const code = `const x = Float32Array.from({ length: 3 * 784 }, (_, i) => ((i * 7919) % 1000) / 1000);
const f = await (await import("./f32.bundle.js")).load();
const a = m.call("MnistMLP.forward", { x }, { batch: 3 }).data, b = f.call("MnistMLP.forward", { x }, { batch: 3 }).data;
console.log(JSON.stringify({ int8: Array.from(a), f32: Array.from(b), quantized: m.manifest.functions.some((fn) => fn.int8?.length) }));`;
    const r = JSON.parse(inNode(dir, "int8.bundle.js", code));
    // int8 logits are close to f32 ones but not equal: the int8 path really ran.
    const diff = r.int8.map((v: number, i: number) => Math.abs(v - r.f32[i]));
    expect(Math.max(...diff)).toBeGreaterThan(0);
    expect(Math.max(...diff)).toBeLessThan(0.1 * Math.max(...r.f32.map(Math.abs)));
  });

  it("runs on WebGPU from the same file (Dawn in Node)", async () => {
    const env = await webgpuEnv("bundle on WebGPU");
    if (!env.h) return;
    const dir = tmp();
    const { mod, weights } = await moduleWithWeights("dsl-examples/mlp.kiln", 4, dir);
    const out = join(dir, "mlp.bundle.js");
    expect((await kiln("export", "dsl-examples/mlp.kiln", "--format", "bundle", "--weights", weights, "--out", out)).code).toBe(0);
    // In a separate Node process (vite's transform chokes on the embedded megabytes); the host supplies the
    // device (Dawn from the repo's node_modules), as a page supplies navigator.gpu.
    const x = lcg(3 * 784, 12);
    const script = `const { acquireDevice } = await import(${JSON.stringify(pathToFileURL(resolve("dist/runtime/webgpu/device.js")).href)});
const h = await acquireDevice();
const b = await import(${JSON.stringify(pathToFileURL(out).href)});
const gpu = await b.load({ backend: "webgpu", device: h.device });
const y = await gpu.call("MLP.predict", { x: Float32Array.from(${JSON.stringify(Array.from(x))}) }, { batch: 3 }).read();
console.log(JSON.stringify(Array.from(y.data)));
process.exit(0);`;
    const got = { data: JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }).trim().split("\n").pop()!) };
    const want = mod.call("MLP.predict", { x }, { batch: 3 }) as { data: Float32Array };
    expect(closeness(got.data, want.data, 1e-4, 1e-6)).toBeLessThanOrEqual(1);
  });
});
