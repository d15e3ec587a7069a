/// <reference types="@webgpu/types" />
// all_finite on WebGPU (compiler/codegen/wgsl/finite.ts): the standalone `finite` kernel and the flag that
// elementwise, reduce and matmul kernels with `flag: true` clear when a value they store is not finite, dispatched
// directly (bindings as runtime/webgpu/instance.ts assigns them, `pack` included). Finite data leaves the flag as
// it was; one Inf or NaN anywhere clears it; 16-bit outputs clear it exactly where the format's rounding overflows;
// and the flag changes none of the outputs.
//
// Thresholds from the formats (round to nearest, ties to even): the largest finite f16 is (2 - 2^-10) * 2^15 =
// 65504 and the midpoint to 2^16 is (2 - 2^-11) * 2^15 = 65520, which ties to the even neighbour, Inf: so 65519
// stores 65504 and 65520 stores Inf. The largest finite bf16 is (2 - 2^-7) * 2^127 ~ 3.3895e38 and the midpoint
// is (2 - 2^-8) * 2^127 ~ 3.3961e38 (again Inf): 3.38e38 stays finite, 3.40e38 (a finite f32) does not.
import { afterAll, describe, expect, it } from "vitest";
import type { ElementwiseKernel, EwExpr, FiniteKernel, KernelSpec, MatmulKernel, ReduceKernel } from "../../compiler/codegen/kernel.js";
import { buildWgslModule } from "../../compiler/codegen/wgsl/module.js";
import { renderElementwise } from "../../compiler/codegen/wgsl/elementwise.js";
import { renderReduce } from "../../compiler/codegen/wgsl/reduce.js";
import { renderMatmul } from "../../compiler/codegen/wgsl/matmul.js";
import { renderFinite } from "../../compiler/codegen/wgsl/finite.js";
import { kernelMeta, renderShader, type KernelShader } from "../../compiler/codegen/wgsl/shader.js";
import type { HalfMode } from "../../compiler/codegen/wgsl/half.js";
import { MAP_READ, STAGE_COMPUTE, USAGE } from "../../runtime/webgpu/device.js";
import { f32ToBf16Bits, f32ToF16Bits, f16BitsToF32, bf16BitsToF32 } from "../../runtime/dtype.js";
import { Rng } from "../../runtime/rng.js";
import { webgpuEnv } from "./helpers.js";
import { modesOf } from "./half-helpers.js";

const env = await webgpuEnv("all_finite flags on WebGPU", ["shader-f16"]);
afterAll(() => env.h?.device.destroy());
const MODES = modesOf(env);

const F16_MAX = (2 - 2 ** -10) * 2 ** 15;
const F16_EDGE = (2 - 2 ** -11) * 2 ** 15;
const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;
const BF16_EDGE = (2 - 2 ** -8) * 2 ** 127;

type Dt = "f32" | "f16" | "bf16";

// ---- host data: one 32-bit word per f32, two 16-bit halves per word (element 2w low) ----

/** Words holding `xs` stored as `d` (16-bit values rounded by the host conversion). */
function words(d: Dt, xs: readonly number[]): Uint32Array {
  if (d === "f32") return new Uint32Array(Float32Array.from(xs).buffer);
  const h = new Uint16Array(xs.length + (xs.length & 1));
  xs.forEach((x, i) => { h[i] = d === "f16" ? f32ToF16Bits(x) : f32ToBf16Bits(x); });
  return new Uint32Array(h.buffer);
}

/** The element values a word array holds as `d`. */
function values(d: Dt, w: Uint32Array, n: number): number[] {
  if (d === "f32") return [...new Float32Array(w.buffer, w.byteOffset, n)];
  const h = new Uint16Array(w.buffer, w.byteOffset, n);
  return [...h].map((b) => (d === "f16" ? f16BitsToF32(b) : bf16BitsToF32(b)));
}

/** n values in (-2, 2), exact in `d`. */
function finiteData(rng: Rng, d: Dt, n: number): number[] {
  return values(d, words(d, Array.from({ length: n }, () => rng.uniform() * 4 - 2)), n);
}

