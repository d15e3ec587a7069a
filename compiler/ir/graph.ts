// IR stage: the graph that lowering produces and every pass transforms. One Graph per exported function;
// each node computes one tensor value (its id is the value's id) from earlier nodes, in topological order.

import type { Span } from "../diagnostics.js";
import type { AttrsOf, PrimOp } from "../ops/types.js";
import type { DataParallelLayout, InitSpec } from "../../runtime/manifest.js";
import type { DType, TensorType } from "./types.js";

export interface Node<P extends PrimOp = PrimOp> {
  readonly id: number;
  readonly op: P;
  readonly inputs: readonly number[];
  readonly attrs: AttrsOf[P];
  readonly type: TensorType;
  /** Source position of the expression that produced it (absent for nodes passes create). */
  readonly span?: Span;
  /**
   * Run-time conditions under which the node's value is used (a branch of an `if`, an iteration of a loop with
   * a run-time trip count). When one fails, backends skip the node and its value reads as zeros.
   */
  readonly guard?: readonly Guard[];
  /** Set by the fusion pass on the members of a fused group: the id of the group's root (its kernel). */
  readonly fused?: number;
  /**
   * Set by the fusion pass on the root of a group computed as an extra output of another group's kernel (a
   * consumer of a pinned value, e.g. the f16 copy of an updated weight): that group's root. Still stored.
   */
  readonly storedBy?: number;
  /**
   * Set by the fusion pass on a kernel's root (passes/fusion-finite.ts): that kernel also clears the flag of the
   * `all_finite` node with this id when a value it stores is not finite, so the check reads no memory of its own.
   */
  readonly finiteInto?: number;
  /**
   * The autocast region the node was lowered in (`@autocast(f16)` on its function or an inlining caller): the
   * precision pass applies that policy to it instead of the module's `--precision`.
   */
  readonly precision?: Autocast;
}

/** The dtype of an `@autocast(...)` region: f32 switches mixed precision off inside it. */
export type Autocast = "f16" | "bf16" | "f32";

/** "Only when the bool scalar `cond` is `when`". */
export interface Guard {
  readonly cond: number;
  readonly when: boolean;
}

export interface GraphIO {
  readonly name: string;
  readonly node: number;
  /**
   * The caller's dtype of an input whose node is stored narrower (the precision pass keeps an f32 input that
   * only matmuls read in f16/bf16): the signature keeps this dtype, the runtime converts while copying in.
   */
  readonly dtype?: DType;
  /**
   * An integer input used as class labels (one_hot / cross_entropy over this many classes): the runtime rejects
   * an element outside [0, classes) instead of computing a loss that silently ignores it.
   */
  readonly classes?: number;
  /** With `classes`: the label every use ignores (cross_entropy's ignore_index), allowed outside the range. */
  readonly ignoreIndex?: number;
  /**
   * A run-time check rather than a result: the node is an i32 scalar, the trip count of a `for` loop whose count
   * is only known at run time where it exceeds `max`, else 0 (also when the loop sits in a branch not taken).
   * The call fails, naming `loop` and the count, when it is above `max`. The planner moves such outputs into
   * the manifest's `checks`; the reference interpreter checks them too.
   */
  readonly check?: LoopCheck;
  /**
   * An i32 input used as indices (take, embedding, gather): every value must be in [0, bound); the runtime checks
   * it on the way in and names the input and the index (a kernel would silently read zeros).
   */
  readonly bound?: number;
}

export interface LoopCheck {
  /** The loop as written, with its position: "for i in 0..n, max: 8 (t.kiln:3:3)". */
  readonly loop: string;
  readonly max: number;
}

/** An input's type as the caller sees it (the signature), which the node's type narrows when stored low. */
export function ioType(g: Graph, io: GraphIO): TensorType {
  const t = g.nodes[io.node].type;
  return io.dtype ? { dtype: io.dtype, shape: t.shape } : t;
}

export interface Graph {
  /** Qualified name: "Model.method" or "fn". */
  readonly name: string;
  readonly model?: string;
  readonly nodes: Node[];
  readonly inputs: GraphIO[];
  readonly outputs: GraphIO[];
  /** Symbolic dims of the signature, in order of first appearance. */
  readonly dims: string[];
  /** User-written backward rules at their call sites; consumed (and dropped) by the autodiff pass. */
  readonly customVjps?: CustomVjp[];
  /** Params this function writes (a training step): the node holding each param's new value. */
  readonly updates?: { readonly param: string; readonly node: number }[];
  /** A train block's data-parallel grad or apply function (compiler/lower/train-parallel.ts): its gradient layout. */
  readonly parallel?: DataParallelLayout;
}

