// Lowering stage, function bodies: AST statements and expressions -> IR nodes, with type and shape checks.
// Each exported function becomes one graph; calls to other user functions are inlined (their symbolic dims
// bound to the caller's), so every graph is self-contained.

import type { BinaryExpr, CallExpr, Expr, FnDecl, Stmt } from "../frontend/kiln/ast.js";
import type { Span } from "../diagnostics.js";
import { GraphBuilder, type CustomVjp, type Graph, type GraphIO } from "../ir/graph.js";
import { lowerFor, lowerIf, lowerWhile } from "./control-flow.js";
import { lowerApply } from "./grad.js";
import { lowerCustomBackward } from "./custom-backward.js";
import { literalRangeError } from "./literal-range.js";
import { MAX_GRAPH_NODES, tooManyElements, TOO_MANY_ELEMENTS_HINT } from "./size-limits.js";
import { formatType, isFloat, isInt, type Dim, type DType, type TensorType } from "../ir/types.js";
import type { PrimEmitter } from "../ops/composites.js";
import { OPS } from "../ops/registry.js";
import { isRuleError, type AttrsOf, type BinaryOpName, type CompareOp, type PrimOp } from "../ops/types.js";
import { remainder64 } from "../ops/special-functions.js";
import { builtinNames, callBuiltin, isBuiltin } from "./builtins.js";
import { ownersOf, paramOwner, type ModelInfo, type ModuleScope } from "./module-scope.js";
import { lowerIndex } from "./indexing.js";
import { lowerMemberCall, subValue } from "./submodules.js";
import { dimArith, dimValue } from "./dim-arith.js";
import { resolveType, unifyType } from "./types-from-ast.js";
import { POISON, tensor, type ArgVal, type Val } from "./values.js";
import { closest } from "../suggest.js";
import { autocastOf } from "./autocast.js";
import type { BodyResult, Frame, GradSpec, Lowerer } from "./lowerer.js";

export type { BodyResult, Frame, GradSpec } from "./lowerer.js";

/** `%` is torch.remainder (Python's %, the sign of the divisor), defined for floats. */
const ARITH: Record<string, BinaryOpName> = { "+": "add", "-": "sub", "*": "mul", "/": "div", "%": "remainder", "**": "pow" };
const COMPARE: Record<string, CompareOp> = { "==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge" };

export class FnLowerer implements Lowerer {
  readonly b = new GraphBuilder();
  private readonly paramNodes = new Map<string, number>();
  /** Params being differentiated: qualified name -> the identity node standing for them (see grad.ts). */
  readonly paramOverrides = new Map<string, number>();
  private readonly callStack: string[] = [];
  readonly customVjps: CustomVjp[] = [];
  /** Input nodes used directly as class labels, with the fewest classes they index (GraphIO.classes). */
  readonly classLabels = new Map<number, number>();
  /** Per labels input, the ignore_index every use shares (null: some use ignores none, or another). */
  private readonly ignoredLabels = new Map<number, number | null>();
  /** Set once the graph passed MAX_GRAPH_NODES (K503 is reported at the first node past it, once). */
  private tooLarge = false;

  /**
   * Records that `id` indexes `classes` classes, when it is a function input the runtime can check, or a reshape or
   * permute of one (the same values: reshape(y, [B * T]) as cross_entropy's labels checks y).
   */
  markClassLabels(at: number, classes: number, ignoreIndex?: number): void {
    const id = this.b.inputBehind(at);
    if (id === undefined) return;
    const first = !this.classLabels.has(id);
    this.classLabels.set(id, Math.min(classes, this.classLabels.get(id) ?? classes));
    const prev = this.ignoredLabels.get(id);
    this.ignoredLabels.set(id, ignoreIndex === undefined || (!first && prev !== ignoreIndex) ? null : ignoreIndex);
  }

