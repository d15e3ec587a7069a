// Codegen stage, planner for matmuls: folds transposes and float casts of operands into the operand loading,
// and a fused elementwise group (passes/fusion.ts fuseMatmulEpilogues) into the store as an epilogue.
import type { DimPoly, StepManifest, ValueManifest } from "../../runtime/manifest.js";
import { guardKey, useCounts, type Graph, type Node } from "../ir/graph.js";
import { isFloat, type Dim, type DType } from "../ir/types.js";
import type { KernelSpec, MatmulEpilogue, MatmulKernel } from "./kernel.js";
import { convGathers, type ConvGathers, type Gather } from "./plan-conv-gather.js";
import { halfGatherEnabled } from "./plan-conv-gather-half.js";
import { winogradFor, winogradScratchBytes } from "./plan-winograd.js";
import { polyConst, polyProduct } from "./dim-poly.js";
import { bcastFlags, flagOf, groupExpr } from "./group-expr.js";
import { prepackName, WINOGRAD_PREPACK } from "../../runtime/wasm/prepack.js";
import { KC, matmulScratchBytes, type MatmulScratchSpec, type PartialSums } from "./wasm/matmul-blocking.js";

export type StepFn = (kernel: string, buffers: number[], ints: DimPoly[], n: Node, ops?: string[], extra?: Pick<StepManifest, "prepackB">) => void;
export interface Interner {
  intern(spec: KernelSpec, label: string): string;
}

export interface MatmulPlan {
  /** Permutes read transposed by their matmul instead of being copied. */
  readonly folded: ReadonlySet<number>;
  /** Float casts whose matmuls load the cast's input and round it themselves (no value, no step). */
  readonly casts: ReadonlySet<number>;
  /** Root of a fused group -> the matmul whose epilogue it is. */
  readonly epilogueOf: ReadonlyMap<number, number>;
  /** Matmuls reading a convolution's patches straight from its input (plan-conv-gather.ts). */
  readonly gathers: ConvGathers;
  /** Index of the first scratch value (after the node values). */
  readonly scratchBase: number;
  /**
   * One packing scratch per matmul step, at scratchBase + i: its bytes follow the call's dims (source.matmul),
   * its shape bounds them with symbolic dims at their block sizes.
   */
  readonly scratches: ValueManifest[];
}

export function matmulPlan(g: Graph): MatmulPlan {
  const { permutes, casts, ok, uses } = foldedOperands(g);
  const epilogueOf = new Map<number, number>();
  for (const n of g.nodes) if (n.op === "matmul" && n.fused !== undefined) epilogueOf.set(n.fused, n.id);
  // A batched matmul over rows [N, P, k] merges its rows unless an epilogue input broadcasts along only some.
  const rowsMerge = (mm: Node): boolean => {
    if (mm.fused === undefined) return true;
    const { flags } = epilogue(g, mm, g.nodes[mm.fused]);
    return flags.every((f) => f.slice(0, f.length - 1).every((x) => x === f[0]));
  };
  // For the NCHW store (plan-conv-gather.ts): w is read as a plain f32 [O, K] (its transpose folded) and every
  // epilogue input is a per-channel vector or a scalar, the same along the rows.
  const plainW = (mm: Node): boolean => nchwWeight(g, { folded: permutes, casts }, mm) !== undefined;
  const perChannel = (mm: Node): boolean =>
    plainW(mm) && (mm.fused === undefined || epilogue(g, mm, g.nodes[mm.fused]).flags.every((f) => f.slice(0, f.length - 1).every(Boolean)));
  const gathers = convGathers(g, uses, ok, rowsMerge, perChannel, (id) => permutes.has(id), (id) => casts.has(id));
  return { folded: permutes, casts, epilogueOf, gathers, scratchBase: g.nodes.length, scratches: [] };
}

const STORAGE: readonly DType[] = ["f32", "f16", "bf16"];
const isSwap = (p: Node): boolean => {
  if (p.op !== "permute") return false;
  const perm = (p.attrs as { perm: number[] }).perm;
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((q, i) => q === i);
};
const castTo = (p: Node): DType => (p.attrs as { to: DType }).to;

/**
 * Operand chains a matmul reads directly: a permute swapping the last two axes and/or a cast between f32, f16
 * and bf16 (one of each, in either order), when every use of the node is such a chain under the same guards and
 * it is no output, update, guard or fused group's root. Anything with another use keeps its kernel.
 */
