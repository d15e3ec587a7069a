// Lowering stage, the lowerer's contract: what builtins, control flow, grad, custom backward rules, optimizers and
// the loss scaler may ask of the function lowerer (lower-fn.ts implements it). They depend on this interface, not
// on FnLowerer itself, so lowering has no import cycle through its dispatch.

import type { Expr, FnDecl, Stmt } from "../frontend/kiln/ast.js";
import type { DiagnosticBag, Span } from "../diagnostics.js";
import type { CustomVjp, GraphBuilder, GraphIO } from "../ir/graph.js";
import type { Dim, DType, TensorType } from "../ir/types.js";
import type { PrimEmitter } from "../ops/composites.js";
import type { AttrsOf, PrimOp } from "../ops/types.js";
import type { ModelInfo, ModuleScope } from "./module-scope.js";
import type { ArgVal, Val } from "./values.js";

export interface Frame {
  readonly fnName: string;
  vars: Map<string, Val>;
  readonly dims: Map<string, Dim>;
  readonly model?: ModelInfo;
  /** Names declared by `let` in the innermost block (not merged out of branches and loops). */
  declared: Set<string>;
  /** Inside a loop body, where `return` is not allowed. */
  inLoop?: boolean;
}

/** What a function body's statements produced: the returned values, or nothing if control fell through. */
export interface BodyResult {
  readonly vals: Val[];
  readonly spans: Span[];
}

/** Options of an inlined call made for `grad`: which arguments and params to differentiate. */
export interface GradSpec {
  readonly wrtArgs: readonly number[];
  readonly wrtParams: readonly string[];
}

export interface Lowerer extends PrimEmitter {
  readonly b: GraphBuilder;
  readonly scope: ModuleScope;
  readonly diags: DiagnosticBag;
  /** Params being differentiated: qualified name -> the identity node standing for them (see grad.ts). */
  readonly paramOverrides: Map<string, number>;
  readonly customVjps: CustomVjp[];
  frame: Frame;
  /** Span of the expression being lowered: rule errors from emit() point here. */
  span: Span;
  /** Lowering a train block's step: dropout draws masks, batch_norm uses and updates batch statistics. */
  training: boolean;
  /** random_uniform streams handed out in this graph so far (each dropout call site gets its own). */
  streams: number;
  /** Lowering a data-parallel grad function: sync_batch_norm reduces its statistics across replicas (all_reduce). */
  collectives: boolean;
  /** batch_norm running statistics met in a train step: param name -> node of its new value (undefined: read only). */
  readonly statUpdates: Map<string, number | undefined>;
  lowerStmts(stmts: readonly Stmt[]): BodyResult | undefined;
  lowerRuleBody(frame: Frame, stmts: readonly Stmt[]): BodyResult | undefined;
  inChildScope<T>(body: () => T, loop?: boolean): { result: T; vars: Map<string, Val>; declared: Set<string> };
  expr(e: Expr): Val;
  arg(e: Expr): ArgVal;
  paramNode(model: ModelInfo, name: string): number;
  pair(l: Val, r: Val, ls: Span, rs: Span): [Val, Val];
  materialize(v: Val, span: Span, dtype?: DType): Val;
  emit<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P]): number | undefined;
  emitVal<P extends PrimOp>(op: P, inputs: readonly Val[], attrs: AttrsOf[P]): Val;
  unaryOp(op: PrimOp, v: Val): Val;
  constant(value: number, dtype: DType): number;
  type(id: number): TensorType;
  inlineCall(fn: FnDecl, model: ModelInfo | undefined, args: ArgVal[], call: { span: Span; calleeSpan: Span }, grad?: GradSpec): { results: Val[]; wrt: number[] } | undefined;
  identity(id: number): number;
  /** Run-time loop-bound checks of this graph, returned as extra outputs the planner moves to the manifest. */
  readonly checks: GraphIO[];
  /** Records that `id` indexes `classes` classes, when it is a function input the runtime can check. */
  markClassLabels(id: number, classes: number, ignoreIndex?: number): void;
}
