// The WebGPU runtime beyond op semantics: results stay on the GPU until read and chain between calls, params
// match the wasm backend's for a seed and round-trip through set/get, byte-sized dtypes survive the 32-bit
// storage, tensors past one dispatch's reach, and every failure (too large, broken shader, wrong module,
// disposed, lost device) is a KilnError that says what to do. Skips, saying why, without an adapter.
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { buildWgsl } from "../../compiler/compile.js";
import { KilnError } from "../../runtime/errors.js";
import { Tensor } from "../../runtime/tensor.js";
import { GpuTensor } from "../../runtime/webgpu/gpu-tensor.js";
import { loadKilnModuleWebGPU } from "../../runtime/webgpu/module.js";
import { acquireDevice } from "../../runtime/webgpu/device.js";
import { expectClose, irOf, wasmModule } from "../helpers/backend.js";
import { Rng } from "../../runtime/rng.js";
import { gpuModule, runGpuVsRef, webgpuEnv } from "./helpers.js";

const env = await webgpuEnv("WebGPU runtime");
afterAll(() => env.h?.device.destroy());

const PROGRAM = `
fn double(x: f32[N]) -> f32[N] { return x * 2 }
fn outer(x: f32[N]) -> f32[N, N] { return reshape(x, [N, 1]) * x }
fn rowsum(x: f32[R, C]) -> f32[R] { return sum(x, axis: 1) }
fn bytes(x: i32[N], b: bool[N]) -> (u8[N], i8[N], bool[N]) {
  return cast(x, u8), cast(x, i8), b == (x > 0)
}
fn many(a: f32[N], b: f32[N], c: f32[N], d: f32[N], e: f32[N], f: f32[1], g: f32[N], h: f32[N]) -> f32[N] {
  return a * b + c - d * e + f + g / h
}
model Lin {
  param w: f32[4, 3] = he()
  param b: f32[3] = uniform(-1, 1)
  fn forward(x: f32[B, 4]) -> f32[B, 3] { return x @ w + b }
  fn loss(x: f32[B, 4], labels: i32[B]) -> f32 { return cross_entropy(forward(x), labels) }
  fn rows(ids: i32[B]) -> f32[B, 3] { return take(w, ids) }
}
fn same(v: i32[N]) -> i32[N] { return v + 0 }`;

