// depthwise_conv2d (conv2d with groups = channels, ops/depthwise.ts) on wasm, plain and relaxed SIMD, and in the
// reference: outputs and gradients against PyTorch's (test/ops/torch-depthwise-goldens.json from
// scripts/torch-depthwise-goldens.py: strides 1, 2, 3 and [1, 2], padding, dilation, 3x3/5x5/3x2 kernels, channel
// counts that are not multiples of 4, batch 1 to 3); and row widths that put every column of the SIMD kernel's
// head, 4-pixel middle and tail through it, against the reference.
import { describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { relaxedSimdSupported } from "../../runtime/wasm/backend.js";
import { expectClose, graphOf, irOf, lcgInput, type Input } from "../helpers/backend.js";
import { DEPTHWISE_GOLDENS, depthwiseInputs, depthwiseProgram } from "../helpers/depthwise-goldens.js";

function close(got: ArrayLike<number>, want: readonly number[], what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  want.forEach((v, i) => {
    const g = Number(got[i]);
    if (!(Math.abs(g - v) <= 1e-5 + 1e-5 * Math.abs(v))) throw new Error(`${what}[${i}] = ${g}, PyTorch gives ${v}`);
  });
}

// The relaxed build too where the engine has relaxed SIMD (depthwise.relaxed.test.ts runs this file that way).
const VARIANTS = ["plain", ...(relaxedSimdSupported() ? ["relaxed"] : [])] as const;

async function modules(src: string): Promise<{ variant: string; mod: KilnModule }[]> {
  const b = await buildWasm(irOf(src), "test");
  return Promise.all(VARIANTS.map(async (variant) => ({ variant, mod: await loadKilnModule(b.manifest, b.wasm, variant === "relaxed" ? { relaxedWasm: b.wasmRelaxed } : {}) })));
}

const tensors = (inputs: Record<string, Input>) => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(v.dtype, v.shape, v.data)]));

describe("depthwise conv2d against PyTorch (wasm plain and relaxed, reference)", () => {
  for (const c of DEPTHWISE_GOLDENS) {
    it(`${c.name}: conv2d(x [${c.shapes.x}], w [${c.shapes.w}], ${c.options})`, async () => {
      const src = depthwiseProgram(c);
      const ir = irOf(src);
      // The direct primitive, not the window composite, and no im2col window in the forward.
      const fwdOps = graphOf(ir, "fwd").nodes.map((n) => n.op);
      expect(fwdOps).toContain("depthwise_conv2d");
      expect(fwdOps).not.toContain("window");
      const ref = evaluateGraph(graphOf(ir, "fwd"), depthwiseInputs(c, false))[0]!;
      close(ref.data, c.y, `${c.name} reference output`);
      const refGrads = evaluateGraph(graphOf(ir, "grads"), depthwiseInputs(c, true));
      Object.keys(c.shapes).forEach((n, k) => close(refGrads[k]!.data, c.grads[n]!, `${c.name} reference d/d${n}`));
      for (const { variant, mod } of await modules(src)) {
        const y = mod.call("fwd", tensors(depthwiseInputs(c, false))) as Tensor;
        expect(y.shape).toEqual(c.outShape);
        close(y.data as ArrayLike<number>, c.y, `${c.name} wasm ${variant} output`);
        const g = mod.call("grads", tensors(depthwiseInputs(c, true))) as Tensor[];
        Object.keys(c.shapes).forEach((n, k) => close(g[k]!.data as ArrayLike<number>, c.grads[n]!, `${c.name} wasm ${variant} d/d${n}`));
        mod.dispose();
      }
    });
  }
});

describe("depthwise conv2d kernel columns against the reference", () => {
  // Widths 1..13 at stride 1 and 2 with padding 0..2: the SIMD middle is empty, one vector, or vectors plus
  // scalar tails, and the padded head and tail columns cover 0..2 pixels; at stride 1, rows of at most 4 pixels
  // (widths up to 4, outputs up to 4) take the one-vector-per-row path. A symbolic batch (B = 3) too.
  for (const stride of [1, 2]) {
    for (const padding of [0, 1, 2]) {
      it(`3x3, stride ${stride}, padding ${padding}, widths ${Math.max(1, 3 - 2 * padding)}..13`, async () => {
        for (let W = Math.max(1, 3 - 2 * padding); W <= 13; W++) {
          const src = `fn f(x: f32[B, 6, 5, ${W}], w: f32[6, 1, 3, 3], b: f32[6]) { return conv2d(x, w, b, stride: ${stride}, padding: ${padding}, groups: 6) }`;
          const ir = irOf(src);
          const inputs = { x: lcgInput([3, 6, 5, W], W + 7 * padding), w: lcgInput([6, 1, 3, 3], 11 + stride), b: lcgInput([6], 5) };
          const ref = evaluateGraph(graphOf(ir, "f"), inputs, {}, { B: 3 })[0]!;
          for (const { variant, mod } of await modules(src)) {
            expectClose(mod.call("f", tensors(inputs)) as Tensor, ref, `W ${W} ${variant}`, 1e-5, 1e-5);
            mod.dispose();
          }
        }
      });
    }
  }
});
