// `kiln compile --target all|wgsl` and the generated module on WebGPU: the files written, the .d.ts typing of
// load({ backend: "webgpu" }) (checked with tsc, no GPU needed), and the module run by a separate Node process
// from a temp dir on both backends. The run skips, saying why, without an adapter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { main } from "../../compiler/cli/main.js";
import { ensureRuntimeBuilt, webgpuEnv } from "./helpers.js";

const root = resolve(".");
const env = await webgpuEnv("generated module on WebGPU");
afterAll(() => env.h?.device.destroy());

let dir = "";
const quiet = () => {};
beforeAll(async () => {
  ensureRuntimeBuilt();
  dir = mkdtempSync(join(tmpdir(), "kiln-wgsl-"));
  // The runtime imports the `webgpu` package (Dawn) under Node: let the temp dir resolve this checkout's.
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  expect(await main(["compile", "dsl-examples/mlp.kiln", "--target", "all", "--standalone", "--out", join(dir, "mlp")], quiet, quiet)).toBe(0);
}, 120_000);
afterAll(() => void (dir && rmSync(dir, { recursive: true, force: true })));

describe("kiln compile --target", { timeout: 60_000 }, () => {
  it("all writes the .wgsl next to the .wasm and names it in the manifest", () => {
    expect(readdirSync(join(dir, "mlp")).sort()).toEqual(["kiln-runtime", "mlp.d.ts", "mlp.js", "mlp.manifest.json", "mlp.relaxed.wasm", "mlp.wasm", "mlp.wgsl"]);
    const m = JSON.parse(readFileSync(join(dir, "mlp", "mlp.manifest.json"), "utf8"));
    expect(m.wasm).toBe("mlp.wasm");
    expect(m.wgsl.file).toBe("mlp.wgsl");
    expect(Object.keys(m.wgsl.kernels).sort()).toEqual([...m.kernels].sort());
    expect(readFileSync(join(dir, "mlp", "mlp.wgsl"), "utf8")).toMatch(/^\/\/ @kiln-kernel /m);
  });

  it("wgsl writes no .wasm; --emit wgsl prints the shaders; bad targets are usage errors", async () => {
    expect(await main(["compile", "dsl-examples/broadcast.kiln", "--target", "wgsl", "--out", join(dir, "bc")], quiet, quiet)).toBe(0);
    expect(readdirSync(join(dir, "bc"))).not.toContain("broadcast.wasm");
    expect(JSON.parse(readFileSync(join(dir, "bc", "broadcast.manifest.json"), "utf8")).wasm).toBe("");
    let text = "";
    expect(await main(["compile", "dsl-examples/broadcast.kiln", "--emit", "wgsl"], (s) => (text += s), quiet)).toBe(0);
    expect(text).toContain("@compute @workgroup_size(");
    let err = "";
    expect(await main(["compile", "dsl-examples/broadcast.kiln", "--target", "glsl"], quiet, (s) => (err += s))).toBe(2);
    expect(err).toContain("--target must be wasm, wgsl or all");
  });

  it("the .d.ts types load({ backend: \"webgpu\" }) (checked with tsc)", () => {
    writeFileSync(join(dir, "consumer.ts"), `
import { load, GpuTensor, Tensor, type MlpGpuModule, type MlpModule } from "./mlp/mlp.js";
const g: MlpGpuModule = await load({ backend: "webgpu", seed: 1 });
const w: MlpModule = await load({ seed: 1 });
const y: GpuTensor<"f32"> = g.MLP.forward({ x: new Float32Array(784) }, { batch: 1 });
const z: GpuTensor<"f32"> = g.MLP.predict({ x: y }, { batch: 1 });
const t: Tensor<"f32"> = await y.read();
const p: Tensor<"f32"> = await g.getParam("MLP.w1");
const l: GpuTensor<"f32"> = g.call("MLP.loss", { x: new Float32Array(784), labels: [1] });
const v: Tensor = w.MLP.forward({ x: new Float32Array(784) });
await g.sync();
console.log(z, t, p, l, v, g.adapter);
// How f16 tensors are stored on WebGPU (load option f16; the module reports what it picked).
const packed: MlpGpuModule = await load({ backend: "webgpu", f16: "packed" });
const storage: "native" | "packed" | null = packed.halfStorage;
// @ts-expect-error f16 is "auto", "native" or "packed"
void load({ backend: "webgpu", f16: "half" });
console.log(storage);
// @ts-expect-error a GpuTensor has no data: read() it
void y.data;
// @ts-expect-error getParam on WebGPU is async
const bad: Tensor = g.getParam("MLP.b1");
// @ts-expect-error unknown param
void load({ backend: "webgpu", params: { nope: [1] } });
console.log(bad);
export {};
`);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], skipLibCheck: false },
      files: ["consumer.ts"],
    }));
    let output = "";
    try {
      execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(dir, "tsconfig.json")], { cwd: dir, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      output = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(output).toBe("");
  }, 60_000);
});

describe.skipIf(!env.h)("the generated module on WebGPU", () => {
  it("runs in a separate Node process and agrees with its wasm backend", () => {
    writeFileSync(join(dir, "use.mjs"), `
      import { load } from "./mlp/mlp.js";
      const x = new Float32Array(2 * 784).map((_, i) => Math.cos(i));
      const g = await load({ backend: "webgpu", seed: 3 });
      const y = await g.MLP.forward({ x }, { batch: 2 }).read();
      const w = (await load({ seed: 3 })).MLP.forward({ x }, { batch: 2 });
      console.log(JSON.stringify({ adapter: g.adapter, shape: y.shape, gpu: Array.from(y.data), wasm: Array.from(w.data) }));
      g.dispose();`);
    const out = JSON.parse(execFileSync(process.execPath, ["use.mjs"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim().split("\n").pop()!);
    expect(out.shape).toEqual([2, 10]);
    out.gpu.forEach((v: number, i: number) => expect(Math.abs(v - out.wasm[i])).toBeLessThan(1e-5));
  }, 60_000);

  it("backend \"auto\" picks WebGPU where an adapter starts, a list is taken in order; results read the same way", () => {
    writeFileSync(join(dir, "auto.mjs"), `
      import { load } from "./mlp/mlp.js";
      const x = new Float32Array(2 * 784).map((_, i) => Math.sin(i));
      const a = await load({ backend: "auto", seed: 3 });
      const w = await load({ backend: ["wasm", "webgpu"], seed: 3 });
      const ya = await a.MLP.forward({ x }, { batch: 2 }).read();
      const yw = await w.MLP.forward({ x }, { batch: 2 }).read();
      const diff = Math.max(...Array.from(ya.data, (v, i) => Math.abs(v - yw.data[i])));
      console.log(JSON.stringify({ a: a.backend, aThreads: a.threads, aReason: a.fallbackReason, w: w.backend, wThreads: w.threads, diff }));
      a.dispose();`);
    const out = JSON.parse(execFileSync(process.execPath, ["auto.mjs"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim().split("\n").pop()!);
    expect(out).toMatchObject({ a: "webgpu", aThreads: null, aReason: null, w: "wasm", wThreads: 1 });
    expect(out.diff).toBeLessThan(1e-5);
  }, 60_000);
});
