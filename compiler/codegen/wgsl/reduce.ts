// Codegen stage (WGSL): reduce kernels (sum, mean, max, min over any set of axes). One workgroup per output
// element (looping when there are more outputs than one dispatch allows): its invocations stride over the
// reduced elements, then combine their partial results in a workgroup-memory tree.
import type { ReduceKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { i32Literal, wgslType } from "./values.js";
import { indent, productOf, unflatten, type KernelShader } from "./shader.js";

export const REDUCE_WORKGROUP = 64;

interface Combine {
  identity: string;
  combine: (a: string, b: string) => string;
}

function combiner(k: ReduceKernel, helpers: Set<HelperName>): Combine {
  const f = k.dtype === "f32";
  switch (k.op) {
    case "sum": case "mean":
      return { identity: f ? "0.0f" : "0i", combine: (a, b) => `${a} + ${b}` };
    case "max":
    case "min": {
      const fn = k.op;
      if (!f) return { identity: i32Literal(fn === "max" ? -2147483648 : 2147483647), combine: (a, b) => `${fn}(${a}, ${b})` };
      helpers.add(`${fn}_f32`);
      helpers.add("inf");
      return { identity: `kiln_inf(${fn === "max"})`, combine: (a, b) => `kiln_${fn}_f32(${a}, ${b})` };
    }
  }
}

/** Bindings (in, out); params ext_0..ext_{rank-1}; out is contiguous over the kept axes. */
export function renderReduce(name: string, k: ReduceKernel): KernelShader {
  if (k.dtype !== "f32" && k.dtype !== "i32") {
    wgslType(k.dtype);
    throw new Error(`wgsl backend: reduce ${k.op} over ${k.dtype} is not supported`);
  }
  if (k.op === "mean" && k.dtype !== "f32") throw new Error(`wgsl backend: mean needs f32, got ${k.dtype}`);
  if (k.reduced.length !== k.rank) throw new Error(`wgsl backend: reduce has ${k.reduced.length} flags for rank ${k.rank}`);
  const T = wgslType(k.dtype);
  const W = REDUCE_WORKGROUP;
  const helpers = new Set<HelperName>();
  const op = combiner(k, helpers);
  const axes = Array.from({ length: k.rank }, (_, a) => a);
  const kept = axes.filter((a) => !k.reduced[a]);
  const red = axes.filter((a) => k.reduced[a]);
  const e = (a: number) => `e${a}`;
  const s = (a: number) => `s${a}`;
  // Row-major strides of the (contiguous) input.
  const strides = axes.slice().reverse().map((a) => (a === k.rank - 1 ? `let s${a} = 1u;` : `let s${a} = s${a + 1} * e${a + 1};`));
  const offset = (list: number[], idx: (a: number) => string) => (list.length ? list.map((a) => `${idx(a)} * ${s(a)}`).join(" + ") : "0u");
  const finish = k.op === "mean" ? `partial[0] / f32(count)` : "partial[0]";
  const tree = [
    `partial[lid.x] = acc;`,
    `workgroupBarrier();`,
    `for (var w = ${W / 2}u; w > 0u; w = w >> 1u) {`,
    `  if (lid.x < w) { partial[lid.x] = ${op.combine("partial[lid.x]", "partial[lid.x + w]")}; }`,
    `  workgroupBarrier();`,
    `}`,
    `if (lid.x == 0u) { out[row] = ${finish}; }`,
    // partial[0] must be read before the next row overwrites it.
    `workgroupBarrier();`,
  ];
  const body = [
    ...axes.map((a) => `let ${e(a)} = p.ext_${a};`),
    ...strides,
    `let rows = ${productOf(kept.map(e))};`,
    `let count = ${productOf(red.map(e))};`,
    `for (var row = wid.x; row < rows; row = row + nwg.x) {`,
    ...indent(unflatten("row", kept.map((a) => `k${a}`), kept.map(e), "q")),
    `  let base = ${offset(kept, (a) => `k${a}`)};`,
    `  var acc: ${T} = ${op.identity};`,
    `  for (var j = lid.x; j < count; j = j + ${W}u) {`,
    ...indent(unflatten("j", red.map((a) => `r${a}`), red.map(e), "t"), 2),
    `    acc = ${op.combine("acc", `inp[base + ${offset(red, (a) => `r${a}`)}]`)};`,
    `  }`,
    ...indent(tree),
    `}`,
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: ${k.op} of inp: ${k.dtype}[${axes.map((a) => `ext_${a}`).join(", ")}] over axes ${red.join(", ") || "none"}`,
      `one workgroup per output element, ${W} invocations, tree reduction in workgroup memory`,
    ],
    params: axes.map((a) => `ext_${a}`),
    buffers: [{ name: "inp", elem: T, write: false }, { name: "out", elem: T, write: true }],
    helpers,
    decls: [`var<workgroup> partial: array<${T}, ${W}>;`],
    workgroup: [W, 1, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: W * 4,
    grid: [{ ints: kept, per: 1 }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