  /** The inputs with their label ranges (GraphIO.classes) attached. */
  withClassLabels(inputs: readonly GraphIO[]): GraphIO[] {
    return inputs.map((i) => {
      if (!this.classLabels.has(i.node)) return i;
      const ignore = this.ignoredLabels.get(i.node);
      return { ...i, classes: this.classLabels.get(i.node)!, ...(typeof ignore === "number" ? { ignoreIndex: ignore } : {}) };
    });
  }
  frame!: Frame;
  /** Span of the expression being lowered: rule errors from emit() point here. */
  span!: Span;
  /** Lowering a train block's step (train.ts): dropout draws masks, batch_norm uses and updates batch statistics. */
  training = false;
  /** random_uniform streams handed out in this graph so far (each dropout call site gets its own). */
  streams = 0;
  /** Lowering a data-parallel grad function (train-parallel.ts): sync_batch_norm emits all_reduce. */
  collectives = false;
  /**
   * batch_norm running statistics met in a train step: qualified param name -> node of its new value, or
   * undefined when a `training: false` batch_norm only reads them. The optimizer skips all of them.
   */
  readonly statUpdates = new Map<string, number | undefined>();
  /** Run-time loop bounds to check (control-flow.ts), appended to the function's outputs as `check` outputs. */
  readonly checks: GraphIO[] = [];

  constructor(readonly scope: ModuleScope) {}

  get diags() {
    return this.scope.diags;
  }

  /** Lowers `fn` as an exported function (of `model`, if given) to a graph; undefined after errors. */
  lowerExported(fn: FnDecl, model: ModelInfo | undefined): Graph | undefined {
    const qualified = model ? `${model.decl.name}.${fn.name}` : fn.name;
    const before = this.diags.items.length;
    const dims: string[] = [];
    const frame: Frame = { fnName: qualified, vars: new Map(), dims: new Map(), model, declared: new Set() };
    const inputs: GraphIO[] = [];
    fn.params.forEach((p, index) => {
      const t = resolveType(p.type, this.diags);
      if (!t) return frame.vars.set(p.name, POISON);
      // The runtime binds dims from input shapes one symbol at a time; a product has no single value to bind.
      if (t.shape.some((d) => typeof d === "string" && /[*+\-()]/.test(d))) {
        this.diags.error("K501", `input '${p.name}' of an exported function cannot have a derived dimension (${formatType(t)})`, p.type.span, "declare the input with its own symbol (x: f32[N, D]) and reshape or slice inside");
        return frame.vars.set(p.name, POISON);
      }
      for (const d of t.shape) if (typeof d === "string" && !dims.includes(d)) dims.push(d);
      const id = this.b.add("input", [], { name: p.name, index }, t, p.span);
      inputs.push({ name: p.name, node: id });
      frame.vars.set(p.name, tensor(id));
    });
    for (const d of dims) frame.dims.set(d, d);
    this.callStack.push(qualified);
    const results = this.lowerBody(fn, frame);
    this.callStack.pop();
    if (this.diags.items.length > before || !results) return undefined;
    const outputs = [...results.map((v, i) => ({ name: results.length === 1 ? "result" : `result${i}`, node: (v as { id: number }).id })), ...this.checks];
    return { name: qualified, model: model?.decl.name, nodes: this.b.nodes, inputs: this.b.withBounds(this.withClassLabels(inputs)), outputs, dims, customVjps: this.customVjps.length ? this.customVjps : undefined };
  }

