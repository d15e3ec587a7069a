// Codegen stage (WGSL): reduce kernels (sum, mean, max, min over any set of axes). One workgroup per output
// element (looping when there are more outputs than one dispatch allows): its invocations stride over the
// reduced elements, then combine their partial results in a workgroup-memory tree.
import type { EwExpr, ReduceKernel } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { i32Literal, wgslType } from "./values.js";
import { bindingElem, loadElem, storeElem, type HalfMode } from "./half.js";
import { indent, productOf, unflatten, type KernelShader } from "./shader.js";
import { renderExpr } from "./elementwise.js";
import { flagCheck, withFlag } from "./finite.js";

export const REDUCE_WORKGROUP = 64;

interface Combine {
  identity: string;
  combine: (a: string, b: string) => string;
}

function combiner(k: ReduceKernel, helpers: Set<HelperName>): Combine {
  const f = wgslType(k.dtype) === "f32";
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

/**
 * Bindings (in, out), or (in_0, ..., in_{n-1}, out) with a prologue (the value reduced is its expression over
 * the inputs, each indexed through its broadcast flags); params ext_0..ext_{rank-1}; out is contiguous over
 * the kept axes. f16/bf16 data (half.ts,
 * `mode` says how f16 is bound) accumulates in f32 and is rounded once when stored. With `flag`, one more binding
 * after out (or `stored`): each result is checked as stored to out (finite.ts).
 */
export function renderReduce(name: string, k: ReduceKernel, mode: HalfMode = "packed"): KernelShader {
  if (k.dtype !== "f32" && k.dtype !== "i32" && k.dtype !== "f16" && k.dtype !== "bf16") {
    wgslType(k.dtype);
    throw new Error(`wgsl backend: reduce ${k.op} over ${k.dtype} is not supported`);
  }
  if (k.op === "mean" && wgslType(k.dtype) !== "f32") throw new Error(`wgsl backend: mean needs f32, got ${k.dtype}`);
  if (k.reduced.length !== k.rank) throw new Error(`wgsl backend: reduce has ${k.reduced.length} flags for rank ${k.rank}`);
  const T = wgslType(k.dtype);
  const W = REDUCE_WORKGROUP;
  const helpers = new Set<HelperName>();
  const op = combiner(k, helpers);
  const use = (h: HelperName) => void helpers.add(h);
  const pro = k.prologue ?? { inputs: [{ dtype: k.dtype, bcast: k.reduced.map(() => false) }], expr: { t: "in", index: 0 } as EwExpr };
  const inName = (i: number) => (k.prologue ? `in_${i}` : "inp");
  /** Element `at` of input i (every input read goes through here). */
  const loadInput = (i: number, at: string): string => loadElem(pro.inputs[i]!.dtype, mode, inName(i), at, use);
  const axes = Array.from({ length: k.rank }, (_, a) => a);
  const kept = axes.filter((a) => !k.reduced[a]);
  const red = axes.filter((a) => k.reduced[a]);
  const e = (a: number) => `e${a}`;
  // Row-major strides of each (contiguous) input over its non-broadcast axes: s<i>_<axis>.
  const strides: string[] = [];
  pro.inputs.forEach((inp, i) => {
    let acc = "1u";
    for (let a = k.rank - 1; a >= 0; a--) {
      if (inp.bcast[a]) continue;
      strides.push(`let s${i}_${a} = ${acc};`);
      acc = `s${i}_${a} * e${a}`;
    }
  });
  // prologue.stored: the value reduced is also written, contiguous over every axis (strides st_<axis>).
  const stored = k.prologue?.stored === true;
  if (stored && k.dtype !== "f32") throw new Error(`wgsl backend: a reduce prologue stores f32 only, got ${k.dtype} (compiler bug)`);
  if (stored) axes.slice().reverse().forEach((a) => strides.push(a === k.rank - 1 ? `let st_${a} = 1u;` : `let st_${a} = st_${a + 1} * e${a + 1};`));
  const storedAt = (list: number[], idx: (a: number) => string) => (list.length ? list.map((a) => `${idx(a)} * st_${a}`).join(" + ") : "0u");
  const offset = (i: number, list: number[], idx: (a: number) => string) => {
    const terms = list.filter((a) => !pro.inputs[i]!.bcast[a]).map((a) => `${idx(a)} * s${i}_${a}`);
    return terms.length ? terms.join(" + ") : "0u";
  };
  const used = new Set<number>();
  const mark = (x: EwExpr): void => (x.t === "in" ? void used.add(x.index) : x.t === "op" ? x.args.forEach(mark) : undefined);
  mark(pro.expr);
  const ek = { kind: "elementwise" as const, rank: k.rank, inputs: pro.inputs, out: k.dtype, expr: pro.expr };
  const ex = renderExpr(ek, [{ name: "value", dtype: k.dtype, expr: pro.expr }], helpers, (i) => `x${i}`);
  const loads = [...used].sort((a, b) => a - b).map((i) => `let x${i} = ${loadInput(i, `base${i} + ${offset(i, red, (a) => `r${a}`)}`)};`);
  // An empty mean is NaN (numpy, the reference, wasm); WGSL leaves 0.0 / 0.0 indeterminate, so it is spelled out
  // (through a `let` of the bits: a NaN const-expression is a shader-creation error).
  const finish = k.op === "mean" ? `select(partial[0] / f32(count), bitcast<f32>(nan_bits), count == 0u)` : "partial[0]";
  const flag = k.flag ? flagCheck(k.dtype) : null;
  const result = flag ? [`let res_ = ${finish};`, ...storeElem(k.dtype, mode, "out", "row", "res_", use), flag.track("res_")] : storeElem(k.dtype, mode, "out", "row", finish, use);
  const tree = [
    `partial[lid.x] = acc;`,
    `workgroupBarrier();`,
    `for (var w = ${W / 2}u; w > 0u; w = w >> 1u) {`,
    `  if (lid.x < w) { partial[lid.x] = ${op.combine("partial[lid.x]", "partial[lid.x + w]")}; }`,
    `  workgroupBarrier();`,
    `}`,
    `if (lid.x == 0u) {`,
    ...result.map((l) => `  ${l}`),
    `}`,
    // partial[0] must be read before the next row overwrites it.
    `workgroupBarrier();`,
  ];
  const body = [
    ...axes.map((a) => `let ${e(a)} = p.ext_${a};`),
    ...strides,
    `let rows = ${productOf(kept.map(e))};`,
    `let count = ${productOf(red.map(e))};`,
    ...(k.op === "mean" ? ["let nan_bits = 0x7fc00000u;"] : []),
    ...ex.consts,
    ...(flag ? [flag.decl] : []),
    `for (var row = wid.x; row < rows; row = row + nwg.x) {`,
    ...indent(unflatten("row", kept.map((a) => `k${a}`), kept.map(e), "q")),
    ...[...used].sort((a, b) => a - b).map((i) => `  let base${i} = ${offset(i, kept, (a) => `k${a}`)};`),
    ...(stored ? [`  let baseS = ${storedAt(kept, (a) => `k${a}`)};`] : []),
    `  var acc: ${T} = ${op.identity};`,
    `  for (var j = lid.x; j < count; j = j + ${W}u) {`,
    ...indent(unflatten("j", red.map((a) => `r${a}`), red.map(e), "t"), 2),
    ...indent([...loads, ...ex.stmts], 2),
    ...(stored ? [`    stored[baseS + ${storedAt(red, (a) => `r${a}`)}] = ${ex.results[0]!};`] : []),
    `    acc = ${op.combine("acc", ex.results[0]!)};`,
    `  }`,
    ...indent(tree),
    `}`,
    ...(flag ? [flag.clear] : []),
  ];
  const buffers: KernelShader["buffers"] = [
    ...pro.inputs.map((inp, i) => ({ name: inName(i), elem: bindingElem(inp.dtype, mode), write: false })),
    { name: "out", elem: bindingElem(k.dtype, mode, "scatter"), write: true },
    ...(stored ? [{ name: "stored", elem: "f32" as const, write: true }] : []),
  ];
  return {
    name,
    about: [
      `Kiln kernel ${name}: ${k.op} of ${k.prologue ? "a fused expression" : "inp"}: ${k.dtype}[${axes.map((a) => `ext_${a}`).join(", ")}] over axes ${red.join(", ") || "none"}`,
      `one workgroup per output element, ${W} invocations, tree reduction in workgroup memory${flag ? "; clears flag if a result is not finite as stored" : ""}`,
    ],
    params: axes.map((a) => `ext_${a}`),
    buffers: k.flag ? withFlag(name, buffers) : buffers,
    helpers,
    decls: [`var<workgroup> partial: array<${T}, ${W}>;`],
    workgroup: [W, 1, 1],
    builtins: ["@builtin(local_invocation_id) lid: vec3<u32>", "@builtin(workgroup_id) wid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: W * 4,
    grid: [{ ints: kept, per: 1 }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