const planted = (n: number): number[] => [...new Set([0, n >> 1, n - 1])];
const BAD = [Infinity, -Infinity, NaN];

// ---- dispatching one shader with bindings in calling-convention order ----

const pipelines = new Map<string, Promise<{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>>();

async function pipelineOf(shader: KernelShader): Promise<{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }> {
  const code = renderShader(shader);
  let p = pipelines.get(code);
  if (!p) {
    p = (async () => {
      const d = env.h!.device;
      const module = d.createShaderModule({ code });
      const errs = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
      if (errs.length) throw new Error(`${shader.name}: ${errs.map((m) => `${m.lineNum}: ${m.message}`).join("\n")}\n${code}`);
      // The layout as runtime/webgpu/shaders.ts builds it: one entry per bound buffer, `pack` once.
      const uses = kernelMeta(shader).buffers.filter((b, j, all) => b !== "none" && (b !== "pack" || all.indexOf("pack") === j));
      const layout = d.createBindGroupLayout({
        entries: [{ binding: 0, visibility: STAGE_COMPUTE, buffer: { type: "uniform" } }, ...uses.map((b, i) => ({ binding: i + 1, visibility: STAGE_COMPUTE, buffer: { type: (b === "write" ? "storage" : "read-only-storage") as GPUBufferBindingType } }))],
      });
      const pipeline = await d.createComputePipelineAsync({ layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: "main" } });
      return { pipeline, layout };
    })();
    pipelines.set(code, p);
  }
  return p;
}

/**
 * Runs `shader` on one word array per calling-convention buffer (null where it binds nothing) and its integer
 * arguments; returns every buffer's words afterwards. Packed members are copied into one buffer and their word
 * offsets appended to the ints, as the runtime does.
 */
