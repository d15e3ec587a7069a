// conv2d, max_pool2d, avg_pool2d and flatten on wasm and in the reference, against numbers from outside Kiln:
// small cases worked out by hand (in the comments), and a direct-convolution loop written here (PyTorch's
// definition, independent of the im2col path) on random inputs with every option; plus their diagnostics.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { Rng } from "../../runtime/rng.js";
import { irOf, runBoth, type Input } from "../helpers/backend.js";

const f32 = (shape: number[], data: number[]): Input => ({ dtype: "f32", shape, data });
/** The 3x3 image 1..9 used by the hand-computed cases: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]. */
const IMG = f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);

async function expectBoth(src: string, fn: string, inputs: Record<string, Input>, shape: number[], want: number[], tol = 1e-5) {
  const { wasm, ref } = await runBoth(irOf(src), fn, inputs);
  expect(wasm[0].shape).toEqual(shape);
  expect(ref[0].shape).toEqual(shape);
  want.forEach((v, i) => {
    expect(ref[0].data[i], `${fn} reference [${i}]`).toBeCloseTo(v, 10);
    expect(Math.abs(Number(wasm[0].data[i]) - v), `${fn} wasm [${i}] = ${wasm[0].data[i]} vs ${v}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(v)));
  });
}

describe("hand-computed cases on the 3x3 image 1..9", () => {
  const w = f32([1, 1, 2, 2], [1, 2, 3, 4]);
  it("conv2d, 2x2 kernel [[1, 2], [3, 4]], bias 0.5", async () => {
    // out[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1]:
    // 1+4+12+20 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77; plus 0.5.
    const src = "fn f(x: f32[1, 1, 3, 3], w: f32[1, 1, 2, 2], b: f32[1]) -> f32[1, 1, 2, 2] { return conv2d(x, w, b) }";
    await expectBoth(src, "f", { x: IMG, w, b: f32([1], [0.5]) }, [1, 1, 2, 2], [37.5, 47.5, 67.5, 77.5]);
  });
  it("conv2d with stride 2 and padding 1", async () => {
    // Zero border makes a 5x5 image p; windows start at rows/cols 0 and 2:
    // (0,0): 4*p[1][1] = 4; (0,1): 3*p[1][2] + 4*p[1][3] = 6 + 12 = 18; (1,0): 2*p[2][1] + 4*p[3][1] = 8 + 28 = 36;
    // (1,1): p[2][2] + 2p[2][3] + 3p[3][2] + 4p[3][3] = 5 + 12 + 24 + 36 = 77.
    const src = "fn f(x: f32[1, 1, 3, 3], w: f32[1, 1, 2, 2]) -> f32[1, 1, 2, 2] { return conv2d(x, w, stride: 2, padding: [1, 1]) }";
    await expectBoth(src, "f", { x: IMG, w }, [1, 1, 2, 2], [4, 18, 36, 77]);
  });
  it("conv2d with dilation 2: the kernel taps the corners", async () => {
    // 1*x[0][0] + 2*x[0][2] + 3*x[2][0] + 4*x[2][2] = 1 + 6 + 21 + 36 = 64.
    const src = "fn f(x: f32[1, 1, 3, 3], w: f32[1, 1, 2, 2]) -> f32[1, 1, 1, 1] { return conv2d(x, w, dilation: 2) }";
    await expectBoth(src, "f", { x: IMG, w }, [1, 1, 1, 1], [64]);
  });
  it("conv2d with groups: 2 channels, each scaled by its own 1x1 kernel", async () => {
    // groups 2, w [2, 1, 1, 1] = [2, -1]: out channel 0 = 2 * x channel 0, out channel 1 = -x channel 1.
    const src = "fn f(x: f32[1, 2, 2, 2], w: f32[2, 1, 1, 1]) -> f32[1, 2, 2, 2] { return conv2d(x, w, groups: 2) }";
    await expectBoth(src, "f", { x: f32([1, 2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]), w: f32([2, 1, 1, 1], [2, -1]) }, [1, 2, 2, 2], [2, 4, 6, 8, -5, -6, -7, -8]);
  });
  it("max_pool2d, 2x2 windows at stride 1, and with padding 1 (stride = kernel)", async () => {
    // Stride 1: max of each 2x2 block = 5, 6, 8, 9. Padding 1 (never picked), stride 2: windows {1}, {2, 3},
    // {4, 7}, {5, 6, 8, 9} -> 1, 3, 7, 9.
    await expectBoth("fn f(x: f32[1, 1, 3, 3]) -> f32[1, 1, 2, 2] { return max_pool2d(x, 2, stride: 1) }", "f", { x: IMG }, [1, 1, 2, 2], [5, 6, 8, 9]);
    await expectBoth("fn f(x: f32[1, 1, 3, 3]) -> f32[1, 1, 2, 2] { return max_pool2d(x, 2, padding: 1) }", "f", { x: IMG }, [1, 1, 2, 2], [1, 3, 7, 9]);
  });
  it("max_pool2d picks the largest even when every value is negative (padding is -inf, not 0)", async () => {
    const neg = f32([1, 1, 3, 3], [-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    await expectBoth("fn f(x: f32[1, 1, 3, 3]) -> f32[1, 1, 2, 2] { return max_pool2d(x, 2, padding: 1) }", "f", { x: neg }, [1, 1, 2, 2], [-1, -2, -4, -5]);
  });
  it("avg_pool2d counts the padding, like PyTorch's default", async () => {
    // Stride 1: (1+2+4+5)/4 = 3, (2+3+5+6)/4 = 4, (4+5+7+8)/4 = 6, (5+6+8+9)/4 = 7.
    // Padding 1, stride 2: 1/4, (2+3)/4, (4+7)/4, (5+6+8+9)/4 = 0.25, 1.25, 2.75, 7.
    await expectBoth("fn f(x: f32[1, 1, 3, 3]) -> f32[1, 1, 2, 2] { return avg_pool2d(x, [2, 2], stride: 1) }", "f", { x: IMG }, [1, 1, 2, 2], [3, 4, 6, 7]);
    await expectBoth("fn f(x: f32[1, 1, 3, 3]) -> f32[1, 1, 2, 2] { return avg_pool2d(x, 2, padding: 1) }", "f", { x: IMG }, [1, 1, 2, 2], [0.25, 1.25, 2.75, 7]);
  });
  it("flatten keeps the batch axis", async () => {
    await expectBoth("fn f(x: f32[B, 2, 1, 3]) -> f32[B, 6] { return flatten(x) }", "f", { x: f32([2, 2, 1, 3], [...Array(12).keys()]) }, [2, 6], [...Array(12).keys()]);
  });
});

describe("slice with a step (the primitive conv2d's gradients use), from source", () => {
  it("picks every step-th element; its gradient puts them back between zeros", async () => {
    const src = `fn f(x: f32[7]) -> f32[3] { return slice(x, axis: 0, start: 1, end: 7, step: 2) }
fn h(x: f32[7]) -> f32 { return sum(f(x) ** 2) }
fn g(x: f32[7]) -> f32[7] { return grad(h)(x) }`;
    const x = f32([7], [10, 11, 12, 13, 14, 15, 16]);
    await expectBoth(src, "f", { x }, [3], [11, 13, 15]);
    await expectBoth(src, "g", { x }, [7], [0, 22, 0, 26, 0, 30, 0]);
  });
});

interface ConvOpts { stride: number[]; padding: number[]; dilation: number[]; groups: number }

/** PyTorch's conv2d, written out: out[n, o, i, j] = b[o] + sum over the group's channels and kernel taps. */
function directConv(x: number[], [N, C, H, W]: number[], w: number[], [O, Cg, KH, KW]: number[], b: number[] | undefined, o: ConvOpts) {
  const [sh, sw] = o.stride, [ph, pw] = o.padding, [dh, dw] = o.dilation;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / (O / o.groups));
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let s = b ? b[oc] : 0;
          for (let c = 0; c < Cg; c++)
            for (let p = 0; p < KH; p++)
              for (let q = 0; q < KW; q++) {
                const h = i * sh + p * dh - ph, v = j * sw + q * dw - pw;
                if (h < 0 || h >= H || v < 0 || v >= W) continue;
                s += x[((n * C + g * Cg + c) * H + h) * W + v] * w[((oc * Cg + c) * KH + p) * KW + q];
              }
          out.push(s);
        }
    }
  return { out, shape: [N, O, OH, OW] };
}

/** Direct pooling over the padded image (max ignores the padding; avg divides by the full window). */
function directPool(kind: "max" | "avg", x: number[], [N, C, H, W]: number[], k: number, s: number, p: number) {
  const OH = Math.floor((H + 2 * p - k) / s) + 1, OW = Math.floor((W + 2 * p - k) / s) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let acc = kind === "max" ? -Infinity : 0;
          for (let a = 0; a < k; a++)
            for (let bb = 0; bb < k; bb++) {
              const h = i * s + a - p, v = j * s + bb - p;
              const val = h < 0 || h >= H || v < 0 || v >= W ? (kind === "max" ? -Infinity : 0) : x[((n * C + c) * H + h) * W + v];
              acc = kind === "max" ? Math.max(acc, val) : acc + val;
            }
          out.push(kind === "max" ? acc : acc / (k * k));
        }
  return { out, shape: [N, C, OH, OW] };
}

function randoms(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => Math.fround(rng.normal(0, 1)));
}

async function againstDirect(src: string, inputs: Record<string, Input>, want: { out: number[]; shape: number[] }) {
  const { wasm, ref } = await runBoth(irOf(src), "f", inputs);
  expect(wasm[0].shape).toEqual(want.shape);
  want.out.forEach((v, i) => {
    expect(Math.abs(ref[0].data[i] - v), `reference [${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v)));
    expect(Math.abs(Number(wasm[0].data[i]) - v), `wasm [${i}]: ${wasm[0].data[i]} vs ${v}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(v)));
  });
}

describe("conv2d and pooling against a direct loop on random inputs", () => {
  const rng = new Rng(2024);
  it("conv2d with stride [2, 1], padding [1, 2], dilation [2, 1], groups 2, bias; symbolic and known batch", async () => {
    const xs = [2, 4, 7, 6], ws = [6, 2, 3, 2];
    const x = randoms(rng, 2 * 4 * 7 * 6), w = randoms(rng, 6 * 2 * 3 * 2), b = randoms(rng, 6);
    const o = { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 };
    const want = directConv(x, xs, w, ws, b, o);
    const call = "conv2d(x, w, b, stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2)";
    const inputs = { x: f32(xs, x), w: f32(ws, w), b: f32([6], b) };
    await againstDirect(`fn f(x: f32[B, 4, 7, 6], w: f32[6, 2, 3, 2], b: f32[6]) { return ${call} }`, inputs, want);
    await againstDirect(`fn f(x: f32[2, 4, 7, 6], w: f32[6, 2, 3, 2], b: f32[6]) { return ${call} }`, inputs, want);
  });
  it("1x1 conv2d on 8x9 and 4x4 images (the NCHW matmul from 64 pixels, im2col below) with bias; symbolic and known batch", async () => {
    for (const [H, W] of [[8, 9], [4, 4]]) {
      const xs = [3, 6, H, W], ws = [5, 6, 1, 1];
      const x = randoms(rng, 3 * 6 * H * W), w = randoms(rng, 30), b = randoms(rng, 5);
      const want = directConv(x, xs, w, ws, b, { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 });
      const inputs = { x: f32(xs, x), w: f32(ws, w), b: f32([5], b) };
      for (const N of ["B", "3"]) {
        const src = `fn f(x: f32[${N}, 6, ${H}, ${W}], w: f32[5, 6, 1, 1], b: f32[5]) { return relu(conv2d(x, w, b)) }`;
        // The NCHW form has no window (im2col) and no permute; the small image keeps im2col.
        const ops = irOf(src).functions[0]!.nodes.map((n) => n.op);
        expect(ops.includes("window"), `${H}x${W} window`).toBe(H * W < 64);
        await againstDirect(src, inputs, { out: want.out.map((v) => Math.max(v, 0)), shape: want.shape });
      }
    }
  });
  it("conv2d with 3 groups, a 1x3 kernel, stride 3 and no bias", async () => {
    const xs = [1, 3, 4, 11], ws = [6, 1, 1, 3];
    const x = randoms(rng, 3 * 4 * 11), w = randoms(rng, 18);
    const want = directConv(x, xs, w, ws, undefined, { stride: [3, 3], padding: [0, 0], dilation: [1, 1], groups: 3 });
    await againstDirect("fn f(x: f32[1, 3, 4, 11], w: f32[6, 1, 1, 3]) { return conv2d(x, w, stride: 3, groups: 3) }", { x: f32(xs, x), w: f32(ws, w) }, want);
  });
  it("depthwise conv2d (groups = channels = 5, mobilenet's 3x3 stride 2 padding 1) with bias; symbolic and known batch", async () => {
    const xs = [2, 5, 7, 6], ws = [5, 1, 3, 3];
    const x = randoms(rng, 2 * 5 * 7 * 6), w = randoms(rng, 5 * 9), b = randoms(rng, 5);
    const want = directConv(x, xs, w, ws, b, { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 5 });
    const inputs = { x: f32(xs, x), w: f32(ws, w), b: f32([5], b) };
    await againstDirect("fn f(x: f32[B, 5, 7, 6], w: f32[5, 1, 3, 3], b: f32[5]) { return conv2d(x, w, b, stride: 2, padding: 1, groups: 5) }", inputs, want);
    await againstDirect("fn f(x: f32[2, 5, 7, 6], w: f32[5, 1, 3, 3], b: f32[5]) { return conv2d(x, w, b, stride: 2, padding: 1, groups: 5) }", inputs, want);
  });
  for (const kind of ["max", "avg"] as const) {
    it(`${kind}_pool2d with kernel 3, stride 2, padding 1`, async () => {
      const xs = [2, 3, 7, 8];
      const x = randoms(rng, 2 * 3 * 7 * 8);
      await againstDirect(`fn f(x: f32[N, 3, 7, 8]) { return ${kind}_pool2d(x, 3, stride: 2, padding: 1) }`, { x: f32(xs, x) }, directPool(kind, x, xs, 3, 2, 1));
    });
  }
});

describe("diagnostics", () => {
  const diag = (body: string, params = "x: f32[2, 4, 8, 8], w: f32[6, 2, 3, 3]") => {
    const r = compileToIR(`fn f(${params}) {\n  return ${body}\n}`, "bad.kiln");
    expect(r.ir).toBeUndefined();
    return r.diagnostics.map((d) => ({ code: d.code, col: d.span.col, message: d.message, hint: d.hint }));
  };
  it("w's input channels do not match x's (without and with groups)", () => {
    const [d] = diag("conv2d(x, w)");
    expect(d).toMatchObject({ code: "K409", col: 20 });
    expect(d.message).toBe("conv2d: w [6, 2, 3, 3] expects 2 input channels per group, x has 4 channels");
    expect(d.hint).toMatch(/in_channels \/ groups/);
    expect(diag("conv2d(x, w, groups: 4)", "x: f32[2, 4, 8, 8], w: f32[8, 2, 3, 3]")[0].message).toBe("conv2d: w [8, 2, 3, 3] expects 2 input channels per group, x has 4 channels in 4 groups (1 each)");
  });
  it("groups that do not divide the channels", () => {
    const [d] = diag("conv2d(x, w, groups: 3)", "x: f32[2, 6, 8, 8], w: f32[4, 2, 3, 3]");
    expect(d).toMatchObject({ code: "K409", message: "conv2d with groups: 3 needs input channels (6) and output channels (4) divisible by 3" });
    expect(diag("conv2d(x, w, groups: 0)")[0]).toMatchObject({ code: "K410", message: "groups must be at least 1, got 0" });
  });
  it("a kernel that does not fit, bad strides, padding, bias and ranks", () => {
    expect(diag("conv2d(x, w, dilation: 4)", "x: f32[1, 2, 8, 8], w: f32[1, 2, 3, 3]")[0]).toMatchObject({ code: "K410", message: "conv2d: the 3x3 kernel (dilation 4x4) does not fit the 8x8 input with padding 0x0" });
    expect(diag("conv2d(x, w, stride: [1, 0])", "x: f32[1, 2, 8, 8], w: f32[1, 2, 3, 3]")[0]).toMatchObject({ code: "K410", message: "stride must be at least 1, got [1, 0]" });
    expect(diag("conv2d(x, w, padding: -1)", "x: f32[1, 2, 8, 8], w: f32[1, 2, 3, 3]")[0].code).toBe("K410");
    expect(diag("conv2d(x, w, b)", "x: f32[1, 2, 8, 8], w: f32[3, 2, 3, 3], b: f32[2]")[0]).toMatchObject({ code: "K409", message: "b must have shape [3], got f32[2]" });
    expect(diag("conv2d(x, w)", "x: f32[2, 8, 8], w: f32[3, 2, 3, 3]")[0]).toMatchObject({ code: "K409", col: 17 });
    expect(diag("conv2d(x, w)", "x: f32[1, 2, 8, 8], w: f64[3, 2, 3, 3]")[0].code).toBe("K301");
  });
  it("pooling: padding over half the kernel, a window larger than the input; flatten of a vector", () => {
    expect(diag("max_pool2d(x, 2, padding: 2)")[0]).toMatchObject({ code: "K410", message: "max_pool2d: padding [2, 2] is more than half the kernel [2, 2]" });
    expect(diag("avg_pool2d(x, 9)")[0].code).toBe("K410");
    expect(diag("flatten(x)", "x: f32[5]")[0].code).toBe("K403");
  });
});