function foldedOperands(g: Graph): { permutes: Set<number>; casts: Set<number>; ok: (p: Node, user: Node) => boolean; uses: number[] } {
  const uses = useCounts(g);
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  for (const n of g.nodes) for (const gd of n.guard ?? []) pinned.add(gd.cond);
  const isCast = (p: Node): boolean =>
    p.op === "cast" && isFloat(p.type.dtype) && STORAGE.includes(castTo(p)) && STORAGE.includes(g.nodes[p.inputs[0]].type.dtype);
  // A node other nodes are fused into is a kernel's root (an elementwise group, a matmul epilogue): it stays.
  const roots = new Set<number>();
  for (const n of g.nodes) if (n.fused !== undefined) roots.add(n.fused);
  const movable = (p: Node, user: Node) => !pinned.has(p.id) && !roots.has(p.id) && guardKey(p.guard) === guardKey(user.guard);
  const ok = (p: Node, user: Node) => (isSwap(p) || isCast(p)) && movable(p, user);
  const hits = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) if (n.op === "matmul") for (const id of n.inputs) if (ok(g.nodes[id], n)) hits[id]++;
  const first = g.nodes.filter((p) => hits[p.id] > 0 && hits[p.id] === uses[p.id]);
  // Second links: the other kind of fold under a folded first one.
  const hits2 = new Array<number>(g.nodes.length).fill(0);
  for (const p of first) {
    const q = g.nodes[p.inputs[0]];
    if (ok(q, p) && isSwap(q) !== isSwap(p)) hits2[q.id]++;
  }
  const second = g.nodes.filter((q) => hits2[q.id] > 0 && hits2[q.id] === uses[q.id]);
  const all = [...first, ...second];
  return { permutes: new Set(all.filter(isSwap).map((p) => p.id)), casts: new Set(all.filter((p) => !isSwap(p)).map((p) => p.id)), ok: movable, uses };
}

interface Operand {
  src: number;
  trans: boolean;
  dtype: DType;
  round?: "f16" | "bf16";
}

/** Follows the folded permute/cast chain of a matmul operand to the buffer it reads. */
function operand(g: Graph, mm: Pick<MatmulPlan, "folded" | "casts">, id: number): Operand {
  let trans = false;
  let round: "f16" | "bf16" | undefined;
  while (mm.folded.has(id) || mm.casts.has(id)) {
    const p = g.nodes[id];
    if (mm.folded.has(id)) trans = true;
    else {
      const to = castTo(p);
      // A widening cast is exact; a narrowing one rounds (the outermost narrowing wins, being applied last).
      if (round === undefined && (to === "f16" || to === "bf16")) round = to;
    }
    id = p.inputs[0];
  }
  const dtype = g.nodes[id].type.dtype;
  return { src: id, trans, dtype, ...(round && round !== dtype ? { round } : {}) };
}

/**
 * One matmul kernel call; with `root`, the fused group rooted there (the matmul is one of its leaves) becomes the
 * epilogue and the step writes the root's value.
 */
