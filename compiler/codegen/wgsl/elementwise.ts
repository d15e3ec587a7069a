// Codegen stage (WGSL): elementwise kernels — one invocation per output element (a grid-stride loop covers
// tensors larger than one dispatch), inputs indexed through their broadcast flags, and the EwExpr tree rendered
// as one `let` per node so shared subexpressions (a DAG from fusion) are computed once.
import type { DType } from "../../ir/types.js";
import type { ElementwiseKernel, EwExpr } from "../kernel.js";
import type { HelperName } from "./prelude.js";
import { WGSL_LOWERING } from "./op-emitters.js";
import { bindConst, wgslType } from "./values.js";
import { hornerOffset, productOf, unflatten, type KernelShader } from "./shader.js";

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

/** Statements computing the expression per element; returns them and the name holding the result. */
function renderExpr(k: ElementwiseKernel, helpers: Set<HelperName>, inputName: (i: number) => string): { consts: string[]; stmts: string[]; result: string } {
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
    }
    const name = `v${stmts.length}`;
    stmts.push(`let ${name}: ${wgslType(n.dtype)} = ${e};`);
    return name;
  };
  const result = visit(k.expr);
  if ((wgslType(dtypeOf(k.expr)) === "f32") !== (wgslType(k.out) === "f32")) {
    throw new Error(`wgsl backend: expression dtype ${dtypeOf(k.expr)} does not match output ${k.out} (compiler bug)`);
  }
  return { consts, stmts, result };
}

/** Bindings (in_0, ..., in_{n-1}, out); params ext_0..ext_{rank-1}. */
export function renderElementwise(name: string, k: ElementwiseKernel): KernelShader {
  k.inputs.forEach((inp, i) => {
    if (inp.bcast.length !== k.rank) throw new Error(`wgsl backend: input ${i} bcast has ${inp.bcast.length} axes, rank is ${k.rank}`);
  });
  const helpers = new Set<HelperName>();
  const exts = Array.from({ length: k.rank }, (_, a) => `e${a}`);
  const idx = Array.from({ length: k.rank }, (_, a) => `i${a}`);
  const used = new Set<number>();
  const mark = (e: EwExpr): void => {
    if (e.t === "in") used.add(e.index);
    else if (e.t === "op") e.args.forEach(mark);
  };
  mark(k.expr);
  const { consts, stmts, result } = renderExpr(k, helpers, (i) => `x${i}`);

  // Per-axis indices are needed only by an input broadcast along some axes but not all.
  const anyBcast = k.inputs.some((inp, i) => used.has(i) && inp.bcast.some(Boolean) && !inp.bcast.every(Boolean));
  const packed = k.inputs.length > MAX_BOUND_INPUTS;
  const loads = k.inputs.flatMap((inp, i) => {
    if (!used.has(i)) return [];
    // Broadcast axes contribute nothing to the input's offset; a non-broadcast input is read at i itself.
    const keep = inp.bcast.map((b, a) => (b ? -1 : a)).filter((a) => a >= 0);
    const off = inp.bcast.some(Boolean) ? hornerOffset(keep.map((a) => idx[a]!), keep.map((a) => exts[a]!)) : "i";
    return [packed ? `let x${i} = bitcast<${wgslType(inp.dtype)}>(pack[p.pack_${i} + ${off}]);` : `let x${i} = in_${i}[${off}];`];
  });
  const body = [
    ...exts.map((e, a) => `let ${e} = p.ext_${a};`),
    `let n = ${productOf(exts)};`,
    ...consts,
    `for (var i = gid.x; i < n; i = i + nwg.x * ${EW_WORKGROUP}u) {`,
    ...(anyBcast ? unflatten("i", idx, exts, "r").map((l) => `  ${l}`) : []),
    ...loads.map((l) => `  ${l}`),
    ...stmts.map((l) => `  ${l}`),
    `  out[i] = ${result};`,
    "}",
  ];
  const ins = k.inputs.map((inp, i) => `in_${i}: ${inp.dtype}${inp.bcast.some(Boolean) ? ` (broadcast on axes ${inp.bcast.flatMap((b, a) => (b ? [a] : [])).join(", ")})` : ""}`);
  return {
    name,
    about: [
      `Kiln kernel ${name}: elementwise ${[...opsOf(k.expr)].join(", ")} -> out: ${k.out}[${exts.map((_, a) => `ext_${a}`).join(", ")}]`,
      `inputs: ${ins.join("; ") || "none"}${packed ? " (all read from `pack`)" : ""}`,
    ],
    params: exts.map((_, a) => `ext_${a}`),
    buffers: [
      ...k.inputs.map((inp, i) => (packed ? ("packed" as const) : { name: `in_${i}`, elem: wgslType(inp.dtype), write: false })),
      { name: "out", elem: wgslType(k.out), write: true },
    ],
    helpers,
    workgroup: [EW_WORKGROUP, 1, 1],
    builtins: ["@builtin(global_invocation_id) gid: vec3<u32>", "@builtin(num_workgroups) nwg: vec3<u32>"],
    body,
    workgroupBytes: 0,
    grid: [{ ints: exts.map((_, a) => a), per: EW_WORKGROUP }, { ints: [], per: 1 }, { ints: [], per: 1 }],
  };
}
