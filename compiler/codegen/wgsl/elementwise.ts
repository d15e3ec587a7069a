// Codegen stage (WGSL): elementwise kernels — one invocation per output element (a grid-stride loop covers
// tensors larger than one dispatch), inputs indexed through their broadcast flags, and the EwExpr tree rendered
// as one `let` per node so shared subexpressions (a DAG from fusion) are computed once. Loads and stores go
// through half.ts; a kernel with a packed 16-bit output computes a pair of adjacent elements per iteration and
// stores whole words, so no two invocations write one word.
import type { DType } from "../../ir/types.js";
import type { ElementwiseKernel, EwExpr } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { WGSL_LOWERING } from "./op-emitters.js";
import { bindConst, wgslType } from "./values.js";
import { bindingElem, isHalf, isPacked16, loadElem, loadPackElem, packWord, roundTo, storeWordElem, type HalfMode } from "./half.js";
import { hornerOffset, productOf, unflatten, type KernelShader } from "./shader.js";
import { flagCheck, withFlag } from "./finite.js";

export const EW_WORKGROUP = 64;
/**
 * Inputs bound one per binding up to this many (with the output: the 8 storage buffers a compatibility-mode
 * device allows); a fused kernel with more reads them all from one buffer the runtime packs.
 */
export const MAX_BOUND_INPUTS = 7;

type OpNode = Extract<EwExpr, { t: "op" }>;

function opsOf(e: EwExpr, acc = new Set<string>()): Set<string> {
  if (e.t === "op") {
    acc.add(e.op);
    e.args.forEach((a) => opsOf(a, acc));
  }
  return acc;
}

/** Statements computing the outputs' expressions per element (one DAG); returns them and the names of the results. */
export function renderExpr(k: ElementwiseKernel, outs: readonly KernelOutput[], helpers: Set<HelperName>, inputName: (i: number) => string): { consts: string[]; stmts: string[]; results: string[] } {
  const names = new Map<EwExpr, string>();
  const consts: string[] = [];
  const stmts: string[] = [];
  const ctx = { use: (h: HelperName) => void helpers.add(h) };
  const dtypeOf = (n: EwExpr): DType => (n.t === "in" ? k.inputs[n.index]!.dtype : n.dtype);
  const visit = (n: EwExpr): string => {
    const known = names.get(n);
    if (known) return known;
    let name: string;
    if (n.t === "in") {
      if (!Number.isInteger(n.index) || n.index < 0 || n.index >= k.inputs.length) {
        throw new Error(`wgsl backend: expression reads input ${n.index} of ${k.inputs.length} (compiler bug)`);
      }
      name = inputName(n.index);
    } else if (n.t === "const") {
      name = `c${consts.length}`;
      consts.push(...bindConst(name, n.value, n.dtype));
    } else {
      name = renderOp(n);
    }
    names.set(n, name);
    return name;
  };
  const renderOp = (n: OpNode): string => {
    const low = WGSL_LOWERING[n.op];
    if (low.kind !== "elementwise") throw new Error(`wgsl backend: op ${n.op} cannot appear in an elementwise kernel (compiler bug)`);
    wgslType(n.dtype);
    const args = n.args.map(visit);
    let e = low.emit(ctx, args, n.args.map(dtypeOf), n.dtype, n.attrs);
    // Arithmetic on narrow integers wraps to the dtype's range (casts and selects already produce it).
    if (n.op !== "cast" && n.op !== "where") {
      if (n.dtype === "u8") e = `(${e}) & 255i`;
      else if (n.dtype === "i8") e = `((${e}) << 24u) >> 24u`;
      // f16/bf16 arithmetic is done in f32 and rounded to the format, as the reference rounds every such value.
      else if (isHalf(n.dtype)) e = roundTo(n.dtype, e, ctx.use);
    }
    const name = `v${stmts.length}`;
    stmts.push(`let ${name}: ${wgslType(n.dtype)} = ${e};`);
    return name;
  };
  const results = outs.map((o) => {
    if ((wgslType(dtypeOf(o.expr)) === "f32") !== (wgslType(o.dtype) === "f32")) {
      throw new Error(`wgsl backend: expression dtype ${dtypeOf(o.expr)} does not match output ${o.dtype} (compiler bug)`);
    }
    return visit(o.expr);
  });
  return { consts, stmts, results };
}

/** One output of the kernel: `out` (k.out, k.expr), then any extra outputs in calling-convention order. */
export interface KernelOutput {
  readonly name: string;
  readonly dtype: DType;
  readonly expr: EwExpr;
}

function outputsOf(k: ElementwiseKernel): KernelOutput[] {
  // Extra outputs of a multi-output kernel: their buffers follow `out`.
  const extra = k.extraOutputs ?? [];
  return [{ name: "out", dtype: k.out, expr: k.expr }, ...extra.map((o, j) => ({ name: `out_${j + 1}`, dtype: o.dtype, expr: o.expr }))];
}

/**
 * Bindings (in_0, ..., in_{n-1}, out[, out_1, ...][, flag]); params ext_0..ext_{rank-1}. With `flag`, the values
 * stored to `out` (not the extra outputs) are checked (finite.ts). `mode` picks how f16 buffers
 * are bound (half.ts); the manifest entry (grid, bindings) is the same for both variants.
 */
