// Frontend stage, output: the abstract syntax tree the visitor (to-ast.ts) builds from Chevrotain's CST.
// Every node carries a source span so that later stages (lowering, type/shape checks) can point at it.
// Later language features (grad, backward rules, if/for/while, train blocks, precision attributes) add new
// node kinds to these unions rather than changing existing ones.

import type { Span } from "../../diagnostics.js";

export interface Program {
  readonly file: string;
  readonly items: Item[];
}

export type Item = FnDecl | ModelDecl | TrainDecl;

/** `train Name { model: M, loss: method, optimizer: sgd(...) }`. */
export interface TrainDecl {
  readonly kind: "train";
  readonly name: string;
  readonly nameSpan: Span;
  readonly entries: { readonly key: string; readonly keySpan: Span; readonly value: Expr }[];
  readonly span: Span;
}

/** `@name(args)` written before an fn (reserved for precision attributes and similar). */
export interface Attribute {
  readonly name: string;
  readonly args: Expr[];
  /** Keyword arguments, e.g. `@name(key: value)`; optional so that hand-built attributes may omit it. */
  readonly kwargs?: KwArg[];
  readonly span: Span;
}

export interface FnDecl {
  readonly kind: "fn";
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: ParamBinding[];
  /** Declared result types: one entry for a single result, several for `-> (t1, t2)`; undefined when omitted. */
  readonly returns?: TypeExpr[];
  readonly body: Stmt[];
  readonly attrs: Attribute[];
  readonly span: Span;
  /** Closing brace, for "missing return" diagnostics. */
  readonly endSpan: Span;
  /** A user-written gradient rule, like torch.autograd.Function.backward. */
  readonly backward?: BackwardRule;
}

/**
 * `backward(dy) { ... return dx1, dx2 }` after a fn body: receives the output gradient (and, with a second
 * name, the forward result); sees the forward's parameters; returns one gradient per parameter.
 */
export interface BackwardRule {
  readonly params: { readonly name: string; readonly span: Span }[];
  readonly body: Stmt[];
  readonly span: Span;
  readonly endSpan: Span;
}

export interface ParamBinding {
  readonly name: string;
  readonly type: TypeExpr;
  readonly span: Span;
}

/** `f32`, `f32[B, 784]`, `i32[3]`. A dim is a number literal or a symbol name. */
export interface TypeExpr {
  readonly dtype: string;
  readonly dims: DimExpr[];
  readonly span: Span;
}

export type DimExpr =
  | { readonly kind: "const"; readonly value: number; readonly span: Span }
  | { readonly kind: "sym"; readonly name: string; readonly span: Span }
  /** `B * T`: a product of two or more factors. */
  | { readonly kind: "product"; readonly factors: readonly DimFactor[]; readonly span: Span }
  /** `H / 2`, `(H + 1) / 2`: floor division by a constant (a strided window's output size). */
  | { readonly kind: "floordiv"; readonly base: DimExpr; readonly divisor: number; readonly span: Span }
  /** `T - 1`, `B * T + 2`: a dim plus a constant. */
  | { readonly kind: "offset"; readonly base: Exclude<DimExpr, { kind: "offset" }>; readonly offset: number; readonly span: Span };

export type DimFactor = Extract<DimExpr, { kind: "const" | "sym" }>;

export interface ModelDecl {
  readonly kind: "model";
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: ParamDecl[];
  readonly methods: FnDecl[];
  /** Submodules, `attn: Attention` or `blocks: Block[4]`; optional so that hand-built models may omit it. */
  readonly subs?: SubDecl[];
  readonly span: Span;
}

/** `name: Model` (one instance) or `name: Model[n]` (n instances, `name[i]`): params named `Outer.name.i.p`. */
export interface SubDecl {
  readonly kind: "sub";
  readonly name: string;
  readonly nameSpan: Span;
  /** The model's name is `type.dtype`; `type.dims` holds the count of an array. */
  readonly type: TypeExpr;
  readonly span: Span;
}

/** `param w: f32[784, 128] = he()`; the initialiser is a call expression (zeros(), normal(std: 0.01), ...). */
export interface ParamDecl {
  readonly kind: "param";
  readonly name: string;
  readonly type: TypeExpr;
  readonly init: CallExpr;
  readonly span: Span;
}

export type Stmt = LetStmt | ReturnStmt | ExprStmt | AssignStmt | IfStmt | ForStmt | WhileStmt;

/** `x = expr`: rebinds an existing variable (loop-carried and branch-assigned values). */
export interface AssignStmt {
  readonly kind: "assign";
  readonly name: string;
  readonly nameSpan: Span;
  readonly value: Expr;
  readonly span: Span;
}

