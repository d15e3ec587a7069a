// IR stage: the graph that lowering produces and every pass transforms. One Graph per exported function;
// each node computes one tensor value (its id is the value's id) from earlier nodes, in topological order.

import type { Span } from "../diagnostics.js";
import type { AttrsOf, PrimOp } from "../ops/types.js";
import type { InitSpec } from "../../runtime/manifest.js";
import type { TensorType } from "./types.js";

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
}

/** "Only when the bool scalar `cond` is `when`". */
export interface Guard {
  readonly cond: number;
  readonly when: boolean;
}

export interface GraphIO {
  readonly name: string;
  readonly node: number;
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
  /** Optimizer state owned by a train block (momentum, moments, step count) rather than a model weight. */
  readonly role?: "state";
  readonly type: TensorType;
  readonly init: InitSpec;
  readonly span?: Span;
}

export interface IRModule {
  readonly source: string;
  readonly params: ParamInfo[];
  readonly functions: Graph[];
}

/** Appends nodes with fresh ids; used by lowering and by passes that rebuild graphs. */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  /** Guards stamped on every node added (lowering pushes one per branch or loop iteration it is inside). */
  guards: Guard[] = [];
  add<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P], type: TensorType, span?: Span, guard: readonly Guard[] = this.guards): number {
    const id = this.nodes.length;
    const node: Node = guard.length ? { id, op, inputs, attrs, type, span, guard: [...guard] } : { id, op, inputs, attrs, type, span };
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