/**
 * One call of a function with a `backward` rule: the forward result `out`, the argument nodes, the
 * `cotangent` placeholder the backward body was lowered against, and the gradient node for each argument.
 */
export interface CustomVjp {
  readonly out: number;
  readonly inputs: readonly number[];
  readonly cotangent: number;
  readonly grads: readonly number[];
}

export interface ParamInfo {
  /** Qualified "Model.param". */
  readonly name: string;
  readonly model: string;
  /**
   * "state": optimizer state owned by a train block (momentum, moments, step count) rather than a model weight.
   * "copy": the f16/bf16 copy of the f32 master weight `copyOf` that matmuls read under mixed precision; the
   * runtime derives it from the master (never initialised, saved or loaded on its own).
   */
  readonly role?: "state" | "copy";
  /** For role "copy": the qualified name of the master weight. */
  readonly copyOf?: string;
  readonly type: TensorType;
  readonly init: InitSpec;
  readonly span?: Span;
}

export interface IRModule {
  readonly source: string;
  /** The module-wide `--precision` policy for the precision pass (absent: f32, nothing changes). */
  readonly precision?: "f16" | "bf16";
  readonly params: ParamInfo[];
  readonly functions: Graph[];
}

/** Appends nodes with fresh ids; used by lowering and by passes that rebuild graphs. */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  /** Guards stamped on every node added (lowering pushes one per branch or loop iteration it is inside). */
  guards: Guard[] = [];
  /** The autocast region being lowered (stamped on every node added; see Node.precision). */
  precision?: Autocast;
  /** Input nodes used as indices, with the exclusive upper bound of their values (GraphIO.bound). */
  readonly indexBounds = new Map<number, number>();
  /**
   * The function input whose values `id` holds, rearranged or not (through reshapes and permutes), else undefined:
   * what the runtime can check for a value used as labels or indices.
   */
  inputBehind(id: number): number | undefined {
    let node = this.nodes[id];
    while (node && (node.op === "reshape" || node.op === "permute")) node = this.nodes[node.inputs[0]!];
    return node?.op === "input" ? node.id : undefined;
  }
  /** Records that the values of `id` index an axis of size `n`, when `id` is an input (or a reshape or permute of one). */
  boundIndices(id: number, n: number): void {
    const input = this.inputBehind(id);
    if (input !== undefined) this.indexBounds.set(input, Math.min(n, this.indexBounds.get(input) ?? Infinity));
  }
  /** `inputs` with the bounds recorded for them. */
  withBounds(inputs: readonly GraphIO[]): GraphIO[] {
    return inputs.map((i) => (this.indexBounds.has(i.node) ? { ...i, bound: this.indexBounds.get(i.node)! } : i));
  }
  add<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P], type: TensorType, span?: Span, guard: readonly Guard[] = this.guards): number {
    const id = this.nodes.length;
    const base: Node = guard.length ? { id, op, inputs, attrs, type, span, guard: [...guard] } : { id, op, inputs, attrs, type, span };
    const node: Node = this.precision ? { ...base, precision: this.precision } : base;
    this.nodes.push(node);
    return id;
  }
  /** Runs `f` with `g` added to the guards of every node it creates. */
  guarded<T>(g: Guard, f: () => T): T {
    const saved = this.guards;
    this.guards = [...saved, g];
    try {
      return f();
    } finally {
      this.guards = saved;
    }
  }
  type(id: number): TensorType {
    return this.nodes[id].type;
  }
}

/** g with its nodes replaced by `nodes`, where old node i is now `map[i]`: inputs, outputs and updates follow. */
export function withNodes(g: Graph, nodes: Node[], map: readonly number[]): Graph {
  return {
    ...g,
    nodes,
    inputs: g.inputs.map((i) => ({ ...i, node: map[i.node]! })),
    outputs: g.outputs.map((o) => ({ ...o, node: map[o.node]! })),
    updates: g.updates?.map((u) => ({ ...u, node: map[u.node]! })),
  };
}

export function remapGuard(g: readonly Guard[] | undefined, map: (id: number) => number): Guard[] {
  return (g ?? []).map((x) => ({ cond: map(x.cond), when: x.when }));
}

export function guardKey(g: readonly Guard[] | undefined): string {
  return (g ?? []).map((x) => `${x.when ? "" : "!"}${x.cond}`).join("&");
}

export function nodeOf(g: Graph, id: number): Node {
  return g.nodes[id];
}

/** Number of consumers of each node (graph outputs count as consumers). */
export function useCounts(g: Graph): number[] {
  const uses = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) for (const i of n.inputs) uses[i]++;
  for (const o of g.outputs) uses[o.node]++;
  return uses;
}
