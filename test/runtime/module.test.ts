import { beforeAll, describe, expect, test } from "vitest";
import { loadKilnModule, KilnError, KilnModule, Tensor, type KilnFunction } from "../../runtime/index.js";
import { MODULE_MEMBERS } from "../../runtime/layout.js";
import type { Manifest } from "../../runtime/manifest.js";
import { expectKilnError, kernelsWasm, testManifest } from "./helpers.js";

type Fns = {
  Net: { forward: KilnFunction; stats: KilnFunction };
  Other: { forward: KilnFunction };
  addi: KilnFunction;
  square: KilnFunction;
  scale: KilnFunction;
  pair: KilnFunction;
  broken: KilnFunction;
  stats: KilnFunction;
  forward?: KilnFunction;
};

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await kernelsWasm();
});
const load = (m: Manifest = testManifest(), opts = {}) => loadKilnModule<Fns>(m, wasm, opts);
const x8 = () => Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

describe("calls", () => {
  test("model method: input, param, const, temp and alias values", async () => {
    const m = await load();
    const y = m.Net.forward({ x: x8() }) as Tensor;
    expect(y).toBeInstanceOf(Tensor);
    expect(y.dtype).toBe("f32");
    expect(y.shape).toEqual([2, 2, 2]);
    expect(Array.from(y.data)).toEqual([3, 5, 7, 9, 11, 13, 15, 17]); // (x + 0.5) * 2
    expect(m.call("Net.forward", { x: x8() })).toEqual(y);
  });

  test("several outputs come back as Tensor[] in order", async () => {
    const m = await load();
    const [total, doubled] = m.Net.stats({ x: [1, 2, 3, 4] }) as Tensor[];
    expect(total!.shape).toEqual([]);
    expect(total!.toArray()).toBe(10);
    expect(doubled!.toArray()).toEqual([[2, 4, 6, 8]]);
    expect(m.stats).toBe(m.stats); // unique jsName: direct form exists
  });

  test("shared jsName: only qualified forms", async () => {
    const m = await load();
    expect("forward" in m).toBe(false);
    expect(Object.keys(m.Other)).toEqual(["forward"]);
    expect((m.Other.forward({ v: [1, 2] }) as Tensor).toArray()).toEqual([2, 4]);
    expectKilnError(() => m.call("forward", { x: x8() }), `"forward" is ambiguous`, "Net.forward", "Other.forward");
    expect(m.functions).toEqual(["Net.forward", "Net.stats", "Other.forward", "addi", "square", "scale", "pair", "broken"]);
  });

  test("i32 function, scalar input as a number, lone-value input", async () => {
    const m = await load();
    const c = m.addi({ a: new Int32Array([1, 2, 3]), b: [10, 20, 30] }) as Tensor;
    expect(c.data).toBeInstanceOf(Int32Array);
    expect(Array.from(c.data)).toEqual([11, 22, 33]);
    expect((m.scale({ v: [1, 2, 3], s: 2.5 }) as Tensor).toArray()).toEqual([2.5, 5, 7.5]);
    expect((m.scale({ v: [1, 2], s: [3] }) as Tensor).toArray()).toEqual([3, 6]);
    expect((m.Other.forward(new Float32Array([1, 2, 3])) as Tensor).toArray()).toEqual([2, 4, 6]);
    expect((m.square([[1, 2], [3, 4]]) as Tensor).toArray()).toEqual([[2, 4], [6, 8]]);
  });
});