  /** Lowers a body in `frame`; returns the result tensors, checked against the declared return types. */
  private lowerBody(fn: FnDecl, frame: Frame): Val[] | undefined {
    const saved = this.frame;
    const savedPrecision = this.b.precision;
    this.frame = frame;
    // @autocast marks every node lowered in the body, inlined callees included (an inner @autocast wins).
    this.b.precision = autocastOf(fn) ?? savedPrecision;
    try {
      const r = this.lowerStmts(fn.body);
      const results = r?.vals.flatMap((v) => (v.kind === "tuple" ? v.items : [v]));
      const resultSpans = r ? r.vals.flatMap((v, i) => (v.kind === "tuple" ? v.items.map(() => r.spans[i]) : [r.spans[i]])) : [];
      if (!results) {
        this.diags.error("K208", `function '${fn.name}' does not return a value`, fn.endSpan, "end the body with `return <expr>`");
        return undefined;
      }
      const out = results.map((v, i) => this.materialize(v, resultSpans[i]));
      if (fn.returns) {
        if (fn.returns.length !== out.length) {
          this.diags.error("K303", `function '${fn.name}' declares ${fn.returns.length} result(s) but returns ${out.length}`, resultSpans[0] ?? fn.endSpan);
          return undefined;
        }
        fn.returns.forEach((t, i) => {
          const v = out[i];
          if (v.kind === "tensor") unifyType(t, this.b.type(v.id), frame.dims, this.diags, resultSpans[i], `result ${i} of '${fn.name}'`, true);
        });
      }
      return out.some((v) => v.kind !== "tensor") ? undefined : out;
    } finally {
      this.frame = saved;
      this.b.precision = savedPrecision;
    }
  }

  /** Lowers statements in order; returns the values of a `return` (which must come last). */
  lowerStmts(stmts: readonly Stmt[]): BodyResult | undefined {
    let result: BodyResult | undefined;
    for (const st of stmts) {
      if (result) {
        this.diags.error("K501", "unreachable statement after return", st.span, "return must be the last statement of a block");
        break;
      }
      result = this.lowerStmt(st);
    }
    return result;
  }

  private lowerStmt(st: Stmt): BodyResult | undefined {
    switch (st.kind) {
      case "let":
        return this.lowerLet(st);
      case "assign": {
        if (!this.frame.vars.has(st.name)) {
          this.diags.error("K201", `cannot assign to '${st.name}': it is not declared`, st.nameSpan, `declare it first: let ${st.name} = ...`);
          return undefined;
        }
        this.frame.vars.set(st.name, this.expr(st.value));
        return undefined;
      }
      case "return":
        if (this.frame.inLoop) {
          this.diags.error("K501", "return inside a loop is not supported", st.span, "assign to a variable declared before the loop and return after it");
          return undefined;
        }
        return { vals: st.values.map((e) => this.expr(e)), spans: st.values.map((e) => e.span) };
      case "expr":
        this.expr(st.expr);
        return undefined;
      case "if":
        return lowerIf(this, st);
      case "for":
        lowerFor(this, st);
        return undefined;
      case "while":
        lowerWhile(this, st);
        return undefined;
    }
  }

  /** The span of the call a `let a, b = ...` is lowering (its several results are wanted there). */
  private destructuredCall: Span | undefined;

  private lowerLet(st: Extract<Stmt, { kind: "let" }>): undefined {
    const names = [{ name: st.name, span: st.nameSpan }, ...(st.more ?? [])];
    // `let a, b = f(...)` takes a user function's several results; anywhere else they are K204.
    const outer = this.destructuredCall;
    this.destructuredCall = names.length > 1 ? st.value.span : undefined;
    let v = this.expr(st.value);
    this.destructuredCall = outer;
    for (const n of names) this.frame.declared.add(n.name);
    if (names.length > 1 || v.kind === "tuple") {
      const items = v.kind === "tuple" ? v.items : [v];
      if (v.kind !== "error" && items.length !== names.length) {
        this.diags.error("K204", `${names.length} names but the value has ${items.length} result(s)`, st.span);
        items.length = 0;
      }
      names.forEach((n, i) => this.frame.vars.set(n.name, items[i] ?? POISON));
      return undefined;
    }
    if (st.type && v.kind !== "error") {
      v = this.materialize(v, st.value.span, st.type.dtype as DType);
      if (v.kind === "tensor" && !unifyType(st.type, this.b.type(v.id), this.frame.dims, this.diags, st.value.span, `'${st.name}'`)) v = POISON;
    }
    this.frame.vars.set(st.name, v);
    return undefined;
  }

