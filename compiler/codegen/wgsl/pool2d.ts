// Codegen stage (WGSL): the direct pooling kernel (kernel.ts: pool2d), one invocation per output element
// (grid-stride), the geometry baked in as constants; taps outside the image are skipped (max's -inf / avg's 0
// padding), a fused producer (the prologue) evaluated per tap. max is NaN-propagating (kiln_max_f32) as on wasm.
import type { EwExpr, Pool2dKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { EW_WORKGROUP, renderExpr } from "./elementwise.js";
import { planePixelLoop, type KernelShader } from "./shader.js";

/** Bindings (in_0, ..., in_{n-1}, out) or (x, out); params planes (N * C), pixels (OH * OW, for the grid); f32. */
export function renderPool2d(name: string, k: Pool2dKernel): KernelShader {
  const { C, H, W, OH, OW, KH, KW, top, left } = k;
  const loop = planePixelLoop(OH * OW, EW_WORKGROUP);
  const [sh, sw] = k.stride;
  const pro = k.prologue ?? { inputs: [{ dtype: "f32" as const, bcast: [false, false, false, false] }], expr: { t: "in", index: 0 } as EwExpr };
  const helpers = new Set<HelperName>();
  const isMax = k.op === "max";
  if (isMax) helpers.add("max_f32").add("inf");
  const ek = { kind: "elementwise" as const, rank: 4, inputs: pro.inputs, out: "f32" as const, expr: pro.expr };
  const ex = renderExpr(ek, [{ name: "value", dtype: "f32", expr: pro.expr }], helpers, (i) => `x${i}`);
  // Element offset of input i at (img, ch, ih, iw) through its broadcast flags.
  const at = (i: number): string => {
    const [bn, bc, bh, bw] = pro.inputs[i]!.bcast;
    const eW = bw ? 1 : W, eH = bh ? 1 : H, eC = bc ? 1 : C;
    const terms = [bn ? "" : `img * ${eC * eH * eW}`, bc ? "" : `ch * ${eH * eW}`, bh ? "" : `ih * ${eW}`, bw ? "" : "iw"].filter(Boolean);
    return terms.length ? terms.join(" + ") : "0";
  };
  const loads = pro.inputs.map((_, i) => `let x${i} = in_${i}[${at(i)}];`);
  return {
    name,
    about: [`Kiln kernel ${name}: ${k.op} pooling ${KH}x${KW}, stride ${sh}x${sw}, padding top ${top} left ${left}, ${C} channels, ${H}x${W} -> ${OH}x${OW}${k.prologue ? ", of a fused expression" : ""}`],
    params: ["planes", "pixels"],
    buffers: [...pro.inputs.map((_, i) => ({ name: `in_${i}`, elem: "f32" as const, write: false })), { name: "out", elem: "f32", write: true }],
    helpers,
    workgroup: loop.workgroup,
    builtins: loop.builtins,
    body: [
      ...ex.consts,
      ...loop.head,
      `  let oh = i32(r / ${OW}u);`,
      `  let ow = i32(r % ${OW}u);`,
      `  let img = i32(pl / ${C}u);`,
      `  let ch = i32(pl % ${C}u);`,
      `  var acc = ${isMax ? "kiln_inf(true)" : "0.0"};`,
      `  for (var kh = 0; kh < ${KH}; kh = kh + 1) {`,
      `    let ih = oh * ${sh} + kh - ${top};`,
      `    if (ih < 0 || ih >= ${H}) { continue; }`,
      `    for (var kw = 0; kw < ${KW}; kw = kw + 1) {`,
      `      let iw = ow * ${sw} + kw - ${left};`,
      `      if (iw >= 0 && iw < ${W}) {`,
      ...[...loads, ...ex.stmts].map((l) => `        ${l}`),
      `        acc = ${isMax ? `kiln_max_f32(acc, ${ex.results[0]!})` : `acc + ${ex.results[0]!}`};`,
      `      }`,
      `    }`,
      `  }`,
      `  out[e] = ${isMax ? "acc" : `acc / ${KH * KW}.0`};`,
      `}`,
    ],
    workgroupBytes: 0,
    grid: loop.grid,
  };
}
