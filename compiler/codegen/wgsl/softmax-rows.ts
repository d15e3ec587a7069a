// Codegen stage (WGSL): softmax / log_softmax rows (kernel.ts "softmax_rows"). One workgroup per row (looping when
// there are more rows than one dispatch allows), as the reduce kernels it replaces: the invocations stride over the
// row for its max, then for the sum of exp(x - max) (softmax stores each exp), each combined in a workgroup-memory
// tree; then each invocation rewrites the elements it wrote itself, so no barrier is needed before that pass.
import { softmaxRowsBuffers, type EwExpr, type SoftmaxRowsKernel } from "../kernel.js";
import type { AttrsOf, PrimOp } from "../../ops/types.js";
import type { HelperName } from "./prelude.js";
import { renderExpr } from "./elementwise.js";
import { indent, type KernelShader } from "./shader.js";
import { REDUCE_WORKGROUP } from "./reduce.js";

const op = (name: PrimOp, args: EwExpr[]): EwExpr => ({ t: "op", op: name, attrs: {} as AttrsOf[PrimOp], dtype: "f32", args });

/**
 * Bindings (inp, out); params rows, cols; both contiguous f32 [rows, cols]. With `saves`: (inp, [out,] [exps,]
 * [maxes,] sums) (kernel.ts softmaxRowsBuffers), the exps and each row's max and sum stored too, out = exps / sum.
 */
export function renderSoftmaxRows(name: string, k: SoftmaxRowsKernel): KernelShader {
  const W = REDUCE_WORKGROUP;
  const helpers = new Set<HelperName>(["max_f32", "inf"]);
  const expr = op("exp", [op("sub", [{ t: "in", index: 0 }, { t: "in", index: 1 }])]);
  const ex = renderExpr({ kind: "elementwise", rank: 1, inputs: [{ dtype: "f32", bcast: [false] }, { dtype: "f32", bcast: [true] }], out: "f32", expr }, [{ name: "e", dtype: "f32", expr }], helpers, (i) => (i === 0 ? "x" : "mx"));
  const lexpr = op("log", [{ t: "in", index: 0 }]);
  const lg = renderExpr({ kind: "elementwise", rank: 1, inputs: [{ dtype: "f32", bcast: [false] }], out: "f32", expr: lexpr }, [{ name: "l", dtype: "f32", expr: lexpr }], helpers, () => "s");
  const tree = (combine: (a: string, b: string) => string, into: string) => [
    `partial[lid.x] = acc;`,
    `workgroupBarrier();`,
    `for (var w = ${W / 2}u; w > 0u; w = w >> 1u) {`,
    `  if (lid.x < w) { partial[lid.x] = ${combine("partial[lid.x]", "partial[lid.x + w]")}; }`,
    `  workgroupBarrier();`,
    `}`,
    `let ${into} = partial[0];`,
    // partial[0] must be read by every invocation before it is overwritten.
    `workgroupBarrier();`,
  ];
  const softmax = k.mode === "softmax";
  const saves = softmax && k.saves !== undefined;
  const bufs = softmaxRowsBuffers(k);
  const hasOut = bufs.includes("out");
  const ebuf = saves ? "exps" : "out";
  const storeExps = softmax && (!saves || bufs.includes("exps"));
  const body = [
    ...ex.consts,
    ...lg.consts,
    `for (var row = wid.x; row < p.rows; row = row + nwg.x) {`,
    `  let base = row * p.cols;`,
    `  var acc = kiln_inf(true);`,
    `  for (var j = lid.x; j < p.cols; j = j + ${W}u) { acc = kiln_max_f32(acc, inp[base + j]); }`,
    ...indent(tree((a, b) => `kiln_max_f32(${a}, ${b})`, "mx")),
    ...(bufs.includes("maxes") ? [`  if (lid.x == 0u) { maxes[row] = mx; }`] : []),
    `  acc = 0.0f;`,
    `  for (var j = lid.x; j < p.cols; j = j + ${W}u) {`,
    `    let x = inp[base + j];`,
    ...indent(ex.stmts, 2),
    ...(storeExps ? [`    ${ebuf}[base + j] = ${ex.results[0]!};`] : []),
    `    acc = acc + ${ex.results[0]!};`,
    `  }`,
    ...indent(tree((a, b) => `${a} + ${b}`, "s")),
    ...(saves ? [`  if (lid.x == 0u) { sums[row] = s; }`] : []),
    ...(!hasOut ? [] : softmax
      ? [`  for (var j = lid.x; j < p.cols; j = j + ${W}u) { out[base + j] = ${ebuf}[base + j] / s; }`]
      : [
        `  var ls: f32;`,
        `  {`,
        ...indent(lg.stmts, 2),
        `    ls = ${lg.results[0]!};`,
        `  }`,
        `  for (var j = lid.x; j < p.cols; j = j + ${W}u) { out[base + j] = (inp[base + j] - mx) - ls; }`,
      ]),
    `}`,
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: ${k.mode} over the last axis of f32[rows, cols]${saves ? `, storing the ${bufs.filter((b) => b !== "out").join(", ")}` : ""}`,
      `one workgroup per row, ${W} invocations, max and sum as tree reductions in workgroup memory`,
    ],
    params: ["rows", "cols"],
    buffers: [{ name: "inp", elem: "f32", write: false }, ...bufs.map((b) => ({ name: b, elem: "f32" as const, write: true }))],
    helpers,
    decls: [`var<workgroup> partial: array<f32, ${W}>;`],
    workgroup: [W, 1, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: W * 4,
    grid: [{ ints: [0], per: 1 }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
