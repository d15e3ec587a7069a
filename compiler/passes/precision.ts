// Pass "precision": mixed precision decided at compile time (PyTorch autocast + master weights). Under
// `--precision mixed-f16|bf16` or inside an `@autocast(f16|bf16)` region, matmuls (conv's too: window + matmul)
// read f16/bf16 operands and accumulate in f32; every other op computes in f32. Values stored low, so each is kept
// only in 16 bits (fusion folds the casts into the kernels that produce and read them):
//   - activations a matmul reads: `cast(v, low)` right after the producer, other consumers read `cast(v16, f32)`;
//   - matmul results (forward outputs and weight/input gradients alike, as autocast gives f16 matmul outputs):
//     same scheme. f16 gradients underflow without a loss scale, so mixed-f16 train blocks get one (train.ts);
//   - weights: a matmul reading an f32 param (through reshapes/permutes) reads its copy param (role "copy"),
//     which every training step that updates the master refreshes with an extra update `cast(W_new, low)`.
//   - function inputs only low matmuls read (through views): the `input` node is typed f16/bf16 and its GraphIO
//     keeps `dtype: "f32"`, the caller's dtype (signature, .d.ts and manifest TensorSig stay f32; the manifest adds
//     `storage`); the runtime rounds the caller's f32 data while copying it in, which is what the matmul did anyway.
// Function outputs and updates keep their f32 values. With no policy anywhere the module is returned unchanged.

import type { DiagnosticBag } from "../diagnostics.js";
import { GraphBuilder, withNodes, remapGuard, type Graph, type IRModule, type Node, type ParamInfo } from "../ir/graph.js";
import type { DType, TensorType } from "../ir/types.js";
import { OPS } from "../ops/registry.js";
import { BINARY_OPS, COMPARE_OPS, isRuleError, REDUCE_OPS, UNARY_OPS, type PrimOp } from "../ops/types.js";

type Low = "f16" | "bf16";

/** Ops the policy computes in f32: on f16/bf16 values written by the user they widen, compute, and round back. */
const F32_OPS = new Set<PrimOp>([...UNARY_OPS, ...BINARY_OPS, ...COMPARE_OPS, ...REDUCE_OPS, "where", "argmax"]);
/**
 * Single-input layout ops a low-precision value is rebuilt through: W^T of a copy param is a permute of the copy,
 * and conv's im2col (pad + window) copies 16-bit elements instead of being cast after the copy.
 */
const VIEW_OPS = new Set<PrimOp>(["reshape", "permute", "broadcast_to", "pad", "window", "slice"]);
const COMPARE = new Set<PrimOp>(COMPARE_OPS);
const isLow = (d: DType): d is Low => d === "f16" || d === "bf16";

export function copyName(master: string, dt: Low): string {
  return `${master}.${dt}`;
}

export function precision(m: IRModule, _diags?: DiagnosticBag): IRModule {
  const policyOf = (n: Node): Low | undefined => {
    const p = n.precision ?? m.precision;
    return p === "f16" || p === "bf16" ? p : undefined;
  };
  if (!m.functions.some((g) => g.nodes.some((n) => policyOf(n)))) return m;
  const copies = new Map<string, ParamInfo>();
  const byName = new Map(m.params.map((p) => [p.name, p]));
  let functions = m.functions.map((g) => rewriteGraph(g, policyOf, (master, dt) => {
    const name = copyName(master, dt);
    const p = byName.get(master)!;
    if (!copies.has(name)) copies.set(name, { name, model: p.model, role: "copy", copyOf: master, type: { dtype: dt, shape: p.type.shape }, init: { kind: "copy", of: master }, span: p.span });
    return name;
  }));
  functions = functions.map((g) => dropDead(refreshCopies(g, [...copies.values()])));
  // Each copy right after its master (initParams derives it from the master's values).
  const params = m.params.flatMap((p) => [p, ...[...copies.values()].filter((c) => c.copyOf === p.name)]);
  return { ...m, params, functions };
}

