// Column splits of small-M matmuls, plain SIMD build (cases: threads-cols-cases.ts); also the A/B switch
// KILN_THREADS_NSPLIT=0, the choice between rows and columns, and the MLP training step on 2 threads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { cacheKeyHash } from "../../compiler/cache.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { COL_RANGE_GLOBALS, readParallelInfo, type RowSplit } from "../../runtime/wasm/threads-meta.js";
import { splitCall } from "../../runtime/wasm/threads-split.js";
import { Tensor } from "../../runtime/tensor.js";
import { readFileSync } from "node:fs";
import { expectClose, irOf, runBoth } from "../helpers/backend.js";
import { checkAllShapes, checkChunksAlone, poolOf, rand, sameByColumns, setUp, SRC, type Setup } from "./threads-cols-cases.js";

let s: Setup;
beforeAll(async () => {
  s = await setUp(() => ({}));
});
afterAll(() => {
  for (const m of s.multi.values()) m.dispose();
});

describe("column splits (plain SIMD)", () => {
  it("matmuls other than Winograd convolutions offer columns, and the module exports the column globals", async () => {
    const mod = await WebAssembly.compile(s.build.wasm as Uint8Array<ArrayBuffer>);
    const info = readParallelInfo(mod);
    const mm = Object.values(info.kernels).filter((k): k is RowSplit => k.kind === "rows");
    expect(mm.length).toBeGreaterThan(0);
    for (const k of mm) expect(k.cols).toMatchObject({ align: 8, N: k.range - 1, K: k.range - 2 }); // (..., M, K, N, m0, m1)
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(expect.arrayContaining([...COL_RANGE_GLOBALS]));
  });

  it("equal one thread bit for bit and the reference: plain, transposed, epilogue; N odd, tiny, past a block", () => checkAllShapes(s));

  it("a column chunk alone writes exactly its columns, as the whole call does (plain, epilogue, batched)", () => checkChunksAlone(s));

  it("symbolic batch: a batched matmul of few rows, and a prepacked weight", () => {
    // Wide.forward reads its weight packed once at load (prepack.ts); column chunks read their panels of it.
    expect(s.build.manifest.functions.find((f) => f.name === "Wide.forward")!.steps.some((st) => st.prepackB)).toBe(true);
    for (const t of [2, 3]) {
      sameByColumns(s, t, "bmm", { a: { shape: [3, 8, 512], data: rand(3 * 8 * 512, 1) }, b: { shape: [3, 512, 200], data: rand(3 * 512 * 200, 2) } });
      sameByColumns(s, t, "Wide.forward", { x: { shape: [6, 1024], data: rand(6 * 1024, 3) } });
    }
  });

  it("all_finite over a column-split matmul: an Inf in any chunk's columns clears the flag", () => {
    const [M, K, N] = [8, 1024, 256];
    const a = rand(M * K, 4), b = rand(K * N, 5);
    let r = sameByColumns(s, 2, "checked", { a: { shape: [M, K], data: a }, b: { shape: [K, N], data: b } });
    expect(Number(r[0]!.data[0])).toBe(1);
    for (const col of [3, 200]) { // one column in each of the two chunks [0, 128) and [128, 256)
      const bi = b.slice();
      bi[7 * N + col] = Infinity;
      r = sameByColumns(s, 2, "checked", { a: { shape: [M, K], data: a }, b: { shape: [K, N], data: bi } });
      expect(Number(r[0]!.data[0]), `Inf in column ${col}`).toBe(0);
    }
  });

  it("rows when they balance (many rows), columns with few; small calls and K = 0 stay on one thread", async () => {
    const mod = await WebAssembly.compile(s.build.wasm as Uint8Array<ArrayBuffer>);
    const info = readParallelInfo(mod);
    const fn = s.build.manifest.functions.find((f) => f.name === "mm")!;
    const split = info.kernels[fn.steps.find((st) => info.kernels[st.kernel!])!.kernel!]! as RowSplit;
    // (a, b, scratch, out, M, K, N, m0, m1)
    const call = (M: number, K: number, N: number) => splitCall(split, [0, 0, 0, 0, M, K, N, 0, M], 2, 64, true, true);
    expect(call(512, 512, 512)?.cols).toBeFalsy();
    expect(call(784, 64, 128)?.cols).toBeFalsy(); // the MLP's weight gradient xᵀ·dy
    // [16,784]x[784,1024]: the shared B packing alone is about as long as a row chunk (see threads-split.ts).
    const c = call(16, 784, 1024)!;
    expect(c.cols).toBe(true);
    expect(c.chunks.map((x) => x.slice(-2))).toEqual([[0, 512], [512, 1024]]);
    // 4 rows cannot be cut by rows at all (one 4-row panel), but their 1024 columns can.
    expect(call(4, 2048, 1024)?.cols).toBe(true);
    expect(call(4, 64, 64)).toBeNull(); // under MIN_MATMUL_WORK
    expect(call(16, 0, 1 << 20)).toBeNull(); // K = 0: no work (the kernel zero-fills whole rows)
    expect(call(64, 4096, 24)?.cols).toBeFalsy(); // 12 columns a thread: too few
    // The pool without column globals (an older module) never gets column chunks.
    expect(splitCall(split, [0, 0, 0, 0, 4, 2048, 1024, 0, 4], 2, 64, true, false)).toBeNull();
  });

  it("KILN_THREADS_NSPLIT=0 builds without column ranges (and is part of the compile cache key), same results", async () => {
    const key = { file: "a.kiln", options: {}, source: "x" } as unknown as Parameters<typeof cacheKeyHash>[0];
    const on = cacheKeyHash(key);
    process.env.KILN_THREADS_NSPLIT = "0";
    let off: Awaited<ReturnType<typeof buildWasm>>;
    let offKey: string;
    try {
      off = await buildWasm(irOf(SRC), "threads_cols_off");
      offKey = cacheKeyHash(key);
    } finally {
      delete process.env.KILN_THREADS_NSPLIT;
    }
    expect(offKey).not.toBe(on);
    const mod = await WebAssembly.compile(off.wasm as Uint8Array<ArrayBuffer>);
    expect(Object.values(readParallelInfo(mod).kernels).some((k) => k.kind === "rows" && k.cols)).toBe(false);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).not.toContain(COL_RANGE_GLOBALS[0]);
    const m = await loadKilnModule(off.manifest, off.wasm, { threads: 2 });
    try {
      const pool = poolOf(m);
      pool.fallback = false;
      const inputs = { a: new Tensor("f32", [16, 784], rand(16 * 784, 1)), b: new Tensor("f32", [784, 1024], rand(784 * 1024, 2)) };
      const got = m.call("mm", inputs) as Tensor;
      expect(pool.stats.cols).toBe(0);
      expect(pool.stats.dispatches).toBe(1);
      expect(Array.from(got.data)).toEqual(Array.from((s.one.call("mm", inputs) as Tensor).data));
    } finally {
      m.dispose();
    }
  });

  it("the MLP training step (dsl-examples/mlp_train.kiln) on 2 threads: same steps as one thread, gradients as the reference", async () => {
    const ir = irOf(readFileSync(new URL("../../dsl-examples/mlp_train.kiln", import.meta.url), "utf8"), "mlp_train.kiln");
    const b = await buildWasm(ir, "mlp_train");
    const one = await loadKilnModule(b.manifest, b.wasm, { seed: 2 });
    const two = await loadKilnModule(b.manifest, b.wasm, { seed: 2, threads: 2 });
    try {
      const pool = poolOf(two);
      pool.fallback = false;
      for (const B of [16, 64]) {
        const x = Array.from(rand(B * 784, B));
        const labels = { dtype: "i32" as const, shape: [B], data: Array.from({ length: B }, (_, i) => (i * 7) % 10) };
        const cols = pool.stats.cols;
        const { wasm, ref } = await runBoth(ir, "MLP.grads", { x: { dtype: "f32", shape: [B, 784], data: x }, labels }, { module: two, seed: 2 });
        ["w1", "b1", "w2", "b2"].forEach((n, k) => expectClose(wasm[k]!, ref[k]!, `batch ${B}: d loss / d ${n}`, 1e-4, 1e-6));
        // Batch 16: x @ w1 is [16,784]x[784,128], cut by columns (64 each).
        if (B === 16) expect(pool.stats.cols - cols, "column splits at batch 16").toBeGreaterThanOrEqual(1);
      }
      const x = new Tensor("f32", [64, 784], rand(64 * 784, 9));
      const labels = new Tensor("i32", [64], Int32Array.from({ length: 64 }, (_, i) => (i * 3) % 10));
      const d = pool.stats.dispatches;
      for (let i = 0; i < 3; i++) for (const m of [one, two]) m.call("Sgd.step", { x, labels });
      expect(pool.stats.dispatches - d).toBeGreaterThanOrEqual(6); // 2 big matmuls a step
      for (const p of ["MLP.w1", "MLP.b1", "MLP.w2", "MLP.b2"]) {
        const [u1, u2] = [one, two].map((m) => Array.from(new Uint32Array((m.getParam(p).data as Float32Array).buffer)));
        expect(u2!.findIndex((v, i) => v !== u1![i]), `${p} after 3 steps: first differing element`).toBe(-1);
      }
    } finally {
      two.dispose();
    }
  });
});
