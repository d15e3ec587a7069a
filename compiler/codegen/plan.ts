// Codegen stage, planner: an optimised IRModule -> the kernels to build (deduplicated KernelSpecs) and, per
// function, the buffers and kernel calls the runtime executes (FunctionManifest). Layout-only ops become
// aliases (reshape) or strided copies; elementwise ops take scalar constants inline.

import { HOST_ALL_REDUCE, type FunctionManifest, type StepManifest, type ValueManifest, type DimPoly } from "../../runtime/manifest.js";
import { guardKey, ioType, useCounts, type Graph, type IRModule, type Node } from "../ir/graph.js";
import { dimLimits } from "../ir/dim-limits.js";
import { dtypeBytes, type Dim, type DType } from "../ir/types.js";
import { WASM_LOWERING } from "./wasm/op-emitters.js";
import type { KernelSpec, NamedKernel } from "./kernel.js";
import { polyAdd, polyConst, polyProduct, polyScale, polyStrides } from "./dim-poly.js";
import { orderCopyAxes } from "./copy-order.js";
import { matmulPlan, planMatmul, type MatmulPlan } from "./plan-matmul.js";
import { bcastFlags, flagOf, groupExpr } from "./group-expr.js";
import { addInt8Variants } from "./wasm/qmatmul-plan.js";
import { finiteChain, finiteConstant } from "../passes/fusion-finite.js";
import { scheduleBuckets } from "./plan-buckets.js";
import { rowSoftmaxes } from "./plan-rows.js";
import { planPool, poolPlan } from "./plan-pool.js";
import { planPoolGrad, poolGradPlan } from "./plan-pool-grad.js";
import { planSoftmaxGradRows, softmaxGradRows } from "./plan-rows-grad.js";

/** Function outputs, updates and guard conditions: values that must be stored. */
function pinnedValues(g: Graph): Set<number> {
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  return pinned;
}

export interface Plan {
  readonly kernels: NamedKernel[];
  readonly functions: FunctionManifest[];
}