export interface IfStmt {
  readonly kind: "if";
  readonly cond: Expr;
  readonly then: Stmt[];
  readonly else?: Stmt[];
  readonly span: Span;
}

/** `for i in start..end { ... }` (end exclusive; bounds may be runtime i32 scalars). */
export interface ForStmt {
  readonly kind: "for";
  readonly var: string;
  readonly varSpan: Span;
  readonly start: Expr;
  readonly end: Expr;
  /** `for i in 0..n, max: 16`: a bound, needed when `end` is only known at run time. */
  readonly max?: Expr;
  readonly maxKey?: { readonly name: string; readonly span: Span };
  readonly body: Stmt[];
  readonly span: Span;
}

export interface WhileStmt {
  readonly kind: "while";
  readonly cond: Expr;
  /** `while c, max: N`: an iteration bound. */
  readonly max?: Expr;
  readonly maxKey?: { readonly name: string; readonly span: Span };
  readonly body: Stmt[];
  readonly span: Span;
}

export interface LetStmt {
  readonly kind: "let";
  readonly name: string;
  readonly nameSpan: Span;
  /** Further names of `let a, b = f(x)` (destructuring several results). */
  readonly more?: { readonly name: string; readonly span: Span }[];
  readonly type?: TypeExpr;
  readonly value: Expr;
  readonly span: Span;
}

/** `return e` or `return e1, e2` (several results). */
export interface ReturnStmt {
  readonly kind: "return";
  readonly values: Expr[];
  readonly span: Span;
}

export interface ExprStmt {
  readonly kind: "expr";
  readonly expr: Expr;
  readonly span: Span;
}

export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "**" | "@" | "==" | "!=" | "<" | "<=" | ">" | ">=";

export type Expr = NumberLit | BoolLit | NameRef | BinaryExpr | UnaryExpr | CallExpr | ListExpr | ApplyExpr | IndexExpr | MemberCallExpr;

/** `x[0]`, `x[a:b, :, -1]`, `blocks[i]`: static indexing (compiler/lower/indexing.ts). */
export interface IndexExpr {
  readonly kind: "index";
  readonly object: Expr;
  readonly items: IndexItem[];
  readonly span: Span;
}

export type IndexItem =
  | { readonly kind: "at"; readonly index: Expr; readonly span: Span }
  | { readonly kind: "range"; readonly start?: Expr; readonly end?: Expr; readonly step?: Expr; readonly span: Span };

/** `attn.forward(x)`: a method of a submodule. */
export interface MemberCallExpr {
  readonly kind: "member";
  readonly object: Expr;
  readonly method: string;
  readonly methodSpan: Span;
  readonly args: Expr[];
  readonly kwargs: KwArg[];
  readonly span: Span;
}

/** `grad(f)(x)`: a function transform (the inner call) applied to arguments. */
export interface ApplyExpr {
  readonly kind: "apply";
  readonly transform: CallExpr;
  readonly args: Expr[];
  readonly kwargs: KwArg[];
  readonly span: Span;
}

export interface NumberLit {
  readonly kind: "number";
  readonly value: number;
  /** true when written without '.', 'e' or 'E' (e.g. `3`), false for `3.0`, `1e-3`. */
  readonly isInt: boolean;
  readonly span: Span;
}

export interface BoolLit {
  readonly kind: "bool";
  readonly value: boolean;
  readonly span: Span;
}

export interface NameRef {
  readonly kind: "name";
  readonly name: string;
  readonly span: Span;
}

export interface BinaryExpr {
  readonly kind: "binary";
  readonly op: BinaryOp;
  readonly left: Expr;
  readonly right: Expr;
  /** Span of the operator token (diagnostics about the operation point here). */
  readonly opSpan: Span;
  readonly span: Span;
}

export interface UnaryExpr {
  readonly kind: "unary";
  readonly op: "-";
  readonly operand: Expr;
  readonly span: Span;
}

/** `name(pos1, pos2, key: value)`; callee is a plain name (builtin, fn, or method of the enclosing model). */
export interface CallExpr {
  readonly kind: "call";
  readonly callee: string;
  readonly calleeSpan: Span;
  readonly args: Expr[];
  readonly kwargs: KwArg[];
  readonly span: Span;
}

export interface KwArg {
  readonly name: string;
  readonly value: Expr;
  readonly span: Span;
}

/** `[1, 2, 3]`: used for axes, shapes and permutations (compile-time constants). */
export interface ListExpr {
  readonly kind: "list";
  readonly items: Expr[];
  readonly span: Span;
}