function rewriteGraph(g: Graph, policyOf: (n: Node) => Low | undefined, copyOf: (master: string, dt: Low) => string): Graph {
  const nodes = g.nodes;
  const pinned = new Set<number>([...g.outputs.map((o) => o.node), ...(g.updates ?? []).map((u) => u.node)]);
  const through = (i: number): number => (VIEW_OPS.has(nodes[i].op) && nodes[i].type.dtype === "f32" ? through(nodes[i].inputs[0]) : i);
  const consumers: number[][] = nodes.map(() => []);
  for (const n of nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  // A value compared for equality must stay exact: max-pool's gradient finds the max by eq(window, max), and a
  // rounded max would match no element (0/0). Such values are cast per matmul use instead of stored low.
  const compared = (i: number): boolean => consumers[i].some((c) => COMPARE.has(nodes[c].op) || (VIEW_OPS.has(nodes[c].op) && compared(c)));
  // max_pool2d's output (a max with `first`) stays f32 too, as it did while its gradient compared it: a cast
  // after a reduction would be a kernel of its own, and the rounding would reach every gradient below it.
  const poolMax = (i: number) => (nodes[i].op === "max" || nodes[i].op === "min") && (nodes[i].attrs as { first?: true }).first === true;
  const storable = (i: number) => nodes[i].type.dtype === "f32" && !pinned.has(i) && !["input", "param", "const", "random_uniform", "dim_size"].includes(nodes[i].op) && !compared(i) && !poolMax(i);
  // Values kept only in low precision: what low-policy matmuls read (seen through views), and their results.
  const stored = new Map<number, Low>();
  for (const n of nodes) {
    const dt = policyOf(n);
    if (n.op !== "matmul" || !dt || !mixable(nodes, n, dt)) continue;
    for (const i of n.inputs) {
      const base = through(i);
      if (storable(base) && !stored.has(base)) stored.set(base, dt);
    }
    if (storable(n.id) && !stored.has(n.id)) stored.set(n.id, dt);
  }
  // Function inputs only low matmuls read (through views): stored low from the start (see lowInputs).
  const inputLow = lowInputs(nodes, consumers, policyOf, storable);
  for (const i of pinned) inputLow.delete(i);
  for (const [i, dt] of inputLow) stored.set(i, dt);

  const b = new GraphBuilder();
  const map: number[] = [];
  const low = new Map<string, number>(); // `${old id}:${dt}` -> new id of the value in dt
  const guardOf = (i: number) => remapGuard(nodes[i].guard, (c) => map[c]);
  const add = (op: PrimOp, inputs: number[], attrs: object, type: TensorType, from: number) => {
    b.precision = undefined;
    return b.add(op, inputs, attrs as never, type, undefined, guardOf(from));
  };
  // One widening cast per use, never shared: each folds into its own consumer's kernel, so the 16-bit value is
  // what gets stored. A shared cast with several consumers would be the root of its producer's group (a matmul
  // epilogue would then store the widened f32 value, undoing the memory saving).
  const use = (i: number): number => {
    if (!stored.has(i)) return map[i];
    return add("cast", [low.get(`${i}:${stored.get(i)}`)!], { to: "f32" }, nodes[i].type, i);
  };
  const lowOf = (i: number, dt: Low): number => {
    const n = nodes[i];
    if (n.type.dtype === dt) return map[i];
    const key = `${i}:${dt}`;
    const have = low.get(key);
    if (have !== undefined) return have;
    const type = { dtype: dt, shape: n.type.shape };
    let id: number;
    if (n.op === "param" && n.type.dtype === "f32") id = add("param", [], { name: copyOf((n.attrs as { name: string }).name, dt) }, type, i);
    else if (VIEW_OPS.has(n.op) && n.type.dtype === "f32" && cheap(n.inputs[0], dt)) id = add(n.op, [lowOf(n.inputs[0], dt)], n.attrs, type, i);
    else if (stored.get(i) === dt) id = add("cast", [map[i]], { to: dt }, type, i);
    // Not held low: one cast per matmul operand (not shared), so fusion folds each into its operand loading.
    else return add("cast", [use(i)], { to: dt }, type, i);
    low.set(key, id);
    return id;
  };
  /**
   * Whether `i` in `dt` needs no cast kernel of its own: a param (its copy), a value already held low, or a view
   * of one. Otherwise the cast goes right before the matmul, where fusion folds it into the operand loading.
   */
  const cheap = (i: number, dt: Low): boolean => {
    const n = nodes[i];
    if (n.type.dtype === dt || (n.op === "param" && n.type.dtype === "f32") || stored.get(i) === dt || low.has(`${i}:${dt}`)) return true;
    return VIEW_OPS.has(n.op) && n.type.dtype === "f32" && cheap(n.inputs[0], dt);
  };
  const widen = (i: number) => (isLow(nodes[i].type.dtype) ? add("cast", [use(i)], { to: "f32" }, { dtype: "f32", shape: nodes[i].type.shape }, i) : use(i));

  for (const n of nodes) {
    const dt = policyOf(n);
    const copy = (inputs: number[]) => {
      b.precision = n.precision;
      return b.add(n.op, inputs, n.attrs, n.type, n.span, guardOf(n.id));
    };
    const inLow = inputLow.get(n.id);
    if (inLow) {
      // The caller's f32 data arrives rounded to 16 bits (the runtime converts while copying it in).
      map[n.id] = b.add("input", [], n.attrs as never, { dtype: inLow, shape: n.type.shape }, n.span, guardOf(n.id));
      low.set(`${n.id}:${inLow}`, map[n.id]);
      continue;
    }
    const src = stored.get(n.inputs[0]);
    if (src && VIEW_OPS.has(n.op) && n.type.dtype === "f32" && !stored.has(n.id) && storable(n.id)) {
      // A layout op of a value stored low moves 16-bit elements; its consumers widen it (no cast kernel between).
      stored.set(n.id, src);
      low.set(`${n.id}:${src}`, add(n.op, [low.get(`${n.inputs[0]}:${src}`)!], n.attrs, { dtype: src, shape: n.type.shape }, n.id));
      continue;
    }
    if (n.op === "matmul" && dt && mixable(nodes, n, dt)) {
      const ins = n.inputs.map((i) => lowOf(i, dt));
      b.precision = n.precision;
      map[n.id] = b.add("matmul", ins, {}, { dtype: "f32", shape: n.type.shape }, n.span, guardOf(n.id));
    } else if (n.op === "cast" && isLow(n.type.dtype) && stored.get(n.inputs[0]) === n.type.dtype) {
      map[n.id] = lowOf(n.inputs[0], n.type.dtype); // the user's own cast of a value already stored low
    } else if (dt && F32_OPS.has(n.op) && (isLow(n.type.dtype) || n.inputs.some((i) => isLow(nodes[i].type.dtype)))) {
      // f16/bf16 values the user computes on: computed in f32, the result rounded back to the declared dtype.
      const ins = n.inputs.map(widen);
      const r = OPS[n.op].infer(ins.map((i) => b.nodes[i].type), n.attrs as never);
      if (isRuleError(r)) map[n.id] = copy(n.inputs.map(use));
      else {
        b.precision = n.precision;
        const wideId = b.add(n.op, ins, n.attrs, r, n.span, guardOf(n.id));
        map[n.id] = r.dtype === n.type.dtype ? wideId : add("cast", [wideId], { to: n.type.dtype }, n.type, n.id);
      }
    } else if (n.op === "all_finite") {
      // Checks the value as stored: a 16-bit value is finite exactly when its widened use is, and reading it
      // directly lets fusion put the check into the kernel that stores it.
      map[n.id] = copy(n.inputs.map((i) => (stored.has(i) ? low.get(`${i}:${stored.get(i)}`)! : map[i])));
    } else map[n.id] = copy(n.inputs.map(use));
    const s = stored.get(n.id);
    if (s) lowOf(n.id, s); // stored low right after its producer
  }
  return {
    ...g,
    nodes: b.nodes,
    inputs: g.inputs.map((i) => (inputLow.has(i.node) ? { ...i, node: map[i.node], dtype: nodes[i.node].type.dtype } : { ...i, node: map[i.node] })),
    outputs: g.outputs.map((o) => ({ ...o, node: map[o.node] })),
    updates: g.updates?.map((u) => ({ ...u, node: map[u.node] })),
  };
}

/**
 * f32 function inputs whose every use, seen through layout views (none of them an output or compared), is an
 * operand of a low-policy matmul of one format: the matmul rounds the operand anyway, so storing the input in
 * 16 bits changes no result and halves its bytes. Such an input node is typed f16/bf16 while its GraphIO keeps
 * `dtype: "f32"` (the signature, the .d.ts and the manifest TensorSig stay f32; the manifest adds `storage`).
 */
function lowInputs(nodes: readonly Node[], consumers: number[][], policyOf: (n: Node) => Low | undefined, storable: (i: number) => boolean): Map<number, Low> {
  const out = new Map<number, Low>();
  // The one format every use needs, or null when some use needs f32.
  const need = (i: number): Low | null | undefined => {
    let want: Low | undefined;
    for (const c of consumers[i]) {
      const n = nodes[c];
      const dt = policyOf(n);
      let got: Low | null | undefined;
      if (n.op === "matmul") got = dt && mixable(nodes, n, dt) ? dt : null;
      else if (VIEW_OPS.has(n.op) && n.type.dtype === "f32" && storable(c)) got = need(c);
      else got = null;
      if (got === null || (want && got && got !== want)) return null;
      want = got ?? want;
    }
    return want;
  };
  for (const n of nodes) {
    if (n.op !== "input" || n.type.dtype !== "f32" || n.guard?.length) continue;
    const dt = need(n.id);
    if (dt) out.set(n.id, dt);
  }
  return out;
}

/** A matmul the policy can lower: both operands f32 or already `dt`. */
function mixable(nodes: readonly Node[], n: Node, dt: Low): boolean {
  return n.inputs.every((i) => nodes[i].type.dtype === "f32" || nodes[i].type.dtype === dt);
}

/** Drops the nodes nothing reads any more (masters and f32 views the low copies replaced); inputs stay. */
function dropDead(g: Graph): Graph {
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (const io of [...g.inputs, ...g.outputs, ...(g.updates ?? [])]) live[io.node] = true;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    if (!live[i]) continue;
    for (const x of g.nodes[i].inputs) live[x] = true;
    for (const x of g.nodes[i].guard ?? []) live[x.cond] = true;
  }
  if (live.every(Boolean)) return g;
  const map: number[] = [];
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    map[n.id] = nodes.length;
    const moved: Node = { ...n, id: nodes.length, inputs: n.inputs.map((i) => map[i]) };
    nodes.push(n.guard ? { ...moved, guard: remapGuard(n.guard, (c) => map[c]) } : moved);
  }
  return withNodes(g, nodes, map);
}

/** A step that updates a master also writes its copies: `cast(W_new, low)` as an extra update. */
function refreshCopies(g: Graph, copies: readonly ParamInfo[]): Graph {
  if (!g.updates?.length) return g;
  const nodes = [...g.nodes];
  const updates = [...g.updates];
  for (const u of g.updates) {
    for (const c of copies.filter((x) => x.copyOf === u.param)) {
      const src = nodes[u.node];
      const id = nodes.length;
      const base: Node = { id, op: "cast", inputs: [u.node], attrs: { to: c.type.dtype }, type: { dtype: c.type.dtype, shape: src.type.shape } };
      nodes.push(src.guard?.length ? { ...base, guard: src.guard } : base);
      updates.push({ param: c.name, node: id });
    }
  }
  return { ...g, nodes, updates };
}
