// Codegen stage, planner: an optimised IRModule -> the kernels to build (deduplicated KernelSpecs) and, per
// function, the buffers and kernel calls the runtime executes (FunctionManifest). Layout-only ops become
// aliases (reshape) or strided copies; elementwise ops take scalar constants inline.

import type { FunctionManifest, StepManifest, ValueManifest, DimPoly } from "../../runtime/manifest.js";
import { guardKey, useCounts, type Graph, type IRModule, type Node } from "../ir/graph.js";
import type { Dim, DType } from "../ir/types.js";
import { WASM_LOWERING } from "./wasm/op-emitters.js";
import type { EwExpr, KernelSpec, NamedKernel } from "./kernel.js";
import { polyAdd, polyConst, polyProduct, polyScale, polyStrides } from "./dim-poly.js";
import { matmulScratchBytes } from "./wasm/matmul-blocking.js";
import { addInt8Variants } from "./wasm/qmatmul-plan.js";

export interface Plan {
  readonly kernels: NamedKernel[];
  readonly functions: FunctionManifest[];
}

class KernelTable {
  readonly kernels: NamedKernel[] = [];
  private readonly byKey = new Map<string, string>();
  intern(spec: KernelSpec, label: string): string {
    // Non-finite constants (a -inf pad) would all serialise as null.
    const key = JSON.stringify(spec, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
    let name = this.byKey.get(key);
    if (!name) {
      name = `${label}_${this.kernels.length}`;
      this.byKey.set(key, name);
      this.kernels.push({ name, spec });
    }
    return name;
  }
}

const isOne = (d: Dim) => d === 1;

/** Drops extent-1 axes and merges neighbours whose per-input flags agree; never returns rank 0. */
function collapse(ext: readonly Dim[], flags: readonly (readonly boolean[])[]): { ext: Dim[][]; flags: boolean[][] } {
  const groups: { dims: Dim[]; f: boolean[] }[] = [];
  ext.forEach((d, k) => {
    if (isOne(d)) return;
    const f = flags.map((fl) => fl[k]);
    const last = groups[groups.length - 1];
    if (last && last.f.every((x, i) => x === f[i])) last.dims.push(d);
    else groups.push({ dims: [d], f });
  });
  if (groups.length === 0) groups.push({ dims: [1], f: flags.map(() => false) });
  return { ext: groups.map((g) => g.dims), flags: flags.map((_, i) => groups.map((g) => g.f[i])) };
}

/** The step list being built for each graph (planElementwise marks its last step as in-place capable). */
const stepsOf = new WeakMap<Graph, StepManifest[]>();

function planFunction(g: Graph, table: KernelTable): FunctionManifest {
  const values: ValueManifest[] = [];
  const steps: StepManifest[] = [];
  stepsOf.set(g, steps);
  const step = (kernel: string, buffers: number[], ints: DimPoly[], n: Node, ops: string[] = [n.op]) =>
    steps.push({ kernel, buffers, ints, ops, ...(n.guard?.length ? { guard: n.guard.map((x) => ({ value: x.cond, when: x.when })) } : {}) });
  const mm: MatmulPlan = { folded: foldedPermutes(g), scratch: g.nodes.length, scratchBytes: -1 };
  for (const n of g.nodes) {
    const v = (source: ValueManifest["source"]) => values.push({ dtype: n.type.dtype, shape: [...n.type.shape], source });
    const a = n.attrs as Record<string, unknown>;
    const kind = WASM_LOWERING[n.op].kind;
    switch (n.op) {
      case "input": v({ kind: "input", index: a.index as number }); continue;
      case "param": v({ kind: "param", name: a.name as string }); continue;
      case "const": v({ kind: "const", value: a.value as number }); continue;
      case "random_uniform": v({ kind: "random", stream: a.stream as number }); continue;
      case "reshape":
      case "stop_gradient": v({ kind: "alias", of: n.inputs[0] }); continue;
    }
    // A transpose folded into its matmul: nothing reads this value, so it takes no memory and no step.
    if (mm.folded.has(n.id)) { v({ kind: "alias", of: n.inputs[0] }); continue; }
    if (n.fused !== undefined) {
      v({ kind: "fused" });
      continue;
    }
    v({ kind: "temp" });
    if (kind === "elementwise") planElementwise(g, n, table, step);
    else if (n.op === "sum" || n.op === "mean" || n.op === "max" || n.op === "min") planReduce(g, n, table, step);
    else if (n.op === "matmul") planMatmul(g, n, table, step, mm);
    else if (n.op === "iota") step(table.intern({ kind: "iota", dtype: "i32" }, "iota"), [n.id], [polyConst(n.type.shape[0] as number)], n);
    else planCopy(g, n, table, step);
  }
  // One packing buffer per function, after the node values, big enough for its largest matmul.
  if (mm.scratchBytes >= 0) values.push({ dtype: "f32", shape: [Math.ceil(mm.scratchBytes / 4)], source: { kind: "temp" } });
  return {
    name: g.name,
    jsName: g.name.includes(".") ? g.name.slice(g.name.indexOf(".") + 1) : g.name,
    model: g.model,
    dims: g.dims,
    inputs: g.inputs.map((i) => ({ name: i.name, dtype: g.nodes[i.node].type.dtype, shape: [...g.nodes[i.node].type.shape] })),
    outputs: g.outputs.map((o) => ({ name: o.name, dtype: g.nodes[o.node].type.dtype, shape: [...g.nodes[o.node].type.shape] })),
    outputValues: g.outputs.map((o) => o.node),
    values,
    steps,
    ...(g.updates?.length ? { updates: g.updates.map((u) => ({ param: u.param, value: u.node })) } : {}),
  };
}

type StepFn = (kernel: string, buffers: number[], ints: DimPoly[], n: Node, ops?: string[]) => void;

/**
 * One kernel for an elementwise node and the members fused into it (see passes/fusion.ts): members become
 * shared sub-expressions, scalar constants are inlined, everything else is a buffer input.
 */
function planElementwise(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const out = n.type.shape;
  const bufs: number[] = [];
  const memo = new Map<number, EwExpr>();
  const ops: string[] = [];
  const exprOf = (id: number): EwExpr => {
    const src = g.nodes[id];
    if (src.op === "const" && src.type.shape.length === 0) return { t: "const", value: (src.attrs as { value: number }).value, dtype: src.type.dtype };
    if (id === n.id || src.fused === n.id) {
      let e = memo.get(id);
      if (!e) {
        e = { t: "op", op: src.op, attrs: src.attrs, dtype: src.type.dtype, args: src.inputs.map(exprOf) };
        memo.set(id, e);
        ops.push(src.op);
      }
      return e;
    }
    const at = bufs.indexOf(id);
    if (at >= 0) return { t: "in", index: at };
    bufs.push(id);
    return { t: "in", index: bufs.length - 1 };
  };
  const expr = exprOf(n.id);
  const bflags = bufs.map((id) => {
    const s = g.nodes[id].type.shape;
    const pad = out.length - s.length;
    return out.map((d, k) => k < pad || (s[k - pad] === 1 && d !== 1));
  });
  const c = collapse(out, bflags);
  const spec: KernelSpec = {
    kind: "elementwise",
    rank: c.ext.length,
    inputs: bufs.map((id, i) => ({ dtype: g.nodes[id].type.dtype, bcast: c.flags[i] })),
    out: n.type.dtype,
    expr,
  };
  const label = ops.length > 1 ? `fused${ops.length}` : `ew_${n.op}`;
  step(table.intern(spec, `${label}_${n.type.dtype}`), [...bufs, n.id], c.ext.map(polyProduct), n, ops);
  const sameLayout = bufs.flatMap((id, k) => (c.flags[k].every((b) => !b) && g.nodes[id].type.dtype === n.type.dtype ? [k] : []));
  if (sameLayout.length) (stepsOf.get(g) as StepManifest[]).at(-1)!.inplace = sameLayout;
}

function planReduce(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const x = g.nodes[n.inputs[0]];
  const axes = (n.attrs as unknown as { axes: number[] }).axes;
  const c = collapse(x.type.shape, [x.type.shape.map((_, k) => axes.includes(k))]);
  const spec: KernelSpec = { kind: "reduce", op: n.op as "sum", dtype: x.type.dtype, rank: c.ext.length, reduced: c.flags[0] };
  step(table.intern(spec, `reduce_${n.op}_${x.type.dtype}`), [x.id, n.id], c.ext.map(polyProduct), n);
}

interface MatmulPlan {
  /** Permutes read transposed by their matmul instead of being copied. */
  readonly folded: ReadonlySet<number>;
  /** Value index of the function's matmul scratch buffer. */
  readonly scratch: number;
  /** Bytes it needs (-1: the function has no matmul). */
  scratchBytes: number;
}

/**
 * Permutes that swap the last two axes and whose every use is a matmul operand under the same guards (none is a
 * function output): each such matmul reads the permute's input transposed, and the copy disappears. A permute
 * with any other use keeps its copy.
 */
function foldedPermutes(g: Graph): Set<number> {
  const uses = useCounts(g);
  const matmulUses = new Array<number>(g.nodes.length).fill(0);
  const out = new Set<number>();
  for (const n of g.nodes) {
    if (n.op !== "matmul") continue;
    for (const id of n.inputs) {
      const p = g.nodes[id];
      if (p.op !== "permute" || guardKey(p.guard) !== guardKey(n.guard)) continue;
      const perm = (p.attrs as { perm: number[] }).perm;
      const r = perm.length;
      if (r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((q, i) => q === i)) matmulUses[id]++;
    }
  }
  matmulUses.forEach((k, id) => k > 0 && k === uses[id] && out.add(id));
  return out;
}

function planMatmul(g: Graph, n: Node, table: KernelTable, step: StepFn, mm: MatmulPlan): void {
  const [a, b] = n.inputs.map((i) => g.nodes[i].type.shape);
  const [transA, transB] = n.inputs.map((i) => mm.folded.has(i));
  const [srcA, srcB] = n.inputs.map((i) => (mm.folded.has(i) ? g.nodes[i].inputs[0] : i));
  const as = a.length === 1 ? [1, a[0]] : a;
  const bs = b.length === 1 ? [b[0], 1] : b;
  const M = as[as.length - 2], K = as[as.length - 1], N = bs[bs.length - 1];
  const batchRank = Math.max(as.length, bs.length) - 2;
  const pad = (s: readonly Dim[]) => [...Array(batchRank - (s.length - 2)).fill(1), ...s.slice(0, -2)] as Dim[];
  const ab = pad(as), bb = pad(bs);
  const batch = ab.map((d, k) => (d === 1 ? bb[k] : d));
  // One B for every batch of a row-major A ([..., M, K] @ [K, N]) is a single gemm over all the rows.
  const merge = batchRank > 0 && !transA && bb.every((d) => d === 1);
  const rows = merge ? [...batch, M] : [M];
  const spec: KernelSpec = {
    kind: "matmul",
    dtype: n.type.dtype,
    batchRank: merge ? 0 : batchRank,
    aBcast: merge ? [] : ab.map((d, k) => d === 1 && batch[k] !== 1),
    bBcast: merge ? [] : bb.map((d, k) => d === 1 && batch[k] !== 1),
    transA,
    transB,
  };
  const known = (ds: readonly Dim[]) => (ds.every((d) => typeof d === "number") ? (ds as number[]).reduce((x, y) => x * y, 1) : undefined);
  mm.scratchBytes = Math.max(mm.scratchBytes, matmulScratchBytes(known(rows), known([K]), known([N])));
  const m = polyProduct(rows);
  const ints = [...(merge ? [] : batch).map((d) => polyProduct([d])), m, polyProduct([K]), polyProduct([N]), polyConst(0), m];
  step(table.intern(spec, `matmul_${n.type.dtype}`), [srcA, srcB, mm.scratch, n.id], ints, n);
}

/**
 * permute, broadcast_to, slice, concat and window as strided copies (element strides and offsets); pad as a
 * constant fill (an elementwise kernel without inputs) followed by a copy into the interior.
 */
function planCopy(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const out = n.type.shape;
  const name = (rank: number, dtype: DType) => table.intern({ kind: "copy", dtype, rank }, `copy_${dtype}`);
  const x = g.nodes[n.inputs[0]];
  const inSt = polyStrides(x.type.shape);
  const outSt = polyStrides(out);
  const a = n.attrs as Record<string, unknown>;
  const call = (src: number, ext: readonly Dim[], ins: DimPoly[], inOff: DimPoly, outOff: DimPoly, outs: DimPoly[]) =>
    step(name(ext.length, n.type.dtype), [src, n.id], [inOff, outOff, ...ext.map((d) => polyProduct([d])), ...ins, ...outs], n);
  switch (n.op) {
    case "permute": {
      const perm = a.perm as number[];
      return call(x.id, out, perm.map((p) => inSt[p]), polyConst(0), polyConst(0), outSt);
    }
    case "broadcast_to": {
      const pad = out.length - x.type.shape.length;
      const st = out.map((d, k) => (k < pad || (x.type.shape[k - pad] === 1 && d !== 1) ? polyConst(0) : inSt[k - pad]));
      return call(x.id, out, st, polyConst(0), polyConst(0), outSt);
    }
    case "slice": {
      const axis = a.axis as number;
      const ins = inSt.map((s, k) => (k === axis ? polyScale(s, (a.step as number | undefined) ?? 1) : s));
      return call(x.id, out, ins, polyScale(inSt[axis], a.start as number), polyConst(0), outSt);
    }
    case "pad": {
      const pads = a.pads as [number, number, number][];
      const fill: KernelSpec = { kind: "elementwise", rank: 1, inputs: [], out: n.type.dtype, expr: { t: "const", value: a.value as number, dtype: n.type.dtype } };
      step(table.intern(fill, `fill_${n.type.dtype}`), [n.id], [polyProduct(out)], n);
      const outOff = pads.reduce((acc, [lo], k) => polyAdd(acc, polyScale(outSt[k], lo)), polyConst(0));
      return call(x.id, x.type.shape, inSt, polyConst(0), outOff, outSt.map((st, k) => polyScale(st, pads[k][2] + 1)));
    }
    case "window": {
      // out[n, i, j, c, p, q] = x[n, c, i*sh + p*dh, j*sw + q*dw]
      const [sh, sw] = a.stride as [number, number];
      const [dh, dw] = a.dilation as [number, number];
      const ins = [inSt[0], polyScale(inSt[2], sh), polyScale(inSt[3], sw), inSt[1], polyScale(inSt[2], dh), polyScale(inSt[3], dw)];
      return call(x.id, out, ins, polyConst(0), polyConst(0), outSt);
    }
    case "concat": {
      const axis = a.axis as number;
      let offset = 0;
      for (const id of n.inputs) {
        const s = g.nodes[id].type.shape;
        call(id, s, polyStrides(s), polyConst(0), polyScale(outSt[axis], offset), outSt);
        offset += s[axis] as number;
      }
      return;
    }
    default:
      throw new Error(`internal: no kernel plan for op ${n.op}`);
  }
}

export function planModule(m: IRModule): Plan {
  const table = new KernelTable();
  const functions = m.functions.map((g) => planFunction(g, table));
  // Int8 variants of matmuls on params (runtime/quantize.ts), interned after every float kernel so these keep
  // their names; not for training steps, whose weights change every call.
  const specOf = (name: string) => table.kernels.find((k) => k.name === name)!.spec;
  for (const f of functions) if (!f.updates?.length) addInt8Variants(f, specOf, (spec, label) => table.intern(spec, label));
  return { kernels: table.kernels, functions };
}