  /** Runs `body` in a child scope (its `let`s stay inside); returns the child's variables. */
  inChildScope<T>(body: () => T, loop = false): { result: T; vars: Map<string, Val>; declared: Set<string> } {
    const saved = this.frame;
    this.frame = { ...saved, vars: new Map(saved.vars), declared: new Set(), inLoop: saved.inLoop || loop };
    try {
      const result = body();
      return { result, vars: this.frame.vars, declared: this.frame.declared };
    } finally {
      this.frame = saved;
    }
  }

  expr(e: Expr): Val {
    this.span = e.span;
    switch (e.kind) {
      case "number":
        return { kind: "literal", value: e.value, isInt: e.isInt };
      case "bool":
        return tensor(this.b.add("const", [], { value: e.value ? 1 : 0 }, { dtype: "bool", shape: [] }, e.span));
      case "name":
        return this.name(e.name, e.span);
      case "list":
        return { kind: "list", items: e.items.map((it) => this.arg(it)) };
      case "unary": {
        const v = this.expr(e.operand);
        this.span = e.span;
        if (v.kind === "literal") return { ...v, value: -v.value };
        return this.unaryOp("neg", v);
      }
      case "binary":
        return this.binary(e);
      case "call":
        return this.call(e);
      case "apply":
        return lowerApply(this, e);
      case "index":
        return lowerIndex(this, e);
      case "member":
        return lowerMemberCall(this, e, (fn, info) => this.inline(fn, info, e.args.map((a) => this.arg(a)), { span: e.span, calleeSpan: e.methodSpan }));
    }
  }

  arg(e: Expr): ArgVal {
    return { val: this.expr(e), span: e.span, name: e.kind === "name" ? e.name : undefined };
  }

  private name(name: string, span: Span): Val {
    const v = this.frame.vars.get(name);
    if (v) return v;
    const model = this.frame.model;
    if (model?.params.has(name)) return tensor(this.paramNode(model, name));
    const sub = model ? subValue(this.scope, model, name) : undefined;
    if (sub) return sub;
    const dt = name as DType;
    if (["f32", "f16", "bf16", "f64", "i32", "i8", "u8", "bool"].includes(name)) return { kind: "dtype", dtype: dt };
    const owners = ownersOf(this.scope, name, "params");
    if (owners.length) {
      this.diags.error("K206", `param '${name}' belongs to model ${owners.join(", ")} and is not visible in '${this.frame.fnName}'`, span, `use it inside a method of ${owners[0]}, or pass it as an argument`);
      return POISON;
    }
    const dim = this.frame.dims.get(name);
    if (dim !== undefined) return { kind: "dim", dim };
    const known = [...this.frame.vars.keys(), ...(model ? model.params.keys() : [])];
    const near = closest(name, known);
    this.diags.error("K201", `unknown name '${name}'`, span, near ? `did you mean '${near}'?` : undefined);
    return POISON;
  }

  paramNode(model: ModelInfo, name: string): number {
    const q = `${model.path}.${name}`;
    const override = this.paramOverrides.get(q);
    if (override !== undefined) return override;
    let id = this.paramNodes.get(q);
    if (id === undefined) {
      const t = resolveType(model.params.get(name)!.type, this.diags) ?? { dtype: "f32", shape: [] };
      id = this.b.add("param", [], { name: q }, t);
      this.paramNodes.set(q, id);
    }
    return id;
  }

  /**
   * Left-associative chains (`x + x + ... + x`) are trees as deep as they are long: walk the left spine with a
   * loop, so that a long sum cannot overflow the stack (the parser reads it with a loop too).
   */
  private binary(e: BinaryExpr): Val {
    const spine: BinaryExpr[] = [];
    let leftmost: Expr = e;
    while (leftmost.kind === "binary") {
      spine.push(leftmost);
      leftmost = leftmost.left;
    }
    let acc = this.expr(leftmost);
    for (let i = spine.length - 1; i >= 0; i--) acc = this.binaryStep(spine[i]!, acc);
    return acc;
  }