export function planMatmul(g: Graph, n: Node, table: Interner, step: StepFn, mm: MatmulPlan, root?: Node): void {
  const [a, b] = n.inputs.map((i) => g.nodes[i].type.shape);
  const gather = mm.gathers.of.get(n.id);
  if (gather?.nchw) return planConvNchw(g, n, table, step, mm, root, gather);
  const [A, B] = n.inputs.map((i, q) => (q === 0 && gather ? gatherOperand(gather) : operand(g, mm, i)));
  const as = a.length === 1 ? [1, a[0]] : a;
  const bs = b.length === 1 ? [b[0], 1] : b;
  const M = as[as.length - 2], K = as[as.length - 1], N = bs[bs.length - 1];
  const batchRank = Math.max(as.length, bs.length) - 2;
  const pad = (s: readonly Dim[]) => [...Array(batchRank - (s.length - 2)).fill(1), ...s.slice(0, -2)] as Dim[];
  const ab = pad(as), bb = pad(bs);
  const batch = ab.map((d, k) => (d === 1 ? bb[k] : d));
  const epi = root ? epilogue(g, n, root) : undefined;
  // A 16-bit store needs the f32 sums staged; with one K block only an MR-row band of them at a time.
  const partial: PartialSums = epi === undefined || epi.spec.out === "f32" ? false : typeof K === "number" && K <= KC ? "band" : "block";
  // One B for every batch of a row-major A ([..., M, K] @ [K, N]) is a single gemm over all the rows, unless an
  // epilogue input broadcasts along some but not all of those row axes.
  const rowsAlike = (f: readonly boolean[]) => f.slice(0, batchRank + 1).every((x) => x === f[0]);
  const merge = batchRank > 0 && !A.trans && bb.every((d) => d === 1) && (epi?.flags.every(rowsAlike) ?? true);
  if (gather && !gather.trans && batchRank > 0 && !merge) throw new Error(`planner: a convolution gather needs one gemm over all rows (compiler bug)`);
  const rows = merge ? [...batch, M] : [M];
  const dtype = n.type.dtype;
  const out = root ?? n;
  // A plain f32 weight (a param read as is or through reshapes, which are views of it — a convolution's [O, C, KH,
  // KW] as [O, C*KH*KW] — one B for all rows) in a function that changes no param: packed into panels once per
  // value by the runtime instead of on every call (wasm/matmul.ts, runtime/wasm/prepack.ts).
  const prepack = dtype === "f32" && B.dtype === "f32" && !B.round && paramBehind(g, B.src) && !g.updates?.length
    && (merge || batchRank === 0) && typeof K === "number" && typeof N === "number";
  const spec: MatmulKernel = {
    kind: "matmul",
    dtype,
    batchRank: merge ? 0 : batchRank,
    aBcast: merge ? [] : ab.map((d, k) => d === 1 && batch[k] !== 1),
    bBcast: merge ? [] : bb.map((d, k) => d === 1 && batch[k] !== 1),
    transA: A.trans,
    transB: B.trans,
    ...(A.dtype !== dtype ? { aDtype: A.dtype as "f32" } : {}),
    ...(B.dtype !== dtype ? { bDtype: B.dtype as "f32" } : {}),
    ...(A.round ? { aRound: A.round } : {}),
    ...(B.round ? { bRound: B.round } : {}),
    ...flagOf(out),
    ...(prepack ? { prepackedB: true as const } : {}),
    ...(gather ? { aConv: gather.conv } : {}),
    ...(epi ? { epilogue: { ...epi.spec, inputs: epi.spec.inputs.map((inp, i) => ({ ...inp, bcast: merge ? [epi.flags[i]![0]!, epi.flags[i]!.at(-1)!] : epi.flags[i]! })), ...(partial === "band" ? { singleK: true as const } : {}) } } : {}),
  };
  const known = (ds: readonly Dim[]) => (ds.every((d) => typeof d === "number") ? (ds as number[]).reduce((x, y) => x * y, 1) : undefined);
  const m = polyProduct(rows);
  const scratch = mm.scratchBase + mm.scratches.length;
  const bound = matmulScratchBytes(known(rows), known([K]), known([N]), partial);
  // A 16-bit epilogue with K unknown here chooses band or block per call (wasm/matmul.ts); so does its scratch.
  const runtimePartial = partial === "block" && typeof K !== "number" ? "auto" : partial;
  const sizing: MatmulScratchSpec = { M: m, K: polyProduct([K]), N: polyProduct([N]), ...(runtimePartial ? { partial: runtimePartial } : {}) };
  mm.scratches.push({ dtype: "f32", shape: [Math.ceil(bound / 4)], source: { kind: "temp", matmul: sizing } });
  const ints = [...(merge ? [] : batch).map((d) => polyProduct([d])), m, polyProduct([K]), polyProduct([N]), polyConst(0), m];
  const label = `${gather ? (gather.trans ? "conv_wgrad_" : "conv") : ""}${epi ? `matmul_${epi.ops.length}ep_${out.type.dtype}` : `matmul_${dtype}`}`;
  const ops = [...(gather?.ops ?? []), n.op, ...(epi?.ops ?? [])];
  const extra = prepack ? { prepackB: { kernel: prepackName(B.trans), K: K as number, N: N as number } } : undefined;
  step(table.intern(spec, label), [A.src, B.src, scratch, ...(epi?.bufs ?? []), out.id], ints, out, ops, extra);
}

/** A gathered convolution's x as the matmul's left operand: its storage and the rounding of a folded cast. */
function gatherOperand(gather: Gather): Operand {
  return { src: gather.x, trans: gather.trans === true, dtype: gather.dtype, ...(gather.round ? { round: gather.round } : {}) };
}

/** Whether node `id` is a param or a reshape of one (the same memory: the value is an alias of the param's). */
function paramBehind(g: Graph, id: number): boolean {
  let n = g.nodes[id];
  while (n.op === "reshape" || n.op === "stop_gradient") n = g.nodes[n.inputs[0]];
  return n.op === "param";
}

/**
 * The convolution weight as a plain f32 [O, K] for the NCHW store: its transpose folded, or (training, where the
 * input gradient reads the transpose too, so it is stored) read from the transpose's input all the same.
 */
