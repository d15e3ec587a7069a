// Codegen stage (WGSL): the direct depthwise convolution kernel (kernel.ts: depthwise_conv2d), one invocation per
// output element (grid-stride), the geometry baked in as constants; taps outside the image are skipped (that is
// the padding) and summed in (kh, kw) order as on wasm.
import type { DepthwiseKernel } from "../kernel.js";
import { EW_WORKGROUP } from "./elementwise.js";
import { planePixelLoop, type KernelShader } from "./shader.js";

/** Bindings (x, w, out); params planes (N * C), pixels (OH * OW, for the grid); f32. */
export function renderDepthwise(name: string, k: DepthwiseKernel): KernelShader {
  const { C, H, W, OH, OW, KH, KW, top, left } = k;
  const loop = planePixelLoop(OH * OW, EW_WORKGROUP);
  const [sh, sw] = k.stride, [dh, dw] = k.dilation;
  return {
    name,
    about: [`Kiln kernel ${name}: depthwise conv2d, ${KH}x${KW} filter per channel (${C}), ${H}x${W} -> ${OH}x${OW}`, `stride ${sh}x${sw}, dilation ${dh}x${dw}, padding top ${top} left ${left}`],
    params: ["planes", "pixels"],
    buffers: [{ name: "x", elem: "f32", write: false }, { name: "w", elem: "f32", write: false }, { name: "out", elem: "f32", write: true }],
    helpers: new Set(),
    workgroup: loop.workgroup,
    builtins: loop.builtins,
    body: [
      ...loop.head,
      `  let oh = i32(r / ${OW}u);`,
      `  let ow = i32(r % ${OW}u);`,
      `  let xb = i32(pl) * ${H * W};`,
      `  let wb = i32(pl % ${C}u) * ${KH * KW};`,
      `  var acc = 0.0;`,
      `  for (var kh = 0; kh < ${KH}; kh = kh + 1) {`,
      `    let ih = oh * ${sh} + kh * ${dh} - ${top};`,
      `    if (ih < 0 || ih >= ${H}) { continue; }`,
      `    for (var kw = 0; kw < ${KW}; kw = kw + 1) {`,
      `      let iw = ow * ${sw} + kw * ${dw} - ${left};`,
      `      if (iw >= 0 && iw < ${W}) {`,
      `        acc = acc + x[xb + ih * ${W} + iw] * w[wb + kh * ${KW} + kw];`,
      `      }`,
      `    }`,
      `  }`,
      `  out[e] = acc;`,
      `}`,
    ],
    workgroupBytes: 0,
    grid: loop.grid,
  };
}