  private binaryStep(e: BinaryExpr, l: Val): Val {
    const r = this.expr(e.right);
    this.span = e.opSpan;
    if (l.kind === "error" || r.kind === "error") return POISON;
    // Dims with dims (or integers) make a dim (B * T); a dim with a tensor is its size as a value (sum(x) / N).
    if ((l.kind === "dim" || r.kind === "dim") && l.kind !== "tensor" && r.kind !== "tensor") return dimArith(this, e, l, r);
    if (e.op === "@") {
      const [a, b] = [this.materialize(l, e.left.span), this.materialize(r, e.right.span)];
      return this.emitVal("matmul", [a, b], {});
    }
    if (l.kind === "literal" && r.kind === "literal" && e.op in ARITH) return foldLiteral(e.op, l, r);
    if (e.op === "**" && r.kind === "literal" && l.kind === "tensor") {
      // x ** 0.5 is sqrt, as in PyTorch: (-0) ** 0.5 = -0 with gradient -inf (pow would give +0 and +inf).
      if (r.value === 0.5 && isFloat(this.b.type(l.id).dtype)) return this.emitVal("sqrt", [l], {});
      const expanded = this.smallIntPower(l.id, r.value);
      if (expanded !== undefined) return tensor(expanded);
    }
    const [a, b] = this.pair(l, r, e.left.span, e.right.span);
    const op = ARITH[e.op] ?? COMPARE[e.op];
    return this.emitVal(op, [a, b], {});
  }

  /** x**n for n in 0..4 as multiplications: exact, and right for negative x (pow via exp/log is not). */
  private smallIntPower(x: number, n: number): number | undefined {
    if (!Number.isInteger(n) || n < 0 || n > 4 || this.b.type(x).dtype === "bool") return undefined;
    if (n === 0) return this.emit("add", [this.emit("mul", [x, this.constant(0, this.b.type(x).dtype)], {})!, this.constant(1, this.b.type(x).dtype)], {});
    let acc = x;
    for (let i = 1; i < n; i++) acc = this.emit("mul", [acc, x], {})!;
    return acc;
  }

  /** Gives two operands one dtype: a literal takes the tensor's dtype (error if a float literal meets ints). */
  pair(l: Val, r: Val, ls: Span, rs: Span): [Val, Val] {
    // A literal or a dimension takes the tensor's dtype (x / N is a float division).
    if (l.kind === "tensor" && (r.kind === "literal" || r.kind === "dim")) return [l, this.materialize(r, rs, this.b.type(l.id).dtype)];
    if ((l.kind === "literal" || l.kind === "dim") && r.kind === "tensor") return [this.materialize(l, ls, this.b.type(r.id).dtype), r];
    return [this.materialize(l, ls), this.materialize(r, rs)];
  }

  /** Turns a value into a tensor; literals become scalar constants of `dtype` (default i32 for ints, f32). */
  materialize(v: Val, span: Span, dtype?: DType): Val {
    if (v.kind === "tensor" || v.kind === "error") return v;
    if (v.kind === "literal") {
      const dt = dtype ?? (v.isInt ? "i32" : "f32");
      if (dt === "bool" || (isInt(dt) && !Number.isInteger(v.value))) {
        this.diags.error("K301", `the number ${v.value} cannot be used as ${dt}`, span, dt === "bool" ? "use true or false" : `write an integer, or cast the other operand: cast(x, f32)`);
        return POISON;
      }
      const range = literalRangeError(v.value, dt);
      if (range) {
        this.diags.error("K306", range.message, span, range.hint);
        return POISON;
      }
      return tensor(this.constant(v.value, dt));
    }
    if (v.kind === "tuple") {
      this.diags.error("K204", `this has ${v.items.length} results where one value is needed`, span, "take them apart with let a, b = ...");
      return POISON;
    }
    if (v.kind === "dim") return dimValue(this, v.dim, span, dtype);
    if (v.kind === "module" || v.kind === "modules") {
      this.diags.error("K301", `a submodule is not a tensor value`, span, "call one of its methods: attn.forward(x)");
      return POISON;
    }
    this.diags.error("K301", v.kind === "list" ? "a list is not a tensor value" : `the dtype ${v.dtype} is not a tensor value`, span, v.kind === "list" ? "lists are only used for axes and shapes of builtins" : undefined);
    return POISON;
  }