async function dispatch(shader: KernelShader, bufs: readonly (Uint32Array | null)[], ints: readonly number[]): Promise<Uint32Array[]> {
  const d = env.h!.device;
  const meta = kernelMeta(shader);
  expect(meta.buffers.length, shader.name).toBe(bufs.length);
  const { pipeline, layout } = await pipelineOf(shader);
  const make = (data: Uint32Array, usage: number) => {
    const b = d.createBuffer({ size: Math.max(16, data.byteLength), usage });
    d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  };
  const storage = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;
  const gpuBufs = bufs.map((b, j) => (b && meta.buffers[j] !== "pack" && meta.buffers[j] !== "none" ? make(b, storage) : null));
  const members = bufs.filter((_, j) => meta.buffers[j] === "pack") as Uint32Array[];
  const offsets: number[] = [];
  let total = 0;
  for (const m of members) { offsets.push(total); total += m.length; }
  const pack = new Uint32Array(total);
  members.forEach((m, q) => pack.set(m, offsets[q]!));
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: make(Uint32Array.from([...ints, ...offsets, 0, 0, 0, 0]), USAGE.UNIFORM | USAGE.COPY_DST) } }];
  let packBound = false;
  meta.buffers.forEach((use, j) => {
    if (use === "none" || (use === "pack" && packBound)) return;
    if (use === "pack") packBound = true;
    entries.push({ binding: entries.length, resource: { buffer: use === "pack" ? make(pack, storage) : gpuBufs[j]! } });
  });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, d.createBindGroup({ layout, entries }));
  // At least one workgroup even for an empty tensor (the runtime skips those; the kernel must cope anyway).
  const grid = meta.grid.map((a) => Math.min(65535, Math.max(1, Math.ceil(a.ints.reduce((x, i) => x * ints[i]!, 1) / a.per))));
  pass.dispatchWorkgroups(grid[0]!, grid[1]!, grid[2]!);
  pass.end();
  const reads = gpuBufs.map((b) => {
    if (!b) return null;
    const r = d.createBuffer({ size: b.size, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    enc.copyBufferToBuffer(b, 0, r, 0, b.size);
    return r;
  });
  d.queue.submit([enc.finish()]);
  return Promise.all(reads.map(async (r, j) => {
    if (!r) return bufs[j] ?? new Uint32Array(0);
    await r.mapAsync(MAP_READ);
    const w = new Uint32Array(r.getMappedRange().slice(0, bufs[j]!.byteLength));
    r.unmap();
    return w;
  }));
}

/**
 * Runs a kernel with `flag: true` (flag pre-set to `start`) and the same kernel without: the outputs must agree
 * bit for bit. Returns the flag and the outputs.
 */
async function runFlagged(render: (spec: KernelSpec) => KernelShader, spec: KernelSpec & { flag?: true }, bufs: readonly (Uint32Array | null)[], ints: readonly number[], start = 1): Promise<{ flag: number; outs: Uint32Array[] }> {
  const flagged = render({ ...spec, flag: true } as KernelSpec);
  const plain = render(spec);
  const [withFlag, without] = await Promise.all([dispatch(flagged, [...bufs, Uint32Array.of(start)], ints), dispatch(plain, bufs, ints)]);
  const outs = withFlag.slice(0, -1);
  outs.forEach((o, j) => expect([...o], `buffer ${j} of ${flagged.name} vs without flag`).toEqual([...without[j]!]));
  return { flag: withFlag.at(-1)![0]!, outs };
}

// ---- kernel specs ----

const IN = (index: number): EwExpr => ({ t: "in", index });
const op = (o: "add" | "mul", dtype: Dt, a: EwExpr, b: EwExpr): EwExpr => ({ t: "op", op: o, attrs: {}, dtype, args: [a, b] } as EwExpr);
const cast = (to: Dt, a: EwExpr): EwExpr => ({ t: "op", op: "cast", attrs: { to }, dtype: to, args: [a] } as EwExpr);
const row = (rank: number) => new Array<boolean>(rank).fill(false);

describe.skipIf(!env.h)("all_finite flags in WGSL kernels", { timeout: 120_000 }, () => {
  it("finite: any Inf or NaN (first, middle, last; odd sizes, n = 0) clears the flag; finite data never sets it", async () => {
    const rng = new Rng(1);
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const spec: FiniteKernel = { kind: "finite", dtype };
      const shader = renderFinite(`finite_${dtype}`, spec);
      const run = async (xs: number[], start = 1) => (await dispatch(shader, [words(dtype, xs), Uint32Array.of(start)], [xs.length]))[1]![0]!;
      expect(await run([]), `${dtype} n=0`).toBe(1);
      for (const n of [1, 2, 3, 64, 129, 1001]) {
        const xs = finiteData(rng, dtype, n);
        expect(await run(xs), `${dtype} n=${n}`).toBe(1);
        expect(await run(xs, 0), `${dtype} n=${n} from 0`).toBe(0);
        for (const at of planted(n)) for (const bad of BAD) expect(await run(xs.map((x, i) => (i === at ? bad : x))), `${dtype} n=${n} ${bad} at ${at}`).toBe(0);
        // The largest finite value of the format stays finite.
        const max = dtype === "f32" ? 3.4028234663852886e38 : dtype === "f16" ? F16_MAX : BF16_MAX;
        expect(await run(xs.map((x, i) => (i === n - 1 ? -max : x))), `${dtype} n=${n} -max`).toBe(1);
      }
      // The last word of an odd 16-bit tensor: its unused high half may hold any bits (here an Inf) and is ignored.
      if (dtype !== "f32") {
        const w = words(dtype, [1, 2, 3]);
        w[1] = w[1]! | (0x7f80 << 16) | (0x7c00 << 16);
        expect((await dispatch(shader, [w, Uint32Array.of(1)], [3]))[1]![0]).toBe(1);
      }
    }
    // One section per finite kernel: it reads raw u32 words in both f16 variants.
    const built = buildWgslModule([{ name: "fin", spec: { kind: "finite", dtype: "f16" } }]);
    expect(built.kernels.fin!.f16).toBeUndefined();
    expect(built.kernels.fin!.buffers).toEqual(["read", "write"]);
  });

  it("elementwise: packed inputs and an extra output (f32 out, flag after the extra output)", async () => {
    // out = x0 + ... + x7 (8 inputs: read from `pack`), out_1 = cast(out, f16): only `out` is checked.
    let sum: EwExpr = IN(0);
    for (let i = 1; i < 8; i++) sum = op("add", "f32", sum, IN(i));
    const spec: ElementwiseKernel = { kind: "elementwise", rank: 1, inputs: Array.from({ length: 8 }, () => ({ dtype: "f32", bcast: [false] })), out: "f32", expr: sum, extraOutputs: [{ dtype: "f16", expr: cast("f16", sum) }] };
    const render = (s: KernelSpec) => renderElementwise("ew_pack", s as ElementwiseKernel, "packed");
    const shader = render({ ...spec, flag: true });
    expect(kernelMeta(shader).buffers).toEqual([...new Array(8).fill("pack"), "write", "write", "write"]);
    const rng = new Rng(2);
    for (const n of [1, 3, 130]) {
      const ins = Array.from({ length: 8 }, () => finiteData(rng, "f32", n));
      const run = async (xs: number[][], start = 1) => (await runFlagged(render, spec, [...xs.map((x) => words("f32", x)), new Uint32Array(n), new Uint32Array((n + 1) >> 1)], [n], start)).flag;
      expect(await run(ins), `n=${n}`).toBe(1);
      expect(await run(ins, 0), `n=${n} from 0`).toBe(0);
      for (const at of planted(n)) for (const bad of BAD) expect(await run(ins.map((x, j) => (j === 7 ? x.map((v, i) => (i === at ? bad : v)) : x))), `n=${n} ${bad} at ${at}`).toBe(0);
      // 70000 is finite as the f32 out (the f16 extra output overflows, but it is not checked); 3e38 + 3e38 is not.
      const big = (v: number) => ins.map((x, j) => (j === 0 ? x.map((_, i) => (i === n - 1 ? v : 0)) : x.map(() => 0)));
      expect(await run(big(70000)), `n=${n} 70000`).toBe(1);
      const over = ins.map((x, j) => (j < 2 ? x.map((_, i) => (i === 0 ? 3e38 : 0)) : x.map(() => 0)));
      expect(await run(over), `n=${n} 3e38 + 3e38`).toBe(0);
    }
  });

  for (const [H, modes] of [["f16", MODES], ["bf16", ["packed"]]] as const) {
    for (const mode of modes as readonly HalfMode[]) {
      it(`elementwise: ${H} out (${mode}), a broadcast ${H} input, overflow at the format's threshold`, async () => {
        // out = cast(x0 + x1, H), x0: f32[R, C], x1: H[C] broadcast over rows.
        const spec: ElementwiseKernel = { kind: "elementwise", rank: 2, inputs: [{ dtype: "f32", bcast: [false, false] }, { dtype: H, bcast: [true, false] }], out: H, expr: cast(H, op("add", "f32", IN(0), IN(1))) };
        const render = (s: KernelSpec) => renderElementwise(`ew_${H}`, s as ElementwiseKernel, mode);
        const rng = new Rng(3);
        for (const [R, C] of [[1, 1], [3, 5], [7, 33]] as const) {
          const n = R * C;
          const x0 = finiteData(rng, "f32", n), x1 = finiteData(rng, H, C);
          const run = async (a: number[], b = x1) => (await runFlagged(render, spec, [words("f32", a), words(H, b), words(H, new Array(n).fill(0))], [R, C])).flag;
          expect(await run(x0), `${R}x${C}`).toBe(1);
          for (const at of planted(n)) for (const bad of BAD) expect(await run(x0.map((v, i) => (i === at ? bad : v))), `${R}x${C} ${bad} at ${at}`).toBe(0);
          // An Inf in the broadcast input reaches a whole column.
          expect(await run(x0, x1.map((v, i) => (i === C - 1 ? -Infinity : v))), `${R}x${C} -Inf in x1`).toBe(0);
          const cases: [number, number][] = H === "f16" ? [[65519, 1], [F16_EDGE, 0], [70000, 0], [-65519, 1], [-F16_EDGE, 0]] : [[3.38e38, 1], [3.4e38, 0], [-3.38e38, 1], [-BF16_EDGE, 0]];
          for (const [v, want] of cases) {
            for (const at of planted(n)) {
              const a = x0.map((x, i) => (i === at ? v : 0)), b = x1.map(() => 0);
              const { flag, outs } = await runFlagged(render, spec, [words("f32", a), words(H, b), words(H, new Array(n).fill(0))], [R, C]);
              expect(flag, `${R}x${C} ${v} at ${at}`).toBe(want);
              expect(Number.isFinite(values(H, outs[2]!, n)[at]!), `${v} stored`).toBe(want === 1);
            }
          }
        }
      });
    }
  }

  it("reduce: f32 sum over rows, mean with a stored prologue (flag after `stored`)", async () => {
    const plain: ReduceKernel = { kind: "reduce", op: "sum", dtype: "f32", rank: 2, reduced: [false, true] };
    const renderPlain = (s: KernelSpec) => renderReduce("red_f32", s as ReduceKernel, "packed");
    // mean over axis 0 of x0 * x1 (x1: [1, C]), the products also stored.
    const pro: ReduceKernel = { kind: "reduce", op: "mean", dtype: "f32", rank: 2, reduced: [true, false], prologue: { inputs: [{ dtype: "f32", bcast: [false, false] }, { dtype: "f32", bcast: [true, false] }], expr: op("mul", "f32", IN(0), IN(1)), stored: true } };
    const renderPro = (s: KernelSpec) => renderReduce("red_pro", s as ReduceKernel, "packed");
    expect(kernelMeta(renderPro({ ...pro, flag: true })).buffers).toEqual(["read", "read", "write", "write", "write"]);
    const rng = new Rng(4);
    for (const [R, C] of [[1, 1], [3, 70], [65, 3]] as const) {
      const n = R * C;
      const x = finiteData(rng, "f32", n), y = finiteData(rng, "f32", C);
      const runPlain = async (a: number[]) => (await runFlagged(renderPlain, plain, [words("f32", a), new Uint32Array(R)], [R, C])).flag;
      const runPro = async (a: number[], b = y) => (await runFlagged(renderPro, pro, [words("f32", a), words("f32", b), new Uint32Array(C), new Uint32Array(n)], [R, C])).flag;
      expect(await runPlain(x), `sum ${R}x${C}`).toBe(1);
      expect(await runPro(x), `mean ${R}x${C}`).toBe(1);
      for (const at of planted(n)) {
        for (const bad of BAD) {
          const a = x.map((v, i) => (i === at ? bad : v));
          expect(await runPlain(a), `sum ${R}x${C} ${bad} at ${at}`).toBe(0);
          expect(await runPro(a), `mean ${R}x${C} ${bad} at ${at}`).toBe(0);
        }
      }
      // Finite terms whose f32 sum overflows.
      if (C > 1) expect(await runPlain(x.map((v, i) => (i < 2 ? 3e38 : v))), `sum ${R}x${C} overflow`).toBe(0);
    }
  });

  for (const [H, modes] of [["f16", MODES], ["bf16", ["packed"]]] as const) {
    for (const mode of modes as readonly HalfMode[]) {
      it(`reduce: sums of ${H} (${mode}) stored as ${H} clear the flag exactly where they round to Inf`, async () => {
        const spec: ReduceKernel = { kind: "reduce", op: "sum", dtype: H, rank: 2, reduced: [false, true] };
        const render = (s: KernelSpec) => renderReduce(`red_${H}`, s as ReduceKernel, mode);
        const rng = new Rng(5);
        const run = async (a: number[], R: number, C: number) => runFlagged(render, spec, [words(H, a), words(H, new Array(R).fill(0))], [R, C]);
        for (const [R, C] of [[1, 1], [3, 5], [5, 67]] as const) {
          const x = finiteData(rng, H, R * C);
          expect((await run(x, R, C)).flag, `${R}x${C}`).toBe(1);
          for (const at of planted(R * C)) for (const bad of BAD) expect((await run(x.map((v, i) => (i === at ? bad : v)), R, C)).flag, `${R}x${C} ${bad} at ${at}`).toBe(0);
        }
        // Rows of two terms exact in H whose f32 sum is the value under test (the last row carries it).
        const big = H === "f16" ? F16_MAX : BF16_MAX;
        const cases: [number, number][] = H === "f16" ? [[65519, 1], [F16_EDGE, 0], [70000, 0]] : [[3.38e38, 1], [3.4e38, 0]];
        for (const [v, want] of cases) {
          const rest = values(H, words(H, [v - big]), 1)[0]!;
          const total = Math.fround(big + rest);
          // The test's own check of the sum it builds: below the rounding edge iff expected finite.
          expect(Math.abs(total) < (H === "f16" ? F16_EDGE : BF16_EDGE), `${v}`).toBe(want === 1);
          const { flag, outs } = await run([1, 2, 3, 4, big, rest], 3, 2);
          expect(flag, `${H} sum ${total}`).toBe(want);
          expect(Number.isFinite(values(H, outs[1]!, 3)[2]!)).toBe(want === 1);
        }
      });
    }
  }

  it("matmul f32 (no epilogue), tiles with partial edges, and a row range that excludes the bad row", async () => {
    const spec: MatmulKernel = { kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [] };
    const render = (s: KernelSpec) => renderMatmul("mm_f32", s as MatmulKernel, undefined, "packed");
    const rng = new Rng(6);
    for (const [M, K, N] of [[1, 1, 1], [33, 17, 35]] as const) {
      const a = finiteData(rng, "f32", M * K), b = finiteData(rng, "f32", K * N).map((v) => v + 3);
      const run = async (x: number[], m0 = 0, m1: number = M) => (await runFlagged(render, spec, [words("f32", x), words("f32", b), null, new Uint32Array(M * N)], [M, K, N, m0, m1])).flag;
      expect(await run(a), `${M}x${K}x${N}`).toBe(1);
      for (const at of planted(M * K)) {
        for (const bad of BAD) {
          const x = a.map((v, i) => (i === at ? bad : v));
          expect(await run(x), `${M}x${K}x${N} ${bad} at ${at}`).toBe(0);
          // Rows [m0, m1) without the bad row (at / K) store only finite sums.
          const r = Math.floor(at / K);
          if (r > 0) expect(await run(x, 0, r), `rows [0, ${r})`).toBe(1);
          if (r < M - 1) expect(await run(x, r + 1, M), `rows [${r + 1}, ${M})`).toBe(1);
        }
      }
    }
  });

  it("matmul bf16 operands and out (no epilogue): sums past the bf16 edge clear the flag", async () => {
    const spec: MatmulKernel = { kind: "matmul", dtype: "bf16", batchRank: 1, aBcast: [false], bBcast: [true] };
    const render = (s: KernelSpec) => renderMatmul("mm_bf16", s as MatmulKernel, undefined, "packed");
    const rng = new Rng(7);
    const [B, M, K, N] = [2, 5, 3, 7];
    const run = async (a: number[], b: number[]) => runFlagged(render, spec, [words("bf16", a), words("bf16", b), null, words("bf16", new Array(B * M * N).fill(0))], [B, M, K, N, 0, M]);
    const a = finiteData(rng, "bf16", B * M * K), b = finiteData(rng, "bf16", K * N);
    expect((await run(a, b)).flag).toBe(1);
    for (const at of planted(B * M * K)) for (const bad of BAD) expect((await run(a.map((v, i) => (i === at ? bad : v)), b)).flag, `${bad} at ${at}`).toBe(0);
    // out[B-1, M-1, N-1] = t0 + t1 + t2, summed in that order (the other products 0): 3.38e38 and 3.40e38, the
    // rounding edge itself, and the f32 just below it (edge - 2^104, one f32 ulp at 2^127).
    const ones = b.map((_, i) => (i % N === N - 1 ? 1 : 0));
    const rest = (v: number) => values("bf16", words("bf16", [v - BF16_MAX]), 1)[0]!;
    const cases: [number[], number][] = [[[BF16_MAX, rest(3.38e38), 0], 1], [[BF16_MAX, rest(3.4e38), 0], 0], [[BF16_MAX, 2 ** 119, 0], 0], [[BF16_MAX, 2 ** 119, -(2 ** 104)], 1]];
    for (const [terms, want] of cases) {
      expect(Math.abs(Math.fround(Math.fround(terms[0]! + terms[1]!) + terms[2]!)) < BF16_EDGE, `${terms}`).toBe(want === 1);
      const x = a.map((_, i) => (i >= B * M * K - K ? terms[i - (B * M * K - K)]! : 0));
      const { flag, outs } = await run(x, ones);
      expect(flag, `${terms}`).toBe(want);
      expect(Number.isFinite(values("bf16", outs[3]!, B * M * N)[B * M * N - 1]!)).toBe(want === 1);
    }
  });

  for (const mode of MODES) {
    it(`matmul with an epilogue storing f16 (${mode}): bias add, overflow at 65520`, async () => {
      // out (f16) = sum + bias, bias: [1, N] over [M, N]; the f32 value is rounded only by the store.
      const spec: MatmulKernel = { kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [], transB: true, epilogue: { inputs: [{ dtype: "f32", bcast: [true, false] }], expr: op("add", "f32", IN(0), IN(1)), out: "f16" } };
      const render = (s: KernelSpec) => renderMatmul("mm_epi", s as MatmulKernel, undefined, mode);
      expect(kernelMeta(render({ ...spec, flag: true })).buffers).toEqual(["read", "read", "none", "read", "write", "write"]);
      const rng = new Rng(8);
      for (const [M, K, N] of [[1, 1, 1], [35, 9, 33]] as const) {
        const a = finiteData(rng, "f32", M * K), b = finiteData(rng, "f32", N * K).map((v) => v + 3), bias = finiteData(rng, "f32", N);
        const run = async (x: number[], w = b, c = bias) => runFlagged(render, spec, [words("f32", x), words("f32", w), null, words("f32", c), words("f16", new Array(M * N).fill(0))], [M, K, N, 0, M]);
        expect((await run(a)).flag, `${M}x${K}x${N}`).toBe(1);
        for (const at of planted(M * K)) for (const bad of BAD) expect((await run(a.map((v, i) => (i === at ? bad : v)))).flag, `${M}x${K}x${N} ${bad} at ${at}`).toBe(0);
        expect((await run(a, b, bias.map((v, i) => (i === N >> 1 ? NaN : v)))).flag, "NaN bias").toBe(0);
        // The sum is 0 except at one element, where bias + 0 is the value under test.
        // 65520 - 2^-8 is the f32 just below the edge.
        for (const [v, want] of [[65519, 1], [F16_EDGE - 2 ** -8, 1], [F16_EDGE, 0], [-F16_EDGE, 0], [70000, 0]] as const) {
          for (const col of [0, N - 1]) {
            const { flag, outs } = await run(a.map(() => 0), b, bias.map((_, i) => (i === col ? v : 0)));
            expect(flag, `${M}x${K}x${N} bias ${v} at column ${col}`).toBe(want);
            expect(Number.isFinite(values("f16", outs[4]!, M * N)[(M - 1) * N + col]!)).toBe(want === 1);
          }
        }
      }
    });
  }

  it("a flag that would take a 9th storage buffer is an internal error naming the kernel", () => {
    const inputs = Array.from({ length: 5 }, () => ({ dtype: "f32" as const, bcast: row(2) }));
    const spec: MatmulKernel = { kind: "matmul", dtype: "f32", batchRank: 0, aBcast: [], bBcast: [], flag: true, epilogue: { inputs, expr: IN(0), out: "f32" } };
    expect(() => buildWgslModule([{ name: "wide_mm", spec }])).toThrow(/wide_mm.*9 storage buffers/);
    // Without the flag it binds 8 (lhs, rhs, e_0..e_4, out): allowed.
    expect(() => buildWgslModule([{ name: "wide_mm", spec: { ...spec, flag: undefined } as MatmulKernel }])).not.toThrow();
    // An elementwise kernel with 8 inputs reads them from one pack: a flag always fits.
    const ew: ElementwiseKernel = { kind: "elementwise", rank: 1, inputs: Array.from({ length: 8 }, () => ({ dtype: "f32", bcast: [false] })), out: "f32", expr: IN(0), flag: true };
    expect(() => buildWgslModule([{ name: "ew8", spec: ew }])).not.toThrow();
    const ew7: ElementwiseKernel = { ...ew, inputs: ew.inputs.slice(0, 7) };
    expect(() => buildWgslModule([{ name: "ew7", spec: ew7 }])).toThrow(/ew7/);
  });
});
