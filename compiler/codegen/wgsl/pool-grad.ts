// Codegen stage (WGSL): max_pool2d's input gradient as one scatter (kernel.ts: maxpool_grad), one invocation per
// window (grid-stride): the window's max (kiln_max_f32, NaN-propagating), its first tap equal to it, dy there and 0
// at the other taps; a NaN window sends none, as on wasm.
import type { MaxPoolGradKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { EW_WORKGROUP } from "./elementwise.js";
import { planePixelLoop, type KernelShader } from "./shader.js";

/** Bindings (x, dy, dx); params planes (N * C), pixels (OH * OW, for the grid); f32. */
export function renderMaxPoolGrad(name: string, k: MaxPoolGradKernel): KernelShader {
  const { OH, OW, KH, KW } = k;
  const loop = planePixelLoop(OH * OW, EW_WORKGROUP);
  const W = OW * KW, H = OH * KH, K = KH * KW;
  return {
    name,
    about: [`Kiln kernel ${name}: max_pool2d's input gradient, ${KH}x${KW} windows tiling ${H}x${W} (${OH}x${OW} windows per plane)`],
    params: ["planes", "pixels"],
    buffers: [{ name: "x", elem: "f32", write: false }, { name: "dy", elem: "f32", write: false }, { name: "dx", elem: "f32", write: true }],
    helpers: new Set<HelperName>(["max_f32", "inf"]),
    workgroup: loop.workgroup,
    builtins: loop.builtins,
    body: [
      ...loop.head,
      `  let base = pl * ${H * W}u + (r / ${OW}u) * ${KH * W}u + (r % ${OW}u) * ${KW}u;`,
      `  var mx = kiln_inf(true);`,
      `  for (var t = 0u; t < ${K}u; t = t + 1u) { mx = kiln_max_f32(mx, x[base + (t / ${KW}u) * ${W}u + t % ${KW}u]); }`,
      `  var best = ${K}u;`,
      `  for (var t = ${K}u; t > 0u; t = t - 1u) { if (x[base + ((t - 1u) / ${KW}u) * ${W}u + (t - 1u) % ${KW}u] == mx) { best = t - 1u; } }`,
      `  let g = dy[e];`,
      `  for (var t = 0u; t < ${K}u; t = t + 1u) { dx[base + (t / ${KW}u) * ${W}u + t % ${KW}u] = select(0.0, g, t == best); }`,
      `}`,
    ],
    workgroupBytes: 0,
    grid: loop.grid,
  };
}