class KernelTable {
  readonly kernels: NamedKernel[] = [];
  private readonly byKey = new Map<string, string>();
  intern(spec: KernelSpec, label: string): string {
    // Non-finite constants (a -inf pad) would all serialise as null. A fused expression is a DAG: a subexpression
    // met again is written as a back-reference, or a chain reusing its values would serialise exponentially.
    const shared = new Map<object, number>();
    const key = JSON.stringify(spec, (_k, v: unknown) => {
      if (typeof v === "number" && !Number.isFinite(v)) return String(v);
      if (typeof v === "object" && v !== null && (v as { t?: string }).t === "op") {
        const ref = shared.get(v);
        if (ref !== undefined) return { ref };
        shared.set(v, shared.size);
      }
      return v;
    });
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
  const filled = new Set<number>();
  const flagged = new Set<StepManifest>();
  const step = (kernel: string, buffers: number[], ints: DimPoly[], n: Node, ops: string[] = [n.op], extra?: Pick<StepManifest, "prepackB">) => {
    // A kernel that clears an all_finite flag (passes/fusion-finite.ts; its spec says `flag`): the flag is filled
    // with true before the first such kernel, and rides as one more output after the kernel's own.
    const flag = n.finiteInto;
    if (flag !== undefined && !filled.has(flag)) fillTrue(g.nodes[flag]);
    const st: StepManifest = { kernel, buffers: flag === undefined ? buffers : [...buffers, flag], ints, ops, ...(n.guard?.length ? { guard: n.guard.map((x) => ({ value: x.cond, when: x.when })) } : {}), ...extra };
    steps.push(st);
    if (flag !== undefined) flagged.add(st);
  };
  const fillTrue = (f: Node) => {
    filled.add(f.id);
    const spec: KernelSpec = { kind: "elementwise", rank: 1, inputs: [], out: "bool", expr: { t: "const", value: 1, dtype: "bool" } };
    step(table.intern(spec, "fill_bool"), [f.id], [polyConst(1)], f, ["all_finite"]);
  };
  const mm: MatmulPlan = matmulPlan(g);
  const rows = rowSoftmaxes(g, pinnedValues(g));
  const gathered = mm.gathers;
  const blocked = (id: number) =>
    gathered.nodes.has(id) || gathered.nchwRoots.has(id) || gathered.written.has(id) || mm.folded.has(id) || mm.casts.has(id) || mm.epilogueOf.has(id) || rows.has(id);
  const grads = poolGradPlan(g, pinnedValues(g), blocked);
  const pools = poolPlan(g, pinnedValues(g), (id) => blocked(id) || grads.inside.has(id) || grads.roots.has(id), grads);
  // softmax / log_softmax backward rows (plan-rows-grad.ts): every buffer they read must be in memory as is.
  const inMemory = (id: number): boolean => {
    const n = g.nodes[id]!;
    if (n.fused !== undefined || mm.folded.has(id) || mm.casts.has(id) || gathered.nodes.has(id) || gathered.nchwRoots.has(id) || pools.inside.has(id) || grads.inside.has(id)) return false;
    const r = rows.get(id);
    if (!r) return true;
    return r.saves ? [r.saves.exps, r.saves.sums, r.saves.out, r.saves.max].includes(id) : r.root === id;
  };
  const smGrads = softmaxGradRows(g, pinnedValues(g), inMemory, (id) => blocked(id) || grads.inside.has(id) || grads.roots.has(id) || pools.inside.has(id) || pools.roots.has(id));
  for (const n of g.nodes) {
    const v = (source: ValueManifest["source"]) => values.push({ dtype: n.type.dtype, shape: [...n.type.shape], source });
    const a = n.attrs as Record<string, unknown>;
    const kind = WASM_LOWERING[n.op].kind;
    // A convolution's padding and patches read by its matmul's packing (plan-conv-gather.ts): never stored.
    if (mm.gathers.nodes.has(n.id)) { v({ kind: "fused" }); continue; }
    // A convolution's product written straight to NCHW: planned at its root, stored in the permute's value.
    const nchwOf = mm.gathers.nchwRoots.get(n.id);
    if (nchwOf !== undefined) { v({ kind: "fused" }); planMatmul(g, g.nodes[nchwOf], table, step, mm, n.id === nchwOf ? undefined : n); continue; }
    if (mm.gathers.written.has(n.id)) { v({ kind: "temp" }); continue; }
    // A pooling window, its reduction and a fused producer (plan-pool.ts): one kernel at the permute.
    if (pools.inside.has(n.id) || grads.inside.has(n.id)) { v({ kind: "fused" }); continue; }
    const grad = grads.roots.get(n.id);
    if (grad) { v({ kind: "temp" }); planPoolGrad(g, grad, table, step); continue; }
    const pool = pools.roots.get(n.id);
    if (pool) { v({ kind: "temp" }); planPool(g, pool, table, step); continue; }
    if (smGrads.inside.has(n.id)) { v({ kind: "fused" }); continue; }
    const smGrad = smGrads.roots.get(n.id);
    if (smGrad) { v({ kind: "temp" }); planSoftmaxGradRows(g, smGrad, table, step); continue; }
    switch (n.op) {
      case "input": v({ kind: "input", index: a.index as number }); continue;
      case "param": v({ kind: "param", name: a.name as string }); continue;
      case "const": v({ kind: "const", value: a.value as number }); continue;
      case "random_uniform": v({ kind: "random", stream: a.stream as number }); continue;
      case "dim_size": v({ kind: "dim", dims: [...(a.dims as Dim[])] }); continue;
      case "reshape":
      case "stop_gradient": v({ kind: "alias", of: n.inputs[0] }); continue;
    }
    // A transpose folded into its matmul: nothing reads this value, so it takes no memory and no step.
    if (mm.folded.has(n.id)) { v({ kind: "alias", of: n.inputs[0] }); continue; }
    // A float cast folded into its matmuls' operand loading (plan-matmul.ts): never stored.
    if (mm.casts.has(n.id)) { v({ kind: "fused" }); continue; }
    // softmax / log_softmax rows (plan-rows.ts): one kernel at the root; the max, sum and exps are never stored.
    const row = rows.get(n.id);
    if (row?.saves && !mm.folded.has(row.x) && !mm.casts.has(row.x)) {
      // Stored exps and sums: the kernel runs at the sum (the backward may read them before the softmax's node).
      const { exps, sums, out: y, max: mx } = row.saves;
      if (n.id !== exps && n.id !== sums && n.id !== y && n.id !== mx) { v({ kind: "fused" }); continue; }
      v({ kind: "temp" });
      if (n.id !== sums) continue;
      const spec: KernelSpec = { kind: "softmax_rows", mode: "softmax", saves: { out: y !== undefined, ...(exps === undefined ? { exps: false } : {}), ...(mx !== undefined ? { max: true } : {}) } };
      const shape = g.nodes[row.x]!.type.shape;
      const outs = [y, exps, mx, sums].filter((id): id is number => id !== undefined);
      const name = y !== undefined ? "softmax_saves" : exps !== undefined ? "exp_sum_rows" : "lse_rows";
      step(table.intern(spec, mx !== undefined ? `${name}_max` : name), [row.x, ...outs], [polyProduct(shape.slice(0, -1)), polyProduct(shape.slice(-1))], n, y !== undefined ? ["max", "sub", "exp", "sum", "div"] : ["max", "sub", "exp", "sum"]);
      (stepsOf.get(g) as StepManifest[]).at(-1)!.outputs = outs.length;
      continue;
    }
    if (row && !row.saves && !mm.folded.has(row.x) && !mm.casts.has(row.x)) {
      if (row.root !== n.id) { v({ kind: "fused" }); continue; }
      v({ kind: "temp" });
      const spec: KernelSpec = { kind: "softmax_rows", mode: row.mode };
      const shape = n.type.shape;
      step(table.intern(spec, row.mode), [row.x, n.id], [polyProduct(shape.slice(0, -1)), polyProduct(shape.slice(-1))], n, [row.mode]);
      (stepsOf.get(g) as StepManifest[]).at(-1)!.inplace = [0];
      continue;
    }
    if (n.fused !== undefined) {
      v({ kind: "fused" });
      continue;
    }
    v({ kind: "temp" });
    // An extra output of another group's kernel (passes/fusion-outputs.ts): that kernel stores it.
    if (n.storedBy !== undefined) continue;
    if (mm.epilogueOf.has(n.id)) planMatmul(g, g.nodes[mm.epilogueOf.get(n.id)!], table, step, mm, n);
    else if (kind === "elementwise") planElementwise(g, n, table, step, mm.casts);
    else if (n.op === "sum" || n.op === "mean" || n.op === "max" || n.op === "min") planReduce(g, n, table, step);
    else if (n.op === "matmul") planMatmul(g, n, table, step, mm);
    else if (n.op === "all_finite") planAllFinite(g, n, table, step, filled.has(n.id) ? undefined : fillTrue);
    else if (n.op === "iota") step(table.intern({ kind: "iota", dtype: "i32" }, "iota"), [n.id], [polyProduct([n.type.shape[0]!])], n);
    else if (n.op === "gather" || n.op === "scatter_add") planRows(g, n, table, step);
    // A host step: the runtime copies x to the output and sums it over the replicas (no wasm kernel).
    else if (n.op === "all_reduce") step(HOST_ALL_REDUCE, [n.inputs[0]!, n.id], [polyProduct(n.type.shape)], n);
    else if (n.op === "depthwise_conv2d") planDepthwise(g, n as Node<"depthwise_conv2d">, table, step);
    else planCopy(g, n, table, step);
  }
  // Kernels that clear a flag take the flag as one more output and say so in their spec.
  for (const st of flagged) st.outputs = (st.outputs ?? 1) + 1;
  // One packing buffer per matmul step, after the node values (plan-matmul.ts), sized per call by the runtime.
  values.push(...mm.scratches);
  // Loop-bound checks are outputs of the graph but not results of the call: the runtime reads them itself.
  const results = g.outputs.filter((o) => !o.check), checks = g.outputs.filter((o) => o.check);
  const limits = dimLimits(g);
  return {
    name: g.name,
    jsName: g.name.includes(".") ? g.name.slice(g.name.indexOf(".") + 1) : g.name,
    model: g.model,
    dims: g.dims,
    inputs: g.inputs.map((i) => ({ name: i.name, dtype: ioType(g, i).dtype, shape: [...g.nodes[i.node].type.shape], ...(i.dtype ? lowInput(g.nodes[i.node].type.dtype as "f16" | "bf16", table) : {}), ...(i.classes ? { classes: i.classes } : {}), ...(i.classes && i.ignoreIndex !== undefined ? { ignoreIndex: i.ignoreIndex } : {}), ...(i.bound !== undefined ? { bound: i.bound } : {}) })),
    outputs: results.map((o) => ({ name: o.name, dtype: g.nodes[o.node].type.dtype, shape: [...g.nodes[o.node].type.shape] })),
    outputValues: results.map((o) => o.node),
    ...(checks.length ? { checks: checks.map((o) => ({ value: o.node, ...o.check! })) } : {}),
    ...(limits.length ? { limits } : {}),
    values,
    steps,
    ...(g.updates?.length ? { updates: g.updates.map((u) => ({ param: u.param, value: u.node })) } : {}),
    ...(g.parallel ? { parallel: g.parallel } : {}),
  };
}

/** An input stored in 16 bits, and the kernel that converts a GPU-resident f32 tensor into it (TensorSig.convert). */
function lowInput(low: "f16" | "bf16", table: KernelTable): { storage: "f16" | "bf16"; convert: string } {
  const spec: KernelSpec = {
    kind: "elementwise", rank: 1, inputs: [{ dtype: "f32", bcast: [false] }], out: low,
    expr: { t: "op", op: "cast", attrs: { to: low }, dtype: low, args: [{ t: "in", index: 0 }] },
  };
  return { storage: low, convert: table.intern(spec, `to_${low}`) };
}

type StepFn = (kernel: string, buffers: number[], ints: DimPoly[], n: Node, ops?: string[]) => void;

/**
 * One kernel for an elementwise node and the members fused into it (see passes/fusion.ts): members become
 * shared sub-expressions, scalar constants are inlined, everything else is a buffer input.
 */
function planElementwise(g: Graph, n: Node, table: KernelTable, step: StepFn, folded: ReadonlySet<number> = new Set()): void {
  const out = n.type.shape;
  // Extra outputs (passes/fusion-outputs.ts) and their members share the expression DAG with n's group.
  const extras = g.nodes.filter((x) => x.storedBy === n.id && !folded.has(x.id)).map((x) => x.id);
  const grp = groupExpr(g, n.id, extras);
  const expr = grp.exprOf(n.id);
  const extraOutputs = extras.map((id) => ({ dtype: g.nodes[id].type.dtype, expr: grp.exprOf(id) }));
  const { bufs, ops } = grp;
  const c = collapse(out, bcastFlags(g, bufs, out));
  const spec: KernelSpec = {
    kind: "elementwise",
    rank: c.ext.length,
    inputs: bufs.map((id, i) => ({ dtype: g.nodes[id].type.dtype, bcast: c.flags[i] })),
    out: n.type.dtype,
    expr,
    ...(extras.length ? { extraOutputs } : {}),
    ...flagOf(n),
  };
  const label = ops.length > 1 ? `fused${ops.length}` : `ew_${n.op}`;
  step(table.intern(spec, `${label}_${n.type.dtype}`), [...bufs, n.id, ...extras], c.ext.map(polyProduct), n, ops);
  if (extras.length) (stepsOf.get(g) as StepManifest[]).at(-1)!.outputs = 1 + extras.length;
  const sameLayout = bufs.flatMap((id, k) => (c.flags[k].every((b) => !b) && g.nodes[id].type.dtype === n.type.dtype ? [k] : []));
  if (sameLayout.length) (stepsOf.get(g) as StepManifest[]).at(-1)!.inplace = sameLayout;
}

/**
 * A reduction; when its input is fused into it (passes/fusion-reduce.ts) the input's group becomes the
 * kernel's prologue: the expression is evaluated per input element and reduced without being stored.
 */
function planReduce(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const x = g.nodes[n.inputs[0]];
  const axes = (n.attrs as unknown as { axes: number[] }).axes;
  const reduced = x.type.shape.map((_, k) => axes.includes(k));
  // x stored by this kernel too (fusion-reduce.ts fuseReduceStores): its group is the prologue.
  const stored = x.storedBy === n.id;
  if (x.fused !== n.id && !stored) {
    const c = collapse(x.type.shape, [reduced]);
    const spec: KernelSpec = { kind: "reduce", op: n.op as "sum", dtype: x.type.dtype, rank: c.ext.length, reduced: c.flags[0], ...flagOf(n) };
    step(table.intern(spec, `reduce_${n.op}_${x.type.dtype}`), [x.id, n.id], c.ext.map(polyProduct), n);
    return;
  }
  const grp = groupExpr(g, n.id, stored ? [x.id] : []);
  const expr = grp.exprOf(x.id);
  const c = collapse(x.type.shape, [reduced, ...bcastFlags(g, grp.bufs, x.type.shape)]);
  const spec: KernelSpec = {
    kind: "reduce",
    op: n.op as "sum",
    dtype: x.type.dtype,
    rank: c.ext.length,
    reduced: c.flags[0],
    prologue: { inputs: grp.bufs.map((id, i) => ({ dtype: g.nodes[id].type.dtype, bcast: c.flags[i + 1] })), expr, ...(stored ? { stored } : {}) },
    ...flagOf(n),
  };
  const ops = [...grp.ops, n.op];
  step(table.intern(spec, `fused${ops.length}_${n.op}_${x.type.dtype}`), [...grp.bufs, n.id, ...(stored ? [x.id] : [])], c.ext.map(polyProduct), n, ops);
  if (stored) {
    // The stored value may go over an input with its layout that dies here (each element is read before it is
    // written, in the same iteration; the reduced output is initialised first, so never that one).
    const st = (stepsOf.get(g) as StepManifest[]).at(-1)!;
    st.outputs = 2;
    const sameLayout = grp.bufs.flatMap((id, k) => (c.flags[k + 1].every((b) => !b) && g.nodes[id].type.dtype === x.type.dtype ? [k] : []));
    if (sameLayout.length) Object.assign(st, { inplace: sameLayout, inplaceOut: 1 });
  }
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
  const call = (src: number, ext0: readonly Dim[], ins0: DimPoly[], inOff: DimPoly, outOff: DimPoly, outs0: DimPoly[]) => {
    const { ext, ins, outs } = orderCopyAxes(ext0, ins0, outs0, dtypeBytes(n.type.dtype));
    step(name(ext.length, n.type.dtype), [src, n.id], [inOff, outOff, ...ext.map((d) => polyProduct([d])), ...ins, ...outs], n);
  };
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
  // A data-parallel grad announces each gradient bucket as soon as it is final (plan-buckets.ts).
  const functions = m.functions.map((g) => scheduleBuckets(planFunction(g, table)));
  // Int8 variants of matmuls on params (runtime/quantize/dynamic.ts), interned after every float kernel so these keep
  // their names; not for training steps, whose weights change every call.
  const specOf = (name: string) => table.kernels.find((k) => k.name === name)!.spec;
  for (const f of functions) if (!f.updates?.length) addInt8Variants(f, specOf, (spec, label) => table.intern(spec, label));
  return { kernels: table.kernels, functions };
}

/**
 * all_finite: its flag is filled with true (unless a kernel clearing it already ran), and each input no kernel
 * checks while storing it (passes/fusion-finite.ts marks those kernels `finiteInto`) gets a `finite` kernel.
 */
function planAllFinite(g: Graph, n: Node, table: KernelTable, step: StepFn, fill: ((f: Node) => void) | undefined): void {
  fill?.(n);
  for (const x of new Set(n.inputs)) {
    if (finiteChain(g, x).some((c) => g.nodes[c].finiteInto === n.id) || finiteConstant(g, x)) continue;
    const t = g.nodes[x].type;
    const spec: KernelSpec = { kind: "finite", dtype: t.dtype as "f32" };
    step(table.intern(spec, `finite_${t.dtype}`), [x, n.id], [polyProduct(t.shape)], n);
  }
}

/** gather (table, ids, out) and scatter_add (ids, src, out) as row kernels: ints (rows, n ids, row length). */
function planRows(g: Graph, n: Node, table: KernelTable, step: StepFn): void {
  const [a, b] = n.inputs as [number, number];
  if (n.op === "gather") {
    const t = g.nodes[a].type;
    const spec: KernelSpec = { kind: "gather", dtype: t.dtype };
    step(table.intern(spec, `gather_${t.dtype}`), [a, b, n.id], [polyProduct([t.shape[0]!]), polyProduct(g.nodes[b].type.shape), polyProduct(t.shape.slice(1))], n);
    return;
  }
  if (n.type.dtype !== "f32") throw new Error(`codegen: scatter_add of ${n.type.dtype} is not supported (f32 only)`);
  const spec: KernelSpec = { kind: "scatter_add", dtype: "f32" };
  step(table.intern(spec, "scatter_add"), [a, b, n.id], [polyProduct([n.type.shape[0]!]), polyProduct(g.nodes[a].type.shape), polyProduct(n.type.shape.slice(1))], n);
}

/** depthwise_conv2d (x, w, out) as one direct kernel; its geometry is in the spec, the int is N * C planes. */
function planDepthwise(g: Graph, n: Node<"depthwise_conv2d">, table: KernelTable, step: StepFn): void {
  const [x, w] = n.inputs as [number, number];
  if (n.type.dtype !== "f32") throw new Error(`codegen: depthwise_conv2d of ${n.type.dtype} is not supported (f32 only)`);
  const [N, C, H, W] = g.nodes[x].type.shape as [Dim, number, number, number];
  const [, , KH, KW] = g.nodes[w].type.shape as number[] as [number, number, number, number];
  const [, , OH, OW] = n.type.shape as [Dim, number, number, number];
  const a = n.attrs;
  const spec: KernelSpec = { kind: "depthwise_conv2d", dtype: "f32", C, H, W, OH, OW, KH, KW, stride: a.stride, dilation: a.dilation, top: a.pads[0]![0], left: a.pads[1]![0] };
  step(table.intern(spec, "depthwise_f32"), [x, w, n.id], [polyProduct([N, C]), polyConst(OH * OW)], n);
}
