// Frontend stage 3: walks the Chevrotain CST from parser.ts and builds the ast.ts tree with source spans.
// Error recovery leaves holes in the CST (missing children, tokens inserted with NaN positions), so every
// lookup here is optional and missing pieces become placeholders; the walk itself never throws on bad input.

import type { CstNode, IToken } from "chevrotain";
import type { DiagnosticBag, Span } from "../../diagnostics.js";
import { BadNumber } from "./lexer.js";
import type {
  BackwardRule,
  TrainDecl,
  Attribute,
  BinaryOp,
  CallExpr,
  DimExpr,
  DimFactor,
  Expr,
  FnDecl,
  IndexItem,
  SubDecl,
  Item,
  KwArg,
  ModelDecl,
  ParamBinding,
  ParamDecl,
  Program,
  Stmt,
  TypeExpr,
} from "./ast.js";

/** Builds the AST for one file; syntax-level problems found only here (K102 dims, K205) go into `bag`. */
export function buildAst(cst: CstNode | undefined, file: string, source: string, bag: DiagnosticBag): Program {
  return new AstBuilder(file, source, bag).program(cst);
}

function isReal(tok: IToken | undefined): tok is IToken {
  return tok !== undefined && !tok.isInsertedInRecovery && Number.isFinite(tok.startOffset);
}

class AstBuilder {
  private readonly lineLengths: number[];
  /** Span of the latest real token seen; stands in for pieces that recovery left out. */
  private last: Span;

  constructor(
    private readonly file: string,
    source: string,
    private readonly bag: DiagnosticBag,
  ) {
    this.lineLengths = source.split(/\r\n|\r|\n/).map((l) => l.length);
    this.last = { file, line: 1, col: 1, length: 1 };
  }

  // ---- CST access and spans ----

  private nodes(node: CstNode | undefined, key: string): CstNode[] {
    return (node?.children[key] as CstNode[] | undefined) ?? [];
  }

  private node(node: CstNode | undefined, key: string, i = 0): CstNode | undefined {
    return this.nodes(node, key)[i];
  }

  private toks(node: CstNode | undefined, key: string): IToken[] {
    return ((node?.children[key] as IToken[] | undefined) ?? []).filter(isReal);
  }

  /** Tokens including recovery-inserted ones, so that positions in the array match the grammar. */
  private rawToks(node: CstNode | undefined, key: string): (IToken | undefined)[] {
    return (node?.children[key] as IToken[] | undefined) ?? [];
  }

  private tok(node: CstNode | undefined, key: string, i = 0): IToken | undefined {
    return this.toks(node, key)[i];
  }

  private tokSpan(tok: IToken | undefined): Span {
    if (!isReal(tok)) return this.last;
    this.last = { file: this.file, line: tok.startLine ?? 1, col: tok.startColumn ?? 1, length: Math.max(1, tok.image.length) };
    return this.last;
  }

  /** From the start of `a` to the end of `b`; a multi-line range underlines the rest of `a`'s first line. */
  private join(a: Span, b: Span): Span {
    if (b.line === a.line) return { ...a, length: Math.max(1, b.col + b.length - a.col, a.length) };
    if (b.line < a.line) return a;
    const lineLen = this.lineLengths[a.line - 1] ?? a.col;
    return { ...a, length: Math.max(1, lineLen - a.col + 1) };
  }

  private tokenRange(node: CstNode | undefined, acc: { first?: IToken; last?: IToken } = {}): { first?: IToken; last?: IToken } {
    if (!node) return acc;
    for (const elems of Object.values(node.children)) {
      for (const el of elems) {
        if ("children" in el) this.tokenRange(el, acc);
        else if (isReal(el)) {
          if (!acc.first || el.startOffset < acc.first.startOffset) acc.first = el;
          if (!acc.last || el.startOffset > acc.last.startOffset) acc.last = el;
        }
      }
    }
    return acc;
  }

  private nodeSpan(node: CstNode | undefined): Span {
    const { first, last } = this.tokenRange(node);
    if (!first || !last) return this.last;
    const saved = this.tokSpan(first);
    const span = this.join(saved, this.tokSpan(last));
    this.last = saved; // keep the fallback near the node's start, where the walk continues
    return span;
  }

  private missingExpr(): Expr {
    return { kind: "name", name: "", span: this.last };
  }

  // ---- declarations ----