describe.skipIf(!env.h)("WebGPU runtime", { timeout: 60_000 }, () => {
  const ir = irOf(PROGRAM);

  it("returns GpuTensors at once; they chain between calls without a readback", async () => {
    const m = await gpuModule(env, ir);
    const x = new Tensor("f32", [5], [1, 2, 3, 4, 5]);
    const y = m.call("double", { x }) as GpuTensor;
    expect(y).toBeInstanceOf(GpuTensor);
    expect(y.shape).toEqual([5]);
    const z = m.call("double", { x: y }) as GpuTensor;
    expect(Array.from((await z.read()).data)).toEqual([4, 8, 12, 16, 20]);
    expect(Array.from((await y.read()).data)).toEqual([2, 4, 6, 8, 10]);
    y.dispose();
    await expect(y.read()).rejects.toThrow(/disposed/);
    expect(() => m.call("double", { x: y })).toThrow(KilnError);
    m.dispose();
  });

  it("options.out is refused: results stay on the GPU until read()", async () => {
    const m = await gpuModule(env, ir);
    const out = new Float32Array(3);
    const err = (() => { try { m.call("double", { x: [1, 2, 3] }, { out: { result: out } } as never); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe("bad_option");
    expect((err as Error).message).toMatch(/double: options.out is not supported on WebGPU.*await t.read\(\)/);
    expect(Array.from((await (m.call("double", { x: [1, 2, 3] }) as GpuTensor).read()).data)).toEqual([2, 4, 6]);
    m.dispose();
  });

  it("labels and indices passed as GpuTensors are checked as they come back: read() and sync() reject naming the input", async () => {
    const m = await gpuModule(env, ir);
    const x = new Tensor("f32", [3, 4], new Float32Array(12).fill(0.5));
    const onGpu = (v: number[]) => m.call("same", { v: new Tensor("i32", [3], v) }) as GpuTensor;
    // In range: the loss reads back as on the host path.
    const good = m.call("Lin.loss", { x, labels: onGpu([0, 2, 1]) }) as GpuTensor;
    const want = m.call("Lin.loss", { x, labels: new Tensor("i32", [3], [0, 2, 1]) }) as GpuTensor;
    expect(Array.from((await good.read()).data)).toEqual(Array.from((await want.read()).data));
    // Label 7 of 3 classes, index -1 of 4 rows: the same KilnErrors the host check throws.
    const bad = m.call("Lin.loss", { x, labels: onGpu([0, 7, 1]) }) as GpuTensor;
    await expect(bad.read()).rejects.toThrow(/Lin\.loss: input "labels" element 1 is 7, not a class label in \[0, 3\)/);
    await expect(m.sync()).rejects.toThrow(/element 1 is 7/);
    const rows = m.call("Lin.rows", { ids: onGpu([3, -1, 0]) }) as GpuTensor;
    await expect(rows.read()).rejects.toThrow(/Lin\.rows: input "ids" has index -1 at \[1\]/);
    m.dispose();
  });

  it("initialises params exactly like wasm for a seed; setParam/getParam round-trip", async () => {
    const [g, w] = [await gpuModule(env, ir, 7), await wasmModule(ir, 7)];
    for (const name of ["Lin.w", "Lin.b"]) expect(Array.from((await g.getParam(name)).data)).toEqual(Array.from(w.getParam(name).data));
    g.setParam("Lin.b", [1, 2, 3]);
    expect(Array.from((await g.getParam("Lin.b")).data)).toEqual([1, 2, 3]);
    expect(() => g.setParam("Lin.b", [1, 2])).toThrow(/expected f32\[3\]/);
    await expect(g.getParam("Lin.nope")).rejects.toThrow(/unknown param/);
    const y = await (g.call("Lin.forward", { x: new Tensor("f32", [1, 4], [0, 0, 0, 0]) }) as GpuTensor).read();
    expect(Array.from(y.data)).toEqual([1, 2, 3]);
    g.dispose();
  });

  it("stores bool, u8 and i8 one word per element and gives them back as bytes", async () => {
    const m = await gpuModule(env, ir);
    const x = new Int32Array([-129, -1, 0, 1, 200, 255, 256]);
    const b = new Uint8Array([1, 0, 0, 1, 1, 0, 1]);
    const [u8, i8, eq] = await Promise.all((m.call("bytes", { x, b }) as GpuTensor[]).map((t) => t.read()));
    expect(u8!.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(u8!.data)).toEqual([127, 255, 0, 1, 200, 255, 0]);
    expect(i8!.data).toBeInstanceOf(Int8Array);
    expect(Array.from(i8!.data)).toEqual([127, -1, 0, 1, -56, -1, 0]);
    expect(Array.from(eq!.data)).toEqual([0, 1, 1, 1, 1, 0, 1]);
    m.dispose();
  });

  it("a fused kernel with more inputs than a compatibility device binds reads them from one packed buffer", async () => {
    const b = buildWgsl(ir, "t");
    const fused = Object.entries(b.manifest.wgsl!.kernels).find(([, k]) => k.buffers.filter((x) => x === "pack").length === 8);
    expect(fused, "one kernel packs the 8 inputs of many()").toBeDefined();
    expect(b.wgsl).toContain("var<storage, read> pack: array<u32>;");
    const rng = new Rng(9);
    const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const inputs = Object.fromEntries(names.map((n) => [n, { dtype: "f32" as const, shape: n === "f" ? [1] : [37], data: Array.from({ length: n === "f" ? 1 : 37 }, () => Math.fround(rng.uniform(0.5, 2))) }]));
    const { gpu, ref } = await runGpuVsRef(env, ir, "many", inputs);
    expectClose(gpu[0]!, ref[0]!, "many() on WebGPU", 1e-5, 1e-6);
  });

  it("covers tensors larger than one dispatch reaches (grid-stride loops past 65535 workgroups)", async () => {
    const m = await gpuModule(env, ir);
    const n = 65535 * 64 + 37;
    const x = new Float32Array(n).map((_, i) => i % 1000);
    const y = await (m.call("double", { x }) as GpuTensor).read();
    expect(y.data[n - 1]).toBe(2 * ((n - 1) % 1000));
    expect(y.data[123456]).toBe(2 * (123456 % 1000));
    const rows = 70001;
    const s = await (m.call("rowsum", { x: new Tensor("f32", [rows, 2], new Float32Array(rows * 2).map((_, i) => i % 7)) }) as GpuTensor).read();
    expect(s.data[rows - 1]).toBe(((2 * rows - 2) % 7) + ((2 * rows - 1) % 7));
    m.dispose();
  }, 60_000);

  it("a tensor past the device's binding size fails with a KilnError pointing to wasm", async () => {
    const m = await gpuModule(env, ir);
    const max = env.h!.device.limits.maxStorageBufferBindingSize;
    const n = Math.ceil(Math.sqrt(max / 4)) + 1;
    expect(() => m.call("outer", { x: new Float32Array(n) })).toThrow(/needs \d+ bytes of GPU memory in one binding.*wasm backend/);
    m.dispose();
  });

  it("a shader that fails validation names the kernel, its ops and the WGSL line", async () => {
    const b = buildWgsl(ir, "t");
    const broken = b.wgsl.replace("out[i] = v0;", "out[i] = v0 +;");
    const err = await loadKilnModuleWebGPU(b.manifest, broken, { device: env.h!.device }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as Error).message).toMatch(/kernel "ew_mul_f32_\d+" \(ops: mul\) does not compile/);
    expect((err as Error).message).toContain("out[i] = v0 +;");
  });

  it("rejects GpuTensors of another module, modules without WGSL, and calls after dispose", async () => {
    const [a, c] = [await gpuModule(env, ir), await gpuModule(env, ir)];
    const y = a.call("double", { x: [1] }) as GpuTensor;
    expect(() => c.call("double", { x: y })).toThrow(/another module/);
    const noWgsl = { ...buildWgsl(ir, "t").manifest, wgsl: undefined };
    await expect(loadKilnModuleWebGPU(noWgsl, "", { device: env.h!.device })).rejects.toThrow(/--target all/);
    a.dispose();
    expect(() => a.call("double", { x: [1] })).toThrow(/disposed/);
    await expect(y.read()).rejects.toThrow(/disposed module/);
    c.dispose();
  });

  it("a lost device makes later calls and reads fail with a KilnError instead of hanging", async () => {
    const b = buildWgsl(ir, "t");
    const own = await acquireDevice();
    const m = await loadKilnModuleWebGPU(b.manifest, b.wgsl, { device: own.device });
    expect(m.adapter.length).toBeGreaterThan(0);
    const y = m.call("double", { x: [1, 2] }) as GpuTensor;
    await m.sync();
    own.device.destroy();
    await own.device.lost;
    expect(() => m.call("double", { x: [1] })).toThrow(/WebGPU device was destroyed.*wasm backend/);
    await expect(y.read()).rejects.toThrow(KilnError);
    m.dispose();
  }, 60_000);

  it("the generated .wgsl file has one readable shader per kernel", () => {
    const text = buildWgsl(irOf(readFileSync("dsl-examples/mlp.kiln", "utf8")), "mlp").wgsl;
    // Matmuls with a fused epilogue are named matmul_<n>ep_...
    expect(text).toMatch(/^\/\/ @kiln-kernel matmul_(\d+ep_)?f32_\d+$/m);
    expect(text).toMatch(/^\/\/ Kiln kernel matmul_(\d+ep_)?f32_\d+: matmul f32/m);
    expect(text).toContain("@group(0) @binding(0) var<uniform> p: Params;");
    expect(text).not.toContain("enable f16");
  });
});