  constant(value: number, dtype: DType): number {
    return this.b.add("const", [], { value }, { dtype, shape: [] }, this.span);
  }

  type(id: number): TensorType {
    return this.b.type(id);
  }

  /** Emits a checked primitive; a shape/dtype rule failure becomes a diagnostic at the current span. */
  emit<P extends PrimOp>(op: P, inputs: readonly number[], attrs: AttrsOf[P]): number | undefined {
    const types = inputs.map((i) => this.b.type(i));
    const r = OPS[op].infer(types, attrs as never);
    if (isRuleError(r)) {
      this.diags.error(r.error, r.message, this.span, r.hint);
      return undefined;
    }
    if (this.b.nodes.length >= MAX_GRAPH_NODES) {
      if (!this.tooLarge) this.diags.error("K503", `function too large: it lowers to more than ${MAX_GRAPH_NODES.toLocaleString("en-US")} IR nodes (inlined calls and unrolled loop iterations included)`, this.span, "unroll fewer loop iterations, or split the work into several functions");
      this.tooLarge = true;
      return undefined;
    }
    const huge = tooManyElements(r);
    if (huge) {
      this.diags.error("K412", `the result of ${op} is too large: ${huge}`, this.span, TOO_MANY_ELEMENTS_HINT);
      return undefined;
    }
    return this.b.add(op, inputs, attrs, r, this.span);
  }

  emitVal<P extends PrimOp>(op: P, inputs: readonly Val[], attrs: AttrsOf[P]): Val {
    if (inputs.some((v) => v.kind !== "tensor")) return POISON;
    const id = this.emit(op, inputs.map((v) => (v as { id: number }).id), attrs);
    return id === undefined ? POISON : tensor(id);
  }

  unaryOp(op: PrimOp, v: Val): Val {
    const m = this.materialize(v, this.span, v.kind === "literal" && !v.isInt ? "f32" : undefined);
    return this.emitVal(op, [m], {} as never);
  }

  private call(e: CallExpr): Val {
    const args = e.args.map((a) => this.arg(a));
    const kwargs = e.kwargs.map((k) => ({ key: k.name, keySpan: k.span, arg: this.arg(k.value) }));
    this.span = e.span;
    const model = this.frame.model;
    const method = model?.methods.get(e.callee);
    const fn = method ?? this.scope.fns.get(e.callee);
    if (fn) {
      if (kwargs.length) this.diags.error("K205", `'${e.callee}' takes positional arguments only`, kwargs[0].keySpan);
      return this.inline(fn, method ? model : undefined, args, e);
    }
    if (isBuiltin(e.callee)) return callBuiltin(this, e, args, kwargs);
    const owners = ownersOf(this.scope, e.callee, "methods");
    if (owners.length) {
      this.diags.error("K206", `method '${e.callee}' of model ${owners[0]} is not visible in '${this.frame.fnName}'`, e.calleeSpan, `call it from a method of ${owners[0]}`);
      return POISON;
    }
    const near = closest(e.callee, [...this.scope.fns.keys(), ...(model ? model.methods.keys() : []), ...builtinNames()]);
    this.diags.error("K203", `unknown function '${e.callee}'`, e.calleeSpan, near ? `did you mean '${near}'?` : "see docs/language.md for the builtins");
    return POISON;
  }

  private inline(fn: FnDecl, model: ModelInfo | undefined, args: ArgVal[], call: { span: Span; calleeSpan: Span }): Val {
    const r = this.inlineCall(fn, model, args, call);
    if (!r) return POISON;
    if (r.results.length > 1 && call.span === this.destructuredCall) return { kind: "tuple", items: r.results };
    if (r.results.length !== 1) {
      this.diags.error("K204", `'${fn.name}' returns ${r.results.length} results; use them with let a, b = ${fn.name}(...)`, call.span);
      return r.results.length ? { kind: "tuple", items: r.results } : POISON;
    }
    return r.results[0];
  }