  program(cst: CstNode | undefined): Program {
    const items: Item[] = [];
    for (const itemNode of this.nodes(cst, "item")) {
      const attrs = this.nodes(itemNode, "attribute").map((a) => this.attribute(a));
      const fn = this.node(itemNode, "fnDecl");
      const model = this.node(itemNode, "modelDecl");
      const train = this.node(itemNode, "trainDecl");
      if (fn) items.push(this.fnDecl(fn, attrs));
      else if (model) items.push(this.modelDecl(model));
      else if (train) items.push(this.trainDecl(train));
    }
    return { file: this.file, items };
  }

  private trainDecl(node: CstNode): TrainDecl {
    const nameTok = this.tok(node, "Identifier");
    const entries = this.nodes(node, "trainEntry").map((e) => {
      const key = this.tok(e, "Identifier") ?? this.tok(e, "Model");
      return { key: key?.image ?? "", keySpan: this.tokSpan(key), value: this.expr(this.node(e, "expr")) };
    });
    return { kind: "train", name: nameTok?.image ?? "", nameSpan: this.tokSpan(nameTok ?? this.tok(node, "Train")), entries, span: this.nodeSpan(node) };
  }

  private attribute(node: CstNode): Attribute {
    const span = this.nodeSpan(node);
    const name = this.tok(node, "Identifier")?.image ?? "";
    const { args, kwargs } = this.callArgs(this.node(node, "callArgs"));
    return { name, args, kwargs, span };
  }

  private fnDecl(node: CstNode, attrs: Attribute[]): FnDecl {
    const span = this.nodeSpan(node);
    const nameTok = this.tok(node, "Identifier");
    const nameSpan = this.tokSpan(nameTok ?? this.tok(node, "Fn"));
    const params = this.nodes(node, "param").map((p) => this.param(p));
    const retNode = this.node(node, "returnType");
    const returns = retNode ? this.nodes(retNode, "typeExpr").map((t) => this.typeExpr(t)) : undefined;
    const blockNode = this.node(node, "block");
    const body = this.nodes(blockNode, "stmt").map((s) => this.stmt(s));
    const close = this.tok(blockNode, "RBrace");
    const endSpan = close ? this.tokSpan(close) : this.last;
    const bwNode = this.node(node, "backwardRule");
    const backward = bwNode ? this.backwardRule(bwNode) : undefined;
    return { kind: "fn", name: nameTok?.image ?? "", nameSpan, params, returns, body, attrs, span, endSpan, backward };
  }

  private backwardRule(node: CstNode): BackwardRule {
    const span = this.nodeSpan(node);
    const params = this.rawToks(node, "Identifier").filter(isReal).map((t) => ({ name: t.image, span: this.tokSpan(t) }));
    const blockNode = this.node(node, "block");
    const body = this.block(blockNode);
    const close = this.tok(blockNode, "RBrace");
    return { params, body, span, endSpan: close ? this.tokSpan(close) : this.last };
  }

  private block(node: CstNode | undefined): Stmt[] {
    return this.nodes(node, "stmt").map((s) => this.stmt(s));
  }

  private param(node: CstNode): ParamBinding {
    const span = this.nodeSpan(node);
    const name = this.tok(node, "Identifier")?.image ?? "";
    return { name, type: this.typeExpr(this.node(node, "typeExpr")), span };
  }

  private typeExpr(node: CstNode | undefined): TypeExpr {
    const span = this.nodeSpan(node);
    const dtype = this.tok(node, "Identifier")?.image ?? "";
    const dims = this.nodes(node, "dim").flatMap((d) => this.dim(d));
    return { dtype, dims, span };
  }

  private dim(node: CstNode): DimExpr[] {
    const inner = this.node(node, "inner");
    const factors = this.nodes(node, "dimFactor").flatMap((f) => this.dimFactor(f));
    let base: DimExpr | undefined = inner ? this.dim(inner)[0] : factors.length <= 1 ? factors[0] : { kind: "product", factors, span: this.nodeSpan(node) };
    for (const d of this.toks(node, "divisor")) {
      const { value, isInt } = numberValue(d);
      if (!isInt || value < 1) this.bag.error("K102", `expected a positive integer divisor but found '${d.image}'`, this.tokSpan(d));
      else if (base) base = { kind: "floordiv", base, divisor: value, span: this.nodeSpan(node) };
    }
    const sign = this.tok(node, "AddOp");
    const num = this.tok(node, "NumberLiteral");
    if (!base || !sign || !num) return base ? [base] : [];
    const { value, isInt } = numberValue(num);
    if (!isInt && Number.isFinite(value)) this.bag.error("K102", `expected an integer offset but found '${num.image}'`, this.tokSpan(num));
    return [{ kind: "offset", base: base as Exclude<DimExpr, { kind: "offset" }>, offset: sign.image === "-" ? -value : value, span: this.nodeSpan(node) }];
  }

