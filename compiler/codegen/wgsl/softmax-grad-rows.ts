// Codegen stage (WGSL): softmax / log_softmax backward rows (kernel.ts "softmax_grad_rows"). One workgroup per row
// (looping when there are more rows than one dispatch allows), as the forward's row kernel (softmax-rows.ts): the
// invocations stride over the row summing the `sum` expression, combined in a workgroup-memory tree; invocation 0's
// per-row value is read by all, then each invocation writes out over its own columns.
import type { EwExpr, SoftmaxGradRowsKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { renderExpr } from "./elementwise.js";
import { indent, type KernelShader } from "./shader.js";
import { bindingElem } from "./half.js";
import { REDUCE_WORKGROUP } from "./reduce.js";

/** Bindings (in_0, ..., in_{n-1}, out); params outer, rows, cols; inputs and out as kernel.ts says (a bool tile as i32 words). */
export function renderSoftmaxGradRows(name: string, k: SoftmaxGradRowsKernel): KernelShader {
  const W = REDUCE_WORKGROUP;
  const n = k.inputs.length;
  const helpers = new Set<HelperName>();
  const inputs = [...k.inputs.map((i) => ({ dtype: i.dtype, bcast: [i.layout === "one" || i.layout === "tile", i.layout === "one" || i.layout === "row"] })), { dtype: "f32" as const, bcast: [false, true] }];
  // Input n: the row's sum in the row expression, the per-row value in the out expression.
  const at = (nth: string) => (i: number) => (i === n ? nth : ({ row: `in${i}[row]`, one: `in${i}[0]`, tile: `in${i}[(row % p.rows) * p.cols + j]`, full: `in${i}[base + j]` })[k.inputs[i]!.layout]);
  // Each expression in its own block: renderExpr names its lets and constants from 0 each time.
  const block = (expr: EwExpr, into: string, nth = "rv"): string[] => {
    const r = renderExpr({ kind: "elementwise", rank: 2, inputs, out: "f32", expr }, [{ name: "r", dtype: "f32", expr }], helpers, at(nth));
    return [`{`, ...indent([...r.consts, ...r.stmts, `${into}${r.results[0]!};`]), `}`];
  };
  const body = [
    `for (var row = wid.x; row < p.outer * p.rows; row = row + nwg.x) {`,
    `  let base = row * p.cols;`,
    `  var acc = 0.0f;`,
    `  for (var j = lid.x; j < p.cols; j = j + ${W}u) {`,
    ...indent(block(k.sum, "acc = acc + "), 2),
    `  }`,
    `  partial[lid.x] = acc;`,
    `  workgroupBarrier();`,
    `  for (var w = ${W / 2}u; w > 0u; w = w >> 1u) {`,
    `    if (lid.x < w) { partial[lid.x] = partial[lid.x] + partial[lid.x + w]; }`,
    `    workgroupBarrier();`,
    `  }`,
    `  let s = partial[0];`,
    // partial[0] must be read by every invocation before the next row overwrites it.
    `  workgroupBarrier();`,
    `  var rv: f32;`,
    ...indent(block(k.row, "rv = ", "s")),
    `  for (var j = lid.x; j < p.cols; j = j + ${W}u) {`,
    `    var o: f32;`,
    ...indent(block(k.out, "o = "), 2),
    `    out[base + j] = o;`,
    `  }`,
    `}`,
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: softmax / log_softmax backward over the last axis of f32[rows, cols], ${n} inputs`,
      `one workgroup per row, ${W} invocations, the row sum as a tree reduction in workgroup memory`,
    ],
    params: ["outer", "rows", "cols"],
    buffers: [...k.inputs.map((inp, i) => ({ name: `in${i}`, elem: bindingElem(inp.dtype, "packed"), write: false })), { name: "out", elem: "f32" as const, write: true }],
    helpers,
    decls: [`var<workgroup> partial: array<f32, ${W}>;`],
    workgroup: [W, 1, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: W * 4,
    grid: [{ ints: [0, 1], per: 1 }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