function nchwWeight(g: Graph, mm: Pick<MatmulPlan, "folded" | "casts">, n: Node): Operand | undefined {
  const b = operand(g, mm, n.inputs[1]);
  // Mixed precision: an f16/bf16 copy param, or a rounded f32 one (plan-conv-gather-half.ts's switch).
  const storable = (d: DType, round?: string) => (d === "f32" && round === undefined) || (halfGatherEnabled() && STORAGE.includes(d));
  if (b.trans && storable(b.dtype, b.round)) return b;
  const p = g.nodes[n.inputs[1]];
  const d = g.nodes[p.inputs[0]]?.type.dtype;
  if (!b.trans && isSwap(p) && p.type.shape.length === 2 && d !== undefined && storable(d)) return { src: p.inputs[0], trans: true, dtype: d };
  return undefined;
}

/** A gathered convolution stored straight in NCHW (kernel.ts convOut): out[n] = w [O, K] · patches(n)ᵀ. */
function planConvNchw(g: Graph, n: Node, table: Interner, step: StepFn, mm: MatmulPlan, root: Node | undefined, gather: Gather): void {
  const B = nchwWeight(g, mm, n)!;
  const [K, O] = g.nodes[n.inputs[1]].type.shape as [number, number];
  const P = gather.conv.OH * gather.conv.OW;
  const images = g.nodes[gather.x].type.shape[0]!;
  const epi = root ? epilogue(g, n, root) : undefined;
  // A param weight (read as is or through reshapes) in a function that changes no param: transformed once per value.
  const paramW = !B.round && paramBehind(g, B.src) && !g.updates?.length;
  // Winograd transforms plain f32 operands only: a 16-bit or rounded x or w takes the gathered matmul.
  const A = gatherOperand(gather);
  const plainAB = A.dtype === "f32" && !A.round && B.dtype === "f32" && !B.round;
  const wino = plainAB ? winogradFor(gather.conv, O, paramW) : undefined;
  const prepack = wino?.prepacked === true;
  const spec: MatmulKernel = {
    kind: "matmul", dtype: "f32", batchRank: 1, aBcast: [false], bBcast: [true], transB: true, aConv: gather.conv, convOut: true,
    ...(A.dtype !== "f32" ? { aDtype: A.dtype as "f16" } : {}),
    ...(A.round ? { aRound: A.round } : {}),
    ...(B.dtype !== "f32" ? { bDtype: B.dtype as "f16" } : {}),
    ...(B.round ? { bRound: B.round } : {}),
    ...(wino ? { winograd: wino } : {}),
    // Per-channel inputs (plan-conv-gather.ts): the same for every image and pixel.
    ...(epi ? { epilogue: { ...epi.spec, inputs: epi.spec.inputs.map((inp, i) => ({ ...inp, bcast: [true, epi.flags[i]!.at(-1)!, true] })) } } : {}),
  };
  const scratch = mm.scratchBase + mm.scratches.length;
  const floor = wino ? { minBytes: winogradScratchBytes(gather.conv, wino) } : {};
  const bytes = Math.max(matmulScratchBytes(O, K, P, false), floor.minBytes ?? 0);
  mm.scratches.push({ dtype: "f32", shape: [Math.ceil(bytes / 4)], source: { kind: "temp", matmul: { M: polyConst(O), K: polyConst(K), N: polyConst(P), ...floor } } });
  const ints = [polyProduct([images]), polyConst(O), polyConst(K), polyConst(P), polyConst(0), polyConst(O)];
  const label = `conv_${wino ? "wino" : "nchw"}_${epi ? `${epi.ops.length}ep` : "f32"}`;
  const ops = [...gather.ops, n.op, ...(epi?.ops ?? []), ...gather.nchw!.ops];
  const extra = prepack ? { prepackB: { kernel: WINOGRAD_PREPACK, K, N: O, layout: "winograd" as const } } : undefined;
  step(table.intern(spec, label), [gather.x, B.src, scratch, ...(epi?.bufs ?? []), gather.nchw!.permute], ints, root ?? n, ops, extra);
}

/** The epilogue of `root`'s group: its expression with the matmul as input 0, other buffers as inputs 1... */
function epilogue(g: Graph, mmNode: Node, root: Node): { spec: MatmulEpilogue; bufs: number[]; flags: boolean[][]; ops: string[] } {
  const { exprOf, bufs, ops } = groupExpr(g, root.id, [], mmNode.id);
  const expr = exprOf(root.id);
  const flags = bcastFlags(g, bufs, mmNode.type.shape);
  const inputs = bufs.map((id, i) => ({ dtype: g.nodes[id].type.dtype, bcast: flags[i]! }));
  return { spec: { inputs, expr, out: root.type.dtype }, bufs, flags, ops };
}