  private dimFactor(node: CstNode): DimFactor[] {
    const sym = this.tok(node, "Identifier");
    if (sym) return [{ kind: "sym", name: sym.image, span: this.tokSpan(sym) }];
    const num = this.tok(node, "NumberLiteral");
    if (!num) return [];
    const span = this.tokSpan(num);
    const { value, isInt } = numberValue(num);
    // A malformed number already has its K103 (parse.ts); only well-formed non-integers need a K102 here.
    if (!isInt && Number.isFinite(value)) {
      this.bag.error("K102", `expected an integer dimension but found '${num.image}'`, span);
    }
    return [{ kind: "const", value, span }];
  }

  private modelDecl(node: CstNode): ModelDecl {
    const span = this.nodeSpan(node);
    const nameTok = this.tok(node, "Identifier");
    const nameSpan = this.tokSpan(nameTok ?? this.tok(node, "Model"));
    // Params and methods may interleave in the source; each keeps its own list in source order.
    const params = this.nodes(node, "paramDecl").map((p) => this.paramDecl(p));
    const methods = this.nodes(node, "method").flatMap((m) => {
      const attrs = this.nodes(m, "attribute").map((a) => this.attribute(a));
      const fn = this.node(m, "fnDecl");
      return fn ? [this.fnDecl(fn, attrs)] : [];
    });
    const subs = this.nodes(node, "subDecl").map((d): SubDecl => {
      const t = this.tok(d, "Identifier");
      return { kind: "sub", name: t?.image ?? "", nameSpan: this.tokSpan(t), type: this.typeExpr(this.node(d, "typeExpr")), span: this.nodeSpan(d) };
    });
    return { kind: "model", name: nameTok?.image ?? "", nameSpan, params, methods, span, ...(subs.length ? { subs } : {}) };
  }

  private paramDecl(node: CstNode): ParamDecl {
    const span = this.nodeSpan(node);
    const [nameTok, calleeTok] = this.rawToks(node, "Identifier");
    const type = this.typeExpr(this.node(node, "typeExpr"));
    const calleeSpan = this.tokSpan(calleeTok);
    const { args, kwargs } = this.callArgs(this.node(node, "callArgs"));
    const close = this.tok(node, "RParen");
    const init: CallExpr = {
      kind: "call",
      callee: isReal(calleeTok) ? calleeTok.image : "",
      calleeSpan,
      args,
      kwargs,
      span: close ? this.join(calleeSpan, this.tokSpan(close)) : calleeSpan,
    };
    return { kind: "param", name: isReal(nameTok) ? nameTok.image : "", type, init, span };
  }

  // ---- statements ----

  private stmt(node: CstNode): Stmt {
    const letNode = this.node(node, "letStmt");
    if (letNode) {
      const span = this.nodeSpan(letNode);
      const nameTok = this.tok(letNode, "Identifier");
      const nameSpan = this.tokSpan(nameTok);
      const typeNode = this.node(letNode, "typeExpr");
      const type = typeNode ? this.typeExpr(typeNode) : undefined;
      const value = this.expr(this.node(letNode, "expr"));
      const more = this.rawToks(letNode, "Identifier").slice(1).filter(isReal).map((t) => ({ name: t.image, span: this.tokSpan(t) }));
      return { kind: "let", name: nameTok?.image ?? "", nameSpan, type, value, span, ...(more.length ? { more } : {}) };
    }
    const assign = this.node(node, "assignStmt");
    if (assign) {
      const nameTok = this.tok(assign, "Identifier");
      return { kind: "assign", name: nameTok?.image ?? "", nameSpan: this.tokSpan(nameTok), value: this.expr(this.node(assign, "expr")), span: this.nodeSpan(assign) };
    }
    const ifNode = this.node(node, "ifStmt");
    if (ifNode) return this.ifStmt(ifNode);
    const forNode = this.node(node, "forStmt");
    if (forNode) {
      const [v, key] = this.rawToks(forNode, "Identifier");
      const [start, end] = this.nodes(forNode, "additive");
      const max = this.node(forNode, "expr");
      return {
        kind: "for", var: v?.image ?? "", varSpan: this.tokSpan(v),
        start: start ? this.additive(start) : this.missingExpr(), end: end ? this.additive(end) : this.missingExpr(),
        body: this.block(this.node(forNode, "block")), span: this.nodeSpan(forNode),
        ...(max ? { max: this.expr(max), maxKey: { name: key?.image ?? "", span: this.tokSpan(key) } } : {}),
      };
    }
    const whileNode = this.node(node, "whileStmt");
    if (whileNode) {
      const [cond, max] = this.nodes(whileNode, "expr");
      const key = this.tok(whileNode, "Identifier");
      return {
        kind: "while", cond: this.expr(cond), body: this.block(this.node(whileNode, "block")), span: this.nodeSpan(whileNode),
        ...(max ? { max: this.expr(max), maxKey: { name: key?.image ?? "", span: this.tokSpan(key) } } : {}),
      };
    }
    const retNode = this.node(node, "returnStmt");
    if (retNode) {
      const span = this.nodeSpan(retNode);
      const values = this.nodes(retNode, "expr").map((e) => this.expr(e));
      return { kind: "return", values: values.length ? values : [this.missingExpr()], span };
    }
    const expr = this.expr(this.node(node, "expr"));
    return { kind: "expr", expr, span: expr.span };
  }