export function renderElementwise(name: string, k: ElementwiseKernel, mode: HalfMode = "packed"): KernelShader {
  k.inputs.forEach((inp, i) => {
    if (inp.bcast.length !== k.rank) throw new Error(`wgsl backend: input ${i} bcast has ${inp.bcast.length} axes, rank is ${k.rank}`);
  });
  const helpers = new Set<HelperName>();
  const use = (h: HelperName) => void helpers.add(h);
  const exts = Array.from({ length: k.rank }, (_, a) => `e${a}`);
  const idx = Array.from({ length: k.rank }, (_, a) => `i${a}`);
  const outs = outputsOf(k);
  const used = new Set<number>();
  const mark = (e: EwExpr): void => {
    if (e.t === "in") used.add(e.index);
    else if (e.t === "op") e.args.forEach(mark);
  };
  outs.forEach((o) => mark(o.expr));
  const { consts, stmts, results } = renderExpr(k, outs, helpers, (i) => `x${i}`);
  const flag = k.flag ? flagCheck(k.out) : null;
  const track = flag ? [flag.track(results[0]!)] : [];

  // Per-axis indices are needed only by an input broadcast along some axes but not all.
  const anyBcast = k.inputs.some((inp, i) => used.has(i) && inp.bcast.some(Boolean) && !inp.bcast.every(Boolean));
  const packed = k.inputs.length > MAX_BOUND_INPUTS;
  const loads = k.inputs.flatMap((inp, i) => {
    if (!used.has(i)) return [];
    // Broadcast axes contribute nothing to the input's offset; a non-broadcast input is read at i itself.
    const keep = inp.bcast.map((b, a) => (b ? -1 : a)).filter((a) => a >= 0);
    const off = inp.bcast.some(Boolean) ? hornerOffset(keep.map((a) => idx[a]!), keep.map((a) => exts[a]!)) : "i";
    return [`let x${i} = ${packed ? loadPackElem(inp.dtype, `p.pack_${i}`, off, use) : loadElem(inp.dtype, mode, `in_${i}`, off, use)};`];
  });
  const perElement = [...(anyBcast ? unflatten("i", idx, exts, "r") : []), ...loads, ...stmts];
  // Outputs stored as packed halves make the loop go over words: elements 2w and 2w + 1 in one iteration.
  const pairs = outs.some((o) => isPacked16(o.dtype, mode));
  const W = EW_WORKGROUP;
  const loop = pairs
    ? [
      `let nw = (n + 1u) / 2u;`,
      `for (var w = gid.x; w < nw; w = w + nwg.x * ${W}u) {`,
      ...outs.flatMap((o, j) => (isPacked16(o.dtype, mode) ? [`  var pk${j} = 0u;`] : [])),
      `  for (var h = 0u; h < 2u; h = h + 1u) {`,
      `    let i = 2u * w + h;`,
      `    if (i >= n) { break; }`,
      ...perElement.map((l) => `    ${l}`),
      ...outs.map((o, j) => `    ${isPacked16(o.dtype, mode) ? packWord(o.dtype as "f16" | "bf16", `pk${j}`, "h", results[j]!, use) : storeWordElem(o.dtype, mode, o.name, "i", results[j]!, use)}`),
      ...track.map((l) => `    ${l}`),
      `  }`,
      ...outs.flatMap((o, j) => (isPacked16(o.dtype, mode) ? [`  ${o.name}[w] = pk${j};`] : [])),
      "}",
    ]
    : [
      `for (var i = gid.x; i < n; i = i + nwg.x * ${W}u) {`,
      ...perElement.map((l) => `  ${l}`),
      ...outs.map((o, j) => `  ${storeWordElem(o.dtype, mode, o.name, "i", results[j]!, use)}`),
      ...track.map((l) => `  ${l}`),
      "}",
    ];
  const body = [
    ...exts.map((e, a) => `let ${e} = p.ext_${a};`),
    `let n = ${productOf(exts)};`,
    ...consts,
    ...(flag ? [flag.decl] : []),
    ...loop,
    ...(flag ? [flag.clear] : []),
  ];
  const ins = k.inputs.map((inp, i) => `in_${i}: ${inp.dtype}${inp.bcast.some(Boolean) ? ` (broadcast on axes ${inp.bcast.flatMap((b, a) => (b ? [a] : [])).join(", ")})` : ""}`);
  const buffers: KernelShader["buffers"] = [
    ...k.inputs.map((inp, i) => (packed ? ("packed" as const) : { name: `in_${i}`, elem: bindingElem(inp.dtype, mode), write: false })),
    ...outs.map((o) => ({ name: o.name, elem: bindingElem(o.dtype, mode, "write"), write: true })),
  ];
  const opNames = new Set<string>();
  outs.forEach((o) => opsOf(o.expr, opNames));
  return {
    name,
    about: [
      `Kiln kernel ${name}: elementwise ${[...opNames].join(", ")} -> ${outs.map((o) => `${o.name}: ${o.dtype}`).join(", ")} [${exts.map((_, a) => `ext_${a}`).join(", ")}]`,
      `inputs: ${ins.join("; ") || "none"}${packed ? " (all read from `pack`)" : ""}${pairs ? "; 16-bit outputs packed two per u32 word, one pair per iteration" : ""}${flag ? "; clears flag if a value stored to out is not finite" : ""}`,
    ],
    params: exts.map((_, a) => `ext_${a}`),
    buffers: k.flag ? withFlag(name, buffers) : buffers,
    helpers,
    workgroup: [W, 1, 1],
    builtins: ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: 0,
    grid: [{ ints: exts.map((_, a) => a), per: W }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