  /**
   * Inlines a call of a user function; with `grad`, the differentiated arguments and params are first wrapped
   * in identity nodes that stand for them (returned in `wrt`), so that gradient markers can name them.
   */
  inlineCall(fn: FnDecl, model: ModelInfo | undefined, args: ArgVal[], call: { span: Span; calleeSpan: Span }, grad?: GradSpec): { results: Val[]; wrt: number[] } | undefined {
    const q = model ? `${model.path}.${fn.name}` : fn.name;
    if (this.callStack.includes(q)) {
      this.diags.error("K210", `'${fn.name}' calls itself (${[...this.callStack, q].join(" -> ")})`, call.calleeSpan, "recursion is not supported; use a loop");
      return undefined;
    }
    if (args.length !== fn.params.length) {
      this.diags.error("K204", `'${fn.name}' takes ${fn.params.length} argument(s), got ${args.length}`, call.span);
      return undefined;
    }
    const frame: Frame = { fnName: q, vars: new Map(), dims: new Map(), model, declared: new Set() };
    let ok = true;
    const wrt: number[] = [];
    const argIds: number[] = [];
    fn.params.forEach((p, i) => {
      const m = this.materialize(args[i].val, args[i].span, p.type.dtype as DType);
      if (m.kind !== "tensor") return (ok = false);
      let v: { kind: "tensor"; id: number } = m;
      if (!unifyType(p.type, this.b.type(v.id), frame.dims, this.diags, args[i].span, `argument '${p.name}' of '${fn.name}'`)) ok = false;
      if (grad?.wrtArgs.includes(i)) {
        v = { kind: "tensor", id: this.identity(v.id) };
        wrt[grad.wrtArgs.indexOf(i)] = v.id;
      }
      argIds.push(v.id);
      frame.vars.set(p.name, v);
    });
    if (!ok) return undefined;
    const savedOverrides = new Map(this.paramOverrides);
    grad?.wrtParams.forEach((qp, k) => {
      const owner = paramOwner(this.scope, qp)!;
      const base = this.paramOverrides.get(qp) ?? this.paramNode(owner.info, owner.name);
      const id = this.identity(base);
      this.paramOverrides.set(qp, id);
      wrt[grad.wrtArgs.length + k] = id;
    });
    this.callStack.push(q);
    const saveSpan = this.span;
    try {
      let results = this.lowerBody(fn, frame);
      if (results && fn.backward) results = lowerCustomBackward(this, fn, frame, argIds, results);
      return results ? { results, wrt } : undefined;
    } finally {
      this.callStack.pop();
      this.span = saveSpan;
      this.paramOverrides.clear();
      for (const [k, v] of savedOverrides) this.paramOverrides.set(k, v);
    }
  }

  /** A fresh node equal to `id` (a reshape to its own shape): a handle that gradients can name. */
  identity(id: number): number {
    const t = this.b.type(id);
    return this.b.add("reshape", [id], { shape: t.shape }, t, this.span);
  }

  /** Lowers a backward rule's body in a frame where its names are bound; used by custom-backward.ts. */
  lowerRuleBody(frame: Frame, stmts: readonly Stmt[]): BodyResult | undefined {
    const saved = this.frame;
    this.frame = frame;
    try {
      return this.lowerStmts(stmts);
    } finally {
      this.frame = saved;
    }
  }
}

function foldLiteral(op: BinaryExpr["op"], l: { value: number; isInt: boolean }, r: { value: number; isInt: boolean }): Val {
  const a = l.value, b = r.value;
  const value = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : op === "/" ? a / b : op === "%" ? remainder64(a, b) : Math.pow(a, b);
  return { kind: "literal", value, isInt: l.isInt && r.isInt && op !== "/" && Number.isInteger(value) };
}


export function describe(t: TensorType): string {
  return formatType(t);
}