  private ifStmt(node: CstNode): Stmt {
    const [thenBlock, elseBlock] = this.nodes(node, "block");
    const elseIf = this.node(node, "ifStmt");
    const els = elseIf ? [this.ifStmt(elseIf)] : elseBlock ? this.block(elseBlock) : undefined;
    return { kind: "if", cond: this.expr(this.node(node, "expr")), then: this.block(thenBlock), span: this.nodeSpan(node), ...(els ? { else: els } : {}) };
  }

  // ---- expressions ----

  private expr(node: CstNode | undefined): Expr {
    if (!node) return this.missingExpr();
    const operands = this.nodes(node, "additive");
    return this.fold(operands, this.toks(node, "CompareOp"), (n) => this.additive(n));
  }

  private additive(node: CstNode): Expr {
    return this.fold(this.nodes(node, "multiplicative"), this.toks(node, "AddOp"), (n) => this.multiplicative(n));
  }

  private multiplicative(node: CstNode): Expr {
    return this.fold(this.nodes(node, "unary"), this.toks(node, "MulOp"), (n) => this.unary(n));
  }

  /** Left fold of `operand (op operand)*`; operands and operators live in separate CST arrays. */
  private fold(operands: CstNode[], ops: IToken[], build: (n: CstNode) => Expr): Expr {
    if (operands.length === 0) return this.missingExpr();
    let left = build(operands[0]!);
    for (let i = 0; i < ops.length && i + 1 < operands.length; i++) {
      const opSpan = this.tokSpan(ops[i]);
      const right = build(operands[i + 1]!);
      left = { kind: "binary", op: ops[i]!.image as BinaryOp, left, right, opSpan, span: this.join(left.span, right.span) };
    }
    return left;
  }

  private unary(node: CstNode): Expr {
    const minus = this.tok(node, "Minus");
    if (minus) {
      const minusSpan = this.tokSpan(minus);
      const operand = this.unaryOrMissing(this.node(node, "unary"));
      return { kind: "unary", op: "-", operand, span: this.join(minusSpan, operand.span) };
    }
    const powerNode = this.node(node, "power");
    if (!powerNode) return this.missingExpr();
    const base = this.postfix(this.node(powerNode, "postfix"));
    const starStar = this.tok(powerNode, "StarStar");
    if (!starStar) return base;
    const opSpan = this.tokSpan(starStar);
    const exponent = this.unaryOrMissing(this.node(powerNode, "unary"));
    return { kind: "binary", op: "**", left: base, right: exponent, opSpan, span: this.join(base.span, exponent.span) };
  }

  private unaryOrMissing(node: CstNode | undefined): Expr {
    return node ? this.unary(node) : this.missingExpr();
  }

  /** Suffixes apply left to right; the CST keeps each kind in its own array, so order them by source offset. */
  private postfix(node: CstNode | undefined): Expr {
    let e = this.primary(this.node(node, "primary"));
    const suffixes = [...this.nodes(node, "indexSuffix"), ...this.nodes(node, "memberSuffix")]
      .map((n) => ({ n, at: this.tokenRange(n).first?.startOffset ?? Infinity }))
      .sort((a, b) => a.at - b.at);
    for (const { n } of suffixes) {
      const span = this.join(e.span, this.nodeSpan(n));
      if (n.name === "indexSuffix") {
        e = { kind: "index", object: e, items: this.nodes(n, "indexItem").map((it) => this.indexItem(it)), span };
      } else {
        const m = this.tok(n, "Identifier");
        const { args, kwargs } = this.callArgs(this.node(n, "callArgs"));
        e = { kind: "member", object: e, method: m?.image ?? "", methodSpan: this.tokSpan(m), args, kwargs, span };
      }
    }
    return e;
  }

