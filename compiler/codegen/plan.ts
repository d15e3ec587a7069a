// Codegen stage, planner: an optimised IRModule -> the kernels to build (deduplicated KernelSpecs) and, per
// function, the buffers and kernel calls the runtime executes (FunctionManifest). Layout-only ops become
// aliases (reshape) or strided copies; elementwise ops take scalar constants inline.

import type { FunctionManifest, StepManifest, ValueManifest, DimPoly } from "../../runtime/manifest.js";
import { useCounts, type Graph, type IRModule, type Node } from "../ir/graph.js";
import type { Dim, DType } from "../ir/types.js";
import { WASM_LOWERING } from "./wasm/op-emitters.js";
import type { EwExpr, KernelSpec, NamedKernel } from "./kernel.js";
import { polyConst, polyProduct, polyScale, polyStrides } from "./dim-poly.js";
import { matmulScratchBytes } from "./wasm/matmul-blocking.js";

export interface Plan {
  readonly kernels: NamedKernel[];
  readonly functions: FunctionManifest[];
}

class KernelTable {
  readonly kernels: NamedKernel[] = [];
  private readonly byKey = new Map<string, string>();
  intern(spec: KernelSpec, label: string): string {
    const key = JSON.stringify(spec);
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

function planFunction(g: Graph, table: KernelTable): FunctionManifest {
  const values: ValueManifest[] = [];
  const steps: StepManifest[] = [];
  const step = (kernel: string, buffers: number[], ints: DimPoly[], n: Node) =>
    steps.push({ kernel, buffers, ints, ops: [n.op], ...(n.guard?.length ? { guard: n.guard.map((x) => ({ value: x.cond, when: x.when })) } : {}) });
  const mm: MatmulPlan = { folded: foldedPermutes(g), scratch: g.nodes.length, scratchBytes: -1 };
  for (const n of g.nodes) {
    const v = (source: ValueManifest["source"]) => values.push({ dtype: n.type.dtype, shape: [...n.type.shape], source });
    const a = n.attrs as Record<string, unknown>;
    const kind = WASM_LOWERING[n.op].kind;
    switch (n.op) {
      case "input": v({ kind: "input", index: a.index as number }); continue;
      case "param": v({ kind: "param", name: a.name as string }); continue;
      case "const": v({ kind: "const", value: a.value as number }); continue;
      case "reshape": v({ kind: "alias", of: n.inputs[0] }); continue;
    }
    // A transpose folded into its matmul: nothing reads this value, so it takes no memory and no step.
    if (mm.folded.has(n.id)) { v({ kind: "alias", of: n.inputs[0] }); continue; }
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

type StepFn = (kernel: string, buffers: number[], ints: DimPoly[], n: Node) => void;

function planElementwise(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const out = n.type.shape;
  const bufs: number[] = [];
  const args: EwExpr[] = n.inputs.map((id) => {
    const src = g.nodes[id];
    if (src.op === "const" && src.type.shape.length === 0) return { t: "const", value: (src.attrs as { value: number }).value, dtype: src.type.dtype };
    const at = bufs.indexOf(id);
    if (at >= 0) return { t: "in", index: at };
    bufs.push(id);
    return { t: "in", index: bufs.length - 1 };
  });
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
    expr: { t: "op", op: n.op, attrs: n.attrs, dtype: n.type.dtype, args },
  };
  step(table.intern(spec, `ew_${n.op}_${n.type.dtype}`), [...bufs, n.id], c.ext.map(polyProduct), n);
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

/** Permutes that swap the last two axes and feed nothing but one matmul operand (not an output either). */
function foldedPermutes(g: Graph): Set<number> {
  const uses = useCounts(g);
  const out = new Set<number>();
  for (const n of g.nodes) {
    if (n.op !== "matmul") continue;
    for (const id of n.inputs) {
      const p = g.nodes[id];
      if (p.op !== "permute" || uses[id] !== 1) continue;
      const perm = (p.attrs as { perm: number[] }).perm;
      const r = perm.length;
      if (r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((q, i) => q === i)) out.add(id);
    }
  }
  return out;
}

function planMatmul(g: Graph, n: Node, table: KernelTable, step: StepFn, mm: MatmulPlan): void {
  const [a, b] = n.inputs.map((i) => g.nodes[i].type.shape);
  const [transA, transB] = n.inputs.map((i) => mm.folded.has(i));
  const [srcA, srcB] = n.inputs.map((i) => (mm.folded.has(i) ? g.nodes[i].inputs[0] : i));
  const as = a.length === 1 ? [1, a[0]] : a;
  const bs = b.length === 1 ? [b[0], 1] : b;
  let M = as[as.length - 2];
  const K = as[as.length - 1], N = bs[bs.length - 1];
  let batchRank = Math.max(as.length, bs.length) - 2;
  const pad = (s: readonly Dim[]) => [...Array(batchRank - (s.length - 2)).fill(1), ...s.slice(0, -2)] as Dim[];
  let ab = pad(as), bb = pad(bs);
  let batch = ab.map((d, k) => (d === 1 ? bb[k] : d));
  const mRows: Dim[] = [M];
  // One B for every batch of a row-major A ([..., M, K] @ [K, N]): a single gemm over all the rows.
  if (batchRank > 0 && !transA && bb.every((d) => d === 1)) {
    mRows.unshift(...batch);
    M = batch.every((d) => typeof d === "number") && typeof M === "number" ? (batch as number[]).reduce((x, y) => x * y, M) : "?";
    batchRank = 0;
    ab = bb = batch = [];
  }
  const spec: KernelSpec = {
    kind: "matmul",
    dtype: n.type.dtype,
    batchRank,
    aBcast: ab.map((d, k) => d === 1 && batch[k] !== 1),
    bBcast: bb.map((d, k) => d === 1 && batch[k] !== 1),
    transA,
    transB,
  };
  const known = (d: Dim) => (typeof d === "number" ? d : undefined);
  mm.scratchBytes = Math.max(mm.scratchBytes, matmulScratchBytes(known(M), known(K), known(N)));
  const rows = polyProduct(mRows);
  const ints = [...batch.map((d) => polyProduct([d])), rows, polyProduct([K]), polyProduct([N]), polyConst(0), rows];
  step(table.intern(spec, `matmul_${n.type.dtype}`), [srcA, srcB, mm.scratch, n.id], ints, n);
}

/** permute, broadcast_to, slice and concat as strided copies (element strides and offsets). */
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
      return call(x.id, out, inSt, polyScale(inSt[axis], a.start as number), polyConst(0), outSt);
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
  return { kernels: table.kernels, functions };
}
