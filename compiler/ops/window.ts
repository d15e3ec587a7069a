// Op registry, convolution primitives: pad (with XLA-style interior padding) and window (im2col as a view).
// conv2d and the pools are composites over these (conv.ts); the planner runs both as strided copies.

import { addDim, floorDivDim, scaleDim } from "../ir/dim-expr.js";
import { formatShape, type Dim } from "../ir/types.js";
import { makeRef, stridesOf } from "./shape-utils.js";
import type { AttrsOf, InferResult, OpCore } from "./types.js";

const posInt = (v: number) => Number.isInteger(v) && v >= 1;
const natInt = (v: number) => Number.isInteger(v) && v >= 0;

export const padCore: OpCore<"pad"> = {
  name: "pad",
  arity: 1,
  infer([x], a): InferResult {
    if (a.pads.length !== x.shape.length) {
      return { error: "K410", message: `pad needs one [lo, hi, interior] per axis of ${formatShape(x.shape)}, got ${a.pads.length}` };
    }
    const shape: Dim[] = [];
    for (let k = 0; k < a.pads.length; k++) {
      const [lo, hi, interior] = a.pads[k];
      const d = x.shape[k];
      if (!(natInt(lo) && natInt(hi) && natInt(interior))) return { error: "K410", message: `pad amounts must be integers >= 0, got [${lo}, ${hi}, ${interior}] on axis ${k}` };
      if (lo === 0 && hi === 0 && interior === 0) {
        shape.push(d);
        continue;
      }
      if (typeof d !== "number") {
        // A symbolic axis grows by lo + hi (a slice's gradient) and, with interior zeros (a strided window's
        // gradient), to (d - 1) (interior + 1) + 1 + lo + hi.
        const grown = addDim(scaleDim(d, interior + 1), lo + hi - interior);
        if (grown === undefined) return { error: "K410", message: `cannot pad symbolic dimension ${d} with [${lo}, ${hi}, ${interior}]`, hint: "pad only axes whose size is known at compile time" };
        shape.push(grown);
        continue;
      }
      shape.push(lo + hi + d + (d - 1) * interior);
    }
    return { dtype: x.dtype, shape };
  },
  evaluate([x], a, out) {
    const r = makeRef(out.dtype, out.shape);
    r.data.fill(a.value);
    const inSt = stridesOf(x.shape);
    const outSt = stridesOf(out.shape);
    for (let i = 0; i < x.data.length; i++) {
      let o = 0;
      for (let k = 0; k < x.shape.length; k++) {
        const idx = Math.floor(i / inSt[k]) % x.shape[k];
        o += (a.pads[k][0] + idx * (a.pads[k][2] + 1)) * outSt[k];
      }
      r.data[o] = x.data[i];
    }
    return r;
  },
};

/** Output size of a window along one axis (PyTorch's formula without padding); < 1 when it does not fit. */
/** windowOut for a symbolic size too: floor((size - dilation (kernel - 1) - 1) / stride) + 1 as a derived dim. */
export function windowOutDim(size: Dim, kernel: number, stride: number, dilation: number): Dim {
  if (typeof size === "number") return windowOut(size, kernel, stride, dilation);
  // + 1 folded into the division (+ stride) so that a 2x2 window at stride 2 reads "H/2".
  return floorDivDim(addDim(size, stride - dilation * (kernel - 1) - 1)!, stride);
}

export function windowOut(size: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size - dilation * (kernel - 1) - 1) / stride) + 1;
}

function checkWindow(a: AttrsOf["window"]): string | undefined {
  for (const [name, v] of [["kernel", a.kernel], ["stride", a.stride], ["dilation", a.dilation]] as const) {
    if (v.length !== 2 || !v.every(posInt)) return `${name} must be two positive integers, got [${v.join(", ")}]`;
  }
  return undefined;
}

export const windowCore: OpCore<"window"> = {
  name: "window",
  arity: 1,
  infer([x], a): InferResult {
    if (x.shape.length !== 4) return { error: "K409", message: `window needs x [N, C, H, W], got ${formatShape(x.shape)}` };
    const bad = checkWindow(a);
    if (bad) return { error: "K410", message: `window: ${bad}` };
    const [n, c, h, w] = x.shape;
    if (typeof h !== "number" || typeof w !== "number") {
      // A symbolic H or W: the output is a derived dim, floor((H - span - 1) / stride) + 1 ("(H+1)/2").
      const out = (d: Dim, k: 0 | 1) => windowOutDim(d, a.kernel[k], a.stride[k], a.dilation[k]);
      const [oh, ow] = [out(h!, 0), out(w!, 1)];
      if ((typeof oh === "number" && oh < 1) || (typeof ow === "number" && ow < 1)) return { error: "K410", message: `the window does not fit ${formatShape(x.shape)}` };
      return { dtype: x.dtype, shape: [n!, oh, ow, c!, a.kernel[0], a.kernel[1]] };
    }
    const oh = windowOut(h, a.kernel[0], a.stride[0], a.dilation[0]);
    const ow = windowOut(w, a.kernel[1], a.stride[1], a.dilation[1]);
    if (oh < 1 || ow < 1) {
      const span = (k: number) => a.dilation[k] * (a.kernel[k] - 1) + 1;
      return { error: "K410", message: `a ${span(0)}x${span(1)} window (kernel ${a.kernel.join("x")}, dilation ${a.dilation.join("x")}) does not fit the ${h}x${w} input`, hint: "use a smaller kernel or dilation, or more padding" };
    }
    return { dtype: x.dtype, shape: [n, oh, ow, c, a.kernel[0], a.kernel[1]] };
  },
  evaluate([x], a, out) {
    const r = makeRef(out.dtype, out.shape);
    const [N, OH, OW, C, KH, KW] = out.shape;
    const [, , H, W] = x.shape;
    let o = 0;
    for (let n = 0; n < N; n++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++)
          for (let c = 0; c < C; c++)
            for (let p = 0; p < KH; p++)
              for (let q = 0; q < KW; q++) {
                const h = i * a.stride[0] + p * a.dilation[0];
                const w = j * a.stride[1] + q * a.dilation[1];
                r.data[o++] = x.data[((n * C + c) * H + h) * W + w];
              }
    return r;
  },
};