  private indexItem(node: CstNode): IndexItem {
    const span = this.nodeSpan(node);
    const parts = this.nodes(node, "additive");
    const colons = this.toks(node, "Colon");
    if (colons.length === 0) {
      if (!parts[0]) {
        this.bag.error("K102", "expected an index but found nothing", span, "write an index (0, -1), a range (a:b) or ':'");
        return { kind: "at", index: this.missingExpr(), span };
      }
      return { kind: "at", index: this.additive(parts[0]), span };
    }
    // Which of start/end/step each `additive` is follows from where it sits relative to the colons.
    const at = (n: CstNode) => this.tokenRange(n).first?.startOffset ?? 0;
    let start: Expr | undefined, end: Expr | undefined, step: Expr | undefined;
    for (const p of parts) {
      const o = at(p);
      if (o < colons[0]!.startOffset) start = this.additive(p);
      else if (colons[1] === undefined || o < colons[1].startOffset) end = this.additive(p);
      else step = this.additive(p);
    }
    return { kind: "range", span, ...(start ? { start } : {}), ...(end ? { end } : {}), ...(step ? { step } : {}) };
  }

  private primary(node: CstNode | undefined): Expr {
    const num = this.tok(node, "NumberLiteral");
    if (num) return { kind: "number", ...numberValue(num), span: this.tokSpan(num) };
    const t = this.tok(node, "True") ?? this.tok(node, "False");
    if (t) return { kind: "bool", value: t.tokenType.name === "True", span: this.tokSpan(t) };
    const nameOrCall = this.node(node, "nameOrCall");
    if (nameOrCall) return this.nameOrCall(nameOrCall);
    const list = this.node(node, "list");
    if (list) {
      const span = this.nodeSpan(list);
      return { kind: "list", items: this.nodes(list, "expr").map((e) => this.expr(e)), span };
    }
    const inner = this.node(node, "expr");
    if (inner) {
      // Parenthesised: the node keeps its own kind but its span covers the parentheses.
      const span = this.nodeSpan(node);
      return { ...this.expr(inner), span };
    }
    return this.missingExpr();
  }

  private nameOrCall(node: CstNode): Expr {
    const nameTok = this.tok(node, "Identifier");
    const nameSpan = this.tokSpan(nameTok);
    const name = nameTok?.image ?? "";
    if (this.nodes(node, "LParen").length === 0) return { kind: "name", name, span: nameSpan };
    const span = this.nodeSpan(node);
    const [first, second] = this.nodes(node, "callArgs");
    const { args, kwargs } = this.callArgs(first);
    const parens = this.rawToks(node, "RParen");
    const callSpan = parens[0] && isReal(parens[0]) ? this.join(nameSpan, this.tokSpan(parens[0])) : span;
    const call: CallExpr = { kind: "call", callee: name, calleeSpan: nameSpan, args, kwargs, span: second ? callSpan : span };
    if (!second) return call;
    const applied = this.callArgs(second);
    return { kind: "apply", transform: call, args: applied.args, kwargs: applied.kwargs, span };
  }

  private callArgs(node: CstNode | undefined): { args: Expr[]; kwargs: KwArg[] } {
    const args: Expr[] = [];
    const kwargs: KwArg[] = [];
    for (const argNode of this.nodes(node, "arg")) {
      const key = this.tok(argNode, "Identifier");
      const value = this.expr(this.node(argNode, "expr"));
      if (key && this.nodes(argNode, "Colon").length > 0) {
        const keySpan = this.tokSpan(key);
        kwargs.push({ name: key.image, value, span: this.join(keySpan, value.span) });
      } else {
        if (kwargs.length > 0) {
          this.bag.error("K205", "positional argument after keyword argument", value.span, "put positional arguments first");
        }
        args.push(value);
      }
    }
    return { args, kwargs };
  }
}

/** Value and int-ness of a number token; a malformed one (K103, reported by parse.ts) gives NaN. */
function numberValue(tok: IToken): { value: number; isInt: boolean } {
  const isInt = !/[.eE]/.test(tok.image);
  return { value: tok.tokenType === BadNumber ? NaN : Number(tok.image), isInt };
}