describe("dim binding", () => {
  test("batch binds the first symbolic dim", async () => {
    const m = await load();
    expect((m.Net.forward({ x: x8() }, { batch: 2 }) as Tensor).shape).toEqual([2, 2, 2]);
    expectKilnError(() => m.Net.forward({ x: x8() }, { batch: 3 }), `Net.forward: input "x" expected f32[3, 4] (12 elements, B=3) but got a Float32Array of length 8`);
    expectKilnError(() => m.call("broken", { x: [1, 2, 3, 4] }, { batch: 1 }), "options.batch", "no symbolic dims");
  });

  test("sizes, kernel ints and plans are kept per dim binding: alternating lengths give each its own values", async () => {
    const m = await load();
    for (const n of [3, 2, 3, 5, 2, 5]) {
      const v = Array.from({ length: n }, (_, i) => i + 1);
      expect((m.scale({ v, s: 2 }) as Tensor).toArray(), `length ${n}`).toEqual(v.map((x) => 2 * x));
    }
  });

  test("explicit dims", async () => {
    const m = await load();
    expect((m.pair({ a: [1, 2, 3, 4, 5, 6], b: [1, 1, 1] }, { dims: { M: 2 } }) as Tensor).shape).toEqual([2, 3]);
    expectKilnError(() => m.Net.forward({ x: x8() }, { dims: { Q: 2 } }), "unknown dimension Q", "B");
    expectKilnError(() => m.Net.forward({ x: x8() }, { dims: { B: 0 } }), "dimension B must be a positive integer, got 0");
    expectKilnError(() => m.Net.forward({ x: x8() }, { dims: { B: 1.5 } }), "positive integer, got 1.5");
    expectKilnError(() => m.Net.forward({ x: x8() }, { dims: { B: -2 } }), "positive integer");
    const e = expectKilnError(() => m.Net.forward({ x: x8() }, { dims: { B: 2 }, batch: 3 }), "conflicting values for dimension B: 2 (from options.dims) and 3 (from options.batch)");
    expect(e.code).toBe("dim_conflict");
  });

  test("from Tensor shapes, with conflicts", async () => {
    const m = await load();
    const a = new Tensor("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    expect((m.pair({ a, b: [10, 20, 30] }) as Tensor).toArray()).toEqual([[11, 22, 33], [14, 25, 36]]);
    expectKilnError(
      () => m.pair({ a, b: new Tensor("f32", [4], [1, 2, 3, 4]) }),
      `pair: input "b" expected f32[3] (K=3 from input "a" shape [2, 3]) but got a Tensor of shape [4]`,
    );
    expectKilnError(
      () => m.pair({ a, b: [1, 2, 3, 4] }, { dims: { K: 4 } }),
      `pair: input "a" expected f32[2, 4] (K=4 from options.dims) but got a Tensor of shape [2, 3]`,
    );
    // Wrong concrete dim and wrong rank.
    expectKilnError(() => m.Net.forward({ x: new Tensor("f32", [2, 5]) }), `Net.forward: input "x" expected f32[B, 4] but got a Tensor of shape [2, 5]`);
    expectKilnError(() => m.Net.forward({ x: new Tensor("f32", [8]) }), `expected f32[B, 4] but got a Tensor of shape [8]`);
    expectKilnError(() => m.square({ m: new Tensor("f32", [2, 3]) }), `square: input "m" expected f32[N, N] but got a Tensor of shape [2, 3]`);
    // A Tensor with zero rows would bind B = 0.
    expectKilnError(() => m.Net.forward({ x: new Tensor("f32", [0, 4]) }), "dimension B must be a positive integer, got 0");
  });

  test("from flat lengths when exactly one symbol is unbound", async () => {
    const m = await load();
    expect((m.Net.forward({ x: new Float32Array(12) }) as Tensor).shape).toEqual([3, 2, 2]);
    expect((m.square({ m: new Float32Array(9) }) as Tensor).shape).toEqual([3, 3]);
    // b binds K, which then lets a's length bind M.
    expect((m.pair({ a: new Float32Array(6), b: [0, 0] }) as Tensor).shape).toEqual([3, 2]);
    expectKilnError(() => m.Net.forward({ x: new Float32Array(10) }), "expected f32[B, 4] but got a Float32Array of length 10, which is not a multiple of 4");
    expectKilnError(() => m.square({ m: new Float32Array(8) }), "which is not N^2 for an integer N");
    expectKilnError(() => m.Net.forward({ x: [] }), "dimension B would be 0");
    const e = expectKilnError(() => m.pair({ a: new Float32Array(6), b: new Tensor("f32", [4]) }), "which is not a multiple of 4");
    expect(e.tensor).toBe("a");
  });

  test("unresolvable symbol", async () => {
    const mf = testManifest();
    // grid(a: f32[M, K]): a flat array cannot bind two symbols
    mf.functions.push({
      name: "grid", jsName: "grid", dims: ["M", "K"],
      inputs: [{ name: "a", dtype: "f32", shape: ["M", "K"] }],
      outputs: [{ name: "out", dtype: "f32", shape: ["M", "K"] }],
      outputValues: [1],
      values: [
        { dtype: "f32", shape: ["M", "K"], source: { kind: "input", index: 0 } },
        { dtype: "f32", shape: ["M", "K"], source: { kind: "temp" } },
      ],
      steps: [{ kernel: "add_f32", buffers: [0, 0, 1], ints: [[[1, "M", "K"]]], ops: ["add"] }],
    });
    const m = await load(mf);
    const grid = (m as unknown as { grid: KilnFunction }).grid;
    const e = expectKilnError(() => grid({ a: new Float32Array(6) }), "cannot infer dimension M of grid: pass { dims: { M: n } } (or { batch: n }) or a Tensor with a shape");
    expect(e.code).toBe("dim_unbound");
    expect((grid({ a: new Float32Array(6) }, { dims: { M: 2 } }) as Tensor).shape).toEqual([2, 3]);
    expect((grid({ a: new Float32Array(6) }, { batch: 3 }) as Tensor).shape).toEqual([3, 2]);
    expect((grid({ a: new Tensor("f32", [1, 6]) }) as Tensor).shape).toEqual([1, 6]);
    expectKilnError(() => grid({ a: new Float32Array(6) }, { dims: { K: 4 } }), "which is not a multiple of 4");
  });
});

describe("input errors", () => {
  test("missing, unknown, wrong kind, wrong length, wrong values", async () => {
    const m = await load();
    let e = expectKilnError(() => m.addi({ a: [1] }), `addi: missing input "b" (i32[N]); expected inputs: "a", "b"`);
    expect(e.code).toBe("missing_input");
    expect(e.fn).toBe("addi");
    expect(e.tensor).toBe("b");
    e = expectKilnError(() => m.addi({ a: [1], b: [2], c: [3] }), `addi: unknown input "c" (expected inputs: "a", "b")`);
    expect(e.code).toBe("unknown_input");
    e = expectKilnError(() => m.Net.forward({ x: new Int32Array(8) }), `Net.forward: input "x" expected f32[B, 4] but got an Int32Array (i32)`, "Float32Array");
    expect(e.code).toBe("input_dtype");
    expect(e.expected).toBe("f32[B, 4]");
    expectKilnError(() => m.addi({ a: new Float32Array(2), b: [1, 2] }), `addi: input "a" expected i32[N] but got a Float32Array (f32)`);
    expectKilnError(() => m.Net.forward({ x: new Float64Array(8) }), "got a Float64Array (f64)");
    expectKilnError(() => m.Net.forward({ x: new Tensor("i32", [2, 4]) }), `expected f32[B, 4] but got a Tensor of dtype i32`);
    e = expectKilnError(() => m.Net.forward({ x: new Float32Array(3000) }, { batch: 4 }), `Net.forward: input "x" expected f32[4, 4] (16 elements, B=4) but got a Float32Array of length 3000`);
    expect(e.code).toBe("input_shape");
    expect(e.actual).toBe("a Float32Array of length 3000");
    expectKilnError(() => m.addi({ a: [1, 2], b: [1, 2, 3] }), `addi: input "b" expected i32[2] (2 elements, N=2) but got an array of length 3`);
    expectKilnError(() => m.addi({ a: [1, 2.5], b: [1, 2] }), `addi: input "a" (i32) element 1 is 2.5, not a valid i32 value`);
    expectKilnError(() => m.Net.forward({ x: ["a", 1, 2, 3] as unknown as number[] }), `element 0 is the string "a"`);
    expectKilnError(() => m.scale({ v: [1, 2], s: [1, 2] }), `scale: input "s" expected f32[] (1 element) but got an array of length 2`);
    expectKilnError(() => m.Net.forward({ x: 3 }, { batch: 1 }), `expected f32[1, 4] (4 elements, B=1) but got a number (3)`);
    expectKilnError(() => m.Net.forward({ x: "hello" as unknown as number }), `expected f32[B, 4] but got the string "hello"`);
    expectKilnError(() => m.square({ m: [[1, 2], [3]] }), "ragged");
    expectKilnError(() => m.addi([1, 2]), "pass the inputs as an object { a, b }");
    expectKilnError(() => m.Net.forward(null as unknown as number), "inputs must be an object");
  });

  test("unknown function lists the available ones", async () => {
    const m = await load();
    const e = expectKilnError(() => m.call("nope", {}), `unknown function "nope"; available functions: Net.forward, Net.stats, Other.forward, addi`);
    expect(e.code).toBe("unknown_function");
  });

  test("a kernel trap becomes a KilnError naming the function and ops", async () => {
    const m = await load();
    const e = expectKilnError(() => m.broken({ x: [1, 2, 3, 4] }), "internal error in broken", `kernel "broken_f32"`, "ops: gather, exp", "bug in Kiln");
    expect(e.code).toBe("kernel_trap");
    expect(e.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    // The module still works afterwards (scratch was reset).
    expect((m.addi({ a: [1], b: [2] }) as Tensor).toArray()).toEqual([3]);
  });

  test("errors are KilnError instances", async () => {
    const m = await load();
    expect(() => m.addi({})).toThrow(KilnError);
  });
});

describe("params", () => {
  const extra = [
    { name: "Net.w", model: "Net", dtype: "f32" as const, shape: [3, 2], init: { kind: "normal" as const, mean: 0, std: 1 } },
    { name: "Net.k", model: "Net", dtype: "i32" as const, shape: [2], init: { kind: "ones" as const } },
  ];

  test("params(), getParam, paramsByName, init kinds", async () => {
    const m = await load(testManifest(extra));
    expect(m.params()).toEqual([
      { name: "Net.b", dtype: "f32", shape: [4] },
      { name: "Net.w", dtype: "f32", shape: [3, 2] },
      { name: "Net.k", dtype: "i32", shape: [2] },
    ]);
    expect(m.getParam("Net.b").toArray()).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(Array.from(m.getParam("Net.k").data)).toEqual([1, 1]);
    expect(m.getParam("Net.k").data).toBeInstanceOf(Int32Array);
    const all = m.paramsByName();
    expect(Object.keys(all)).toEqual(["Net.b", "Net.w", "Net.k"]);
    expect(all["Net.w"]!.shape).toEqual([3, 2]);
    // getParam returns a copy
    m.getParam("Net.b").data[0] = 100;
    expect(m.getParam("Net.b").get(0)).toBe(0.5);
  });

  test("init is deterministic per seed", async () => {
    const a = await load(testManifest(extra), { seed: 5 });
    const b = await load(testManifest(extra), { seed: 5 });
    const c = await load(testManifest(extra), { seed: 6 });
    const d = await load(testManifest(extra));
    const e = await load(testManifest(extra), { seed: 0 });
    expect(a.getParam("Net.w").data).toEqual(b.getParam("Net.w").data);
    expect(a.getParam("Net.w").data).not.toEqual(c.getParam("Net.w").data);
    expect(d.getParam("Net.w").data).toEqual(e.getParam("Net.w").data);
  });

  test("options.params overrides without changing the other params' draws", async () => {
    const two = [
      { name: "A.p", model: "A", dtype: "f32" as const, shape: [5], init: { kind: "uniform" as const, low: 0, high: 1 } },
      { name: "A.q", model: "A", dtype: "f32" as const, shape: [5], init: { kind: "uniform" as const, low: 0, high: 1 } },
    ];
    const plain = await load(testManifest(two), { seed: 3 });
    const over = await load(testManifest(two), { seed: 3, params: { "A.p": [1, 2, 3, 4, 5] } });
    expect(over.getParam("A.p").toArray()).toEqual([1, 2, 3, 4, 5]);
    expect(over.getParam("A.q").data).toEqual(plain.getParam("A.q").data);
    await expect(load(testManifest(two), { params: { "A.zz": [1] } })).rejects.toThrow(/unknown param "A.zz"/);
    await expect(load(testManifest(two), { params: { "A.p": [1] } })).rejects.toThrow(/expected f32\[5\] \(5 elements\) but got an array of length 1/);
  });

  test("setParam checks dtype and length, and calls see the new value", async () => {
    const m = await load(testManifest(extra));
    m.setParam("Net.b", new Float32Array([1, 1, 1, 1]));
    expect(Array.from((m.Net.forward({ x: x8() }) as Tensor).data)).toEqual([4, 6, 8, 10, 12, 14, 16, 18]);
    m.setParam("Net.b", [0, 0, 0, 0]);
    m.setParam("Net.b", new Tensor("f32", [4], [2, 2, 2, 2]));
    expect(m.getParam("Net.b").toArray()).toEqual([2, 2, 2, 2]);
    let e = expectKilnError(() => m.setParam("Net.b", new Float32Array(3)), `setParam: param "Net.b" expected f32[4] (4 elements) but got a Float32Array of length 3`);
    expect(e.code).toBe("param_shape");
    e = expectKilnError(() => m.setParam("Net.b", new Int32Array(4) as unknown as number[]), `setParam: param "Net.b" expected f32[4] (4 elements) but got an Int32Array`);
    expect(e.code).toBe("param_dtype");
    expectKilnError(() => m.setParam("Net.b", new Tensor("f32", [2, 2])), "but got a Tensor of shape [2, 2]");
    expectKilnError(() => m.setParam("Net.b", new Tensor("i32", [4])), "but got a Tensor of dtype i32");
    expectKilnError(() => m.setParam("Net.k", [1.5, 2]), `param "Net.k" (i32) element 0 is 1.5`);
    e = expectKilnError(() => m.setParam("Net.nope", [1]), `setParam: unknown param "Net.nope"; params: Net.b, Net.w, Net.k`);
    expect(e.code).toBe("unknown_param");
    expectKilnError(() => m.getParam("x"), `getParam: unknown param "x"`);
  });

  test("he and xavier statistics over 100k samples", async () => {
    const fanIn = 500, fanOut = 200;
    const mf = testManifest([
      { name: "S.he", model: "S", dtype: "f32", shape: [500, 200], init: { kind: "he", fanIn } },
      { name: "S.xa", model: "S", dtype: "f32", shape: [500, 200], init: { kind: "xavier", fanIn, fanOut } },
      { name: "S.no", model: "S", dtype: "f32", shape: [100000], init: { kind: "normal", mean: 3, std: 0.5 } },
      { name: "S.un", model: "S", dtype: "f32", shape: [100000], init: { kind: "uniform", low: -1, high: 2 } },
    ]);
    const m = await load(mf, { seed: 11 });
    const moments = (d: ArrayLike<number>) => {
      let s = 0, s2 = 0, min = Infinity, max = -Infinity;
      for (let i = 0; i < d.length; i++) { const v = d[i]!; s += v; s2 += v * v; min = Math.min(min, v); max = Math.max(max, v); }
      const mean = s / d.length;
      return { mean, std: Math.sqrt(s2 / d.length - mean * mean), min, max };
    };
    const he = moments(m.getParam("S.he").data);
    const heStd = Math.sqrt(2 / fanIn);
    expect(Math.abs(he.mean)).toBeLessThan(0.01 * heStd * 5);
    expect(Math.abs(he.std / heStd - 1)).toBeLessThan(0.02);
    const xa = moments(m.getParam("S.xa").data);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    expect(xa.min).toBeGreaterThanOrEqual(-limit);
    expect(xa.max).toBeLessThanOrEqual(limit);
    expect(Math.abs(xa.mean)).toBeLessThan(0.01 * limit);
    expect(Math.abs(xa.std / (limit / Math.sqrt(3)) - 1)).toBeLessThan(0.02);
    const no = moments(m.getParam("S.no").data);
    expect(Math.abs(no.mean - 3)).toBeLessThan(0.01);
    expect(Math.abs(no.std - 0.5)).toBeLessThan(0.01);
    const un = moments(m.getParam("S.un").data);
    expect(un.min).toBeGreaterThanOrEqual(-1);
    expect(un.max).toBeLessThanOrEqual(2);
    expect(Math.abs(un.mean - 0.5)).toBeLessThan(0.02);
  });
});

describe("memory", () => {
  test("a call needing more than the initial memory grows it", async () => {
    const m = await load();
    const before = m.memoryStats().bytes;
    const B = 100_000; // 1.6 MB per [B, 4] f32 value, several values
    const x = Float32Array.from({ length: B * 4 }, (_, i) => i % 7);
    const y = m.Net.forward({ x }) as Tensor;
    expect(m.memoryStats().bytes).toBeGreaterThan(before);
    // The input, the output and at least one temporary are live at once (the rest reuse their blocks).
    expect(m.memoryStats().bytes).toBeGreaterThan(2 * B * 16);
    expect(y.shape).toEqual([B, 2, 2]);
    for (const i of [0, 1, 12345, B * 4 - 1]) expect(y.data[i]).toBe((x[i]! + 0.5) * 2);
    // Outputs are copies, not views of wasm memory.
    expect(y.data.byteLength).toBe(y.data.buffer.byteLength);
  });

  test("scratch is reused: 100 calls do not grow memory", async () => {
    const m = await load();
    const x = new Float32Array(4 * 1000);
    m.Net.forward({ x });
    const after1 = m.memoryStats();
    for (let i = 0; i < 100; i++) m.Net.forward({ x });
    expect(m.memoryStats().bytes).toBe(after1.bytes);
    expect(m.memoryStats().highWater).toBe(after1.highWater);
    // Smaller calls in between do not move the high-water mark either.
    for (let i = 0; i < 10; i++) m.addi({ a: [1, 2], b: [3, 4] });
    expect(m.memoryStats().highWater).toBe(after1.highWater);
  });

  test("consts and params live in persistent memory", async () => {
    const m = await load();
    expect(m.memoryStats().persistentBytes).toBeGreaterThanOrEqual(16 + 16); // Net.b (16 bytes) + const (4, aligned)
  });
});

describe("loading", () => {
  test("a missing kernel or wrong arity is reported at load", async () => {
    const a = testManifest();
    a.functions[0]!.steps[0]!.kernel = "nope_kernel";
    await expect(load(a)).rejects.toThrow(/Net.forward: step 0 calls kernel "nope_kernel" \(ops: add\), which the wasm does not export/);
    const b = testManifest();
    b.functions[0]!.steps[0]!.ints.push([[1]]);
    await expect(load(b)).rejects.toThrow(/passes 6 arguments to kernel "add_rows_f32" \(ops: add\), which takes 5/);
  });

  test("bad manifests and options", async () => {
    await expect(load({ ...testManifest(), version: 2 as 1 })).rejects.toThrow(/version 2 is not supported/);
    await expect(load({ ...testManifest(), format: "x" as "kiln-module" })).rejects.toThrow(/format/);
    const c = testManifest();
    c.functions[0]!.values[1] = { dtype: "f32", shape: [4], source: { kind: "param", name: "Net.zz" } };
    await expect(load(c)).rejects.toThrow(/unknown param "Net.zz"/);
    const d = testManifest();
    d.functions[0]!.values[4] = { dtype: "f32", shape: ["B", 2, 2], source: { kind: "alias", of: 4 } };
    await expect(load(d)).rejects.toThrow(/aliases bad value index 4/);
    await expect(load(testManifest(), { backend: "webgpu" })).rejects.toThrow(/unsupported backend "webgpu"/);
    await expect(load(testManifest(), { seed: 0.5 })).rejects.toThrow(/seed must be an integer/);
    await expect(loadKilnModule(testManifest(), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).rejects.toThrow(/not a WebAssembly binary/);
    await expect(load(testManifest(), { seed: 0.5 })).rejects.toBeInstanceOf(KilnError);
  });

  test("accepts a precompiled WebAssembly.Module and an ArrayBuffer", async () => {
    const mod = await WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>);
    const m1 = await loadKilnModule<Fns>(testManifest(), mod);
    expect((m1.addi({ a: [1], b: [1] }) as Tensor).toArray()).toEqual([2]);
    const ab = wasm.slice().buffer;
    const m2 = await loadKilnModule<Fns>(testManifest(), ab);
    expect((m2.addi({ a: [1], b: [1] }) as Tensor).toArray()).toEqual([2]);
  });

  test("respects the wasm's memory minimum and data segments; binds Math imports", async () => {
    const binaryen = (await import("binaryen")).default;
    const bytes = Array.from({ length: 64 }, (_, i) => "\\" + (i + 1).toString(16).padStart(2, "0")).join("");
    const mod = binaryen.parseText(`(module
      (import "env" "memory" (memory 3))
      (import "Math" "exp" (func $exp (param f64) (result f64)))
      (data (i32.const 16) "${bytes}")
      ;; out[i] = data byte i + exp(0) * x[i]   (f32, n = 16)
      (func (export "mix") (param $x i32) (param $out i32) (param $n i32) (local $i i32)
        (block $d (loop $l
          (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
          (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
            (f32.add (f32.convert_i32_u (i32.load8_u offset=16 (local.get $i)))
              (f32.mul (f32.demote_f64 (call $exp (f64.const 0)))
                (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))))`);
    expect(mod.validate()).toBeTruthy();
    const wasmBytes = mod.emitBinary();
    mod.dispose();
    const manifest: Manifest = {
      format: "kiln-module", version: 1, compiler: "test", source: "t", wasm: "t.wasm", kernels: ["mix"], params: [],
      functions: [{
        name: "mix", jsName: "mix", dims: [],
        inputs: [{ name: "x", dtype: "f32", shape: [16] }],
        outputs: [{ name: "y", dtype: "f32", shape: [16] }],
        outputValues: [1],
        values: [
          { dtype: "f32", shape: [16], source: { kind: "input", index: 0 } },
          { dtype: "f32", shape: [16], source: { kind: "temp" } },
        ],
        steps: [{ kernel: "mix", buffers: [0, 1], ints: [[[16]]], ops: ["add"] }],
      }],
    };
    const m = await loadKilnModule<{ mix: KilnFunction }>(manifest, wasmBytes);
    expect(m.memoryStats().bytes).toBe(3 * 65536);
    const y = m.mix({ x: new Float32Array(16).fill(100) }) as Tensor;
    expect(Array.from(y.data)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1 + 100));
  });

  test("dispose", async () => {
    const m = await load();
    m.dispose();
    expectKilnError(() => m.addi({ a: [1], b: [1] }), "disposed");
    expectKilnError(() => m.getParam("Net.b"), "disposed");
  });

  test("functions whose names clash with module members are reachable through call()", async () => {
    const mf = testManifest();
    mf.functions.push({ ...mf.functions.find((f) => f.name === "addi")!, name: "params", jsName: "params" });
    mf.functions.push({ ...mf.functions.find((f) => f.name === "addi")!, name: "then", jsName: "then" });
    const m = await load(mf);
    expect(typeof m.params()).toBe("object"); // still the API method
    expect((m.call("params", { a: [1], b: [2] }) as Tensor).toArray()).toEqual([3]);
    expect("then" in m).toBe(false); // a module must never look like a promise
  });

  test("MODULE_MEMBERS lists every KilnModule member", () => {
    const protoNames = Object.getOwnPropertyNames(KilnModule.prototype).filter((n) => n !== "constructor");
    for (const n of protoNames) expect(MODULE_MEMBERS).toContain(n);
  });
});
