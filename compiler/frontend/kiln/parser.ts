// Frontend stage 2: the Chevrotain CstParser for the grammar in docs/language.md.
// Consumes lexer.ts tokens; produces a concrete syntax tree (to-ast.ts turns it into ast.ts nodes).

import { CstParser, EOF, tokenLabel, type IParserErrorMessageProvider, type IToken, type TokenType } from "chevrotain";
import * as T from "./lexer.js";

/** How a found token reads in an error message: `'{'`, `'foo'`, or `end of file`. */
export function describeToken(tok: IToken): string {
  return tok.tokenType === EOF ? "end of file" : `'${tok.image}'`;
}

function describeExpected(tokType: TokenType): string {
  // The program rule ends with CONSUME(EOF), so "expected EOF" really means "expected another item".
  return tokType === EOF ? "'fn', 'model', 'train' or an attribute" : tokenLabel(tokType);
}

/** Alternatives of an OR/repetition, as "x, y or z" (used when an OR has no ERR_MSG). */
function describePaths(paths: TokenType[][]): string {
  const firsts = [...new Set(paths.map((p) => (p[0] ? describeExpected(p[0]) : "")).filter((s) => s !== ""))];
  if (firsts.length <= 1) return firsts[0] ?? "something else";
  return `${firsts.slice(0, -1).join(", ")} or ${firsts[firsts.length - 1]}`;
}

// Every message has the form "expected X but found Y"; parse.ts relies on that to reword end-of-file errors.
const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual, ruleName }) => {
    // A model body loop exits on anything that is not a member, so the '}' it then expects is only part of the story.
    const what = ruleName === "modelDecl" && expected === T.RBrace ? "'param', 'fn' or '}'" : describeExpected(expected);
    return `expected ${what} but found ${describeToken(actual)}`;
  },
  buildNotAllInputParsedMessage: ({ firstRedundant }) =>
    `expected ${describeExpected(EOF)} but found ${describeToken(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual, customUserDescription }) =>
    `expected ${customUserDescription ?? describePaths(expectedPathsPerAlt.flat())} but found ${describeToken(actual[0]!)}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual, customUserDescription }) =>
    `expected ${customUserDescription ?? describePaths(expectedIterationPaths)} but found ${describeToken(actual[0]!)}`,
};

class KilnParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: errorMessages });
    this.performSelfAnalysis();
  }

  // Consuming EOF gives the top-level repetition a follow token, which enables Chevrotain's in-repetition
  // recovery: stray tokens between items are skipped (one error) instead of ending the parse.
  program = this.RULE("program", () => {
    this.MANY(() => this.SUBRULE(this.item));
    this.CONSUME(EOF);
  });

  item = this.RULE("item", () => {
    this.MANY(() => this.SUBRULE(this.attribute));
    this.OR({
      DEF: [{ ALT: () => this.SUBRULE(this.fnDecl) }, { ALT: () => this.SUBRULE(this.modelDecl) }, { ALT: () => this.SUBRULE(this.trainDecl) }],
      ERR_MSG: "'fn', 'model' or 'train'",
    });
  });

  // `train Name { model: M  loss: loss  optimizer: sgd(lr: 0.1) }`: compiled into one training-step function.
  trainDecl = this.RULE("trainDecl", () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.SUBRULE(this.trainEntry);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RBrace);
  });

  // `model` is a keyword elsewhere but names an entry here.
  trainEntry = this.RULE("trainEntry", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(T.Model) }]);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.expr);
  });

  attribute = this.RULE("attribute", () => {
    this.CONSUME(T.At);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.SUBRULE(this.callArgs);
      this.CONSUME(T.RParen);
    });
  });

  fnDecl = this.RULE("fnDecl", () => {
    this.CONSUME(T.Fn);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.param);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.param);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RParen);
    this.OPTION3(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.returnType);
    });
    this.SUBRULE(this.block);
    this.OPTION4(() => this.SUBRULE(this.backwardRule));
  });

  // A user-written vector-Jacobian rule: `backward(dy) { return dx1, dx2 }`, one gradient per parameter.
  backwardRule = this.RULE("backwardRule", () => {
    this.CONSUME(T.Backward);
    this.CONSUME(T.LParen);
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier);
    });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.block);
  });

  param = this.RULE("param", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
  });

  returnType = this.RULE("returnType", () => {
    this.OR({
      DEF: [
        { ALT: () => this.SUBRULE(this.typeExpr) },
        {
          ALT: () => {
            this.CONSUME(T.LParen);
            this.SUBRULE2(this.typeExpr);
            this.MANY(() => {
              this.CONSUME(T.Comma);
              this.SUBRULE3(this.typeExpr);
            });
            this.CONSUME(T.RParen);
          },
        },
      ],
      ERR_MSG: "a type",
    });
  });

  typeExpr = this.RULE("typeExpr", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.SUBRULE(this.dim);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.dim);
      });
      this.CONSUME(T.RBracket);
    });
  });

  // A dim is a product of factors (or a dim in parentheses), floor-divided by constants, plus or minus a constant:
  // `B`, `784`, `B * T`, `T - 1`, `H / 2`, `(H + 1) / 2 - 1` (compiler/ir/dim-expr.ts).
  dim = this.RULE("dim", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.dim, { LABEL: "inner" });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.SUBRULE(this.dimFactor);
          this.MANY(() => {
            this.CONSUME(T.Star);
            this.SUBRULE2(this.dimFactor);
          });
        },
      },
    ]);
    this.MANY2(() => {
      this.CONSUME(T.Slash);
      this.CONSUME2(T.NumberLiteral, { LABEL: "divisor" });
    });
    this.OPTION(() => {
      this.CONSUME(T.AddOp);
      this.CONSUME(T.NumberLiteral);
    });
  });

  dimFactor = this.RULE("dimFactor", () => {
    this.OR({
      DEF: [{ ALT: () => this.CONSUME(T.NumberLiteral) }, { ALT: () => this.CONSUME(T.Identifier) }],
      ERR_MSG: "a dimension (integer or name)",
    });
  });

  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.OR({
        DEF: [{ ALT: () => this.SUBRULE(this.paramDecl) }, { ALT: () => this.SUBRULE(this.method) }, { GATE: () => this.LA(2).tokenType === T.Colon, ALT: () => this.SUBRULE(this.subDecl) }],
        ERR_MSG: "'param', 'fn' or a submodule (name: Model)",
      });
    });
    this.CONSUME(T.RBrace);
  });

  // `attn: Attention` or `blocks: Block[4]`: a submodule, or an array of them (compiler/lower/submodules.ts).
  subDecl = this.RULE("subDecl", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
  });

  method = this.RULE("method", () => {
    this.MANY(() => this.SUBRULE(this.attribute));
    this.SUBRULE(this.fnDecl);
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
    this.CONSUME(T.Equals);
    this.CONSUME2(T.Identifier);
    this.CONSUME(T.LParen);
    this.SUBRULE(this.callArgs);
    this.CONSUME(T.RParen);
  });

  block = this.RULE("block", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.SUBRULE(this.stmt);
      this.OPTION(() => this.CONSUME(T.Semicolon));
    });
    this.CONSUME(T.RBrace);
  });

  stmt = this.RULE("stmt", () => {
    this.OR({
      DEF: [
        { ALT: () => this.SUBRULE(this.letStmt) },
        { ALT: () => this.SUBRULE(this.returnStmt) },
        { ALT: () => this.SUBRULE(this.ifStmt) },
        { ALT: () => this.SUBRULE(this.forStmt) },
        { ALT: () => this.SUBRULE(this.whileStmt) },
        { GATE: () => this.LA(2).tokenType === T.Equals, ALT: () => this.SUBRULE(this.assignStmt) },
        { ALT: () => this.SUBRULE(this.expr) },
      ],
      ERR_MSG: "a statement",
    });
  });

  letStmt = this.RULE("letStmt", () => {
    this.CONSUME(T.Let);
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier);
    });
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  ifStmt = this.RULE("ifStmt", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expr);
    this.SUBRULE(this.block);
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([{ ALT: () => this.SUBRULE(this.ifStmt) }, { ALT: () => this.SUBRULE2(this.block) }]);
    });
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    this.SUBRULE(this.additive);
    this.CONSUME(T.DotDot);
    this.SUBRULE2(this.additive);
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier);
      this.CONSUME(T.Colon);
      this.SUBRULE(this.expr);
    });
    this.SUBRULE(this.block);
  });

  // `while cond { ... }` or `while cond, max: 100 { ... }` (the bound lets gradients preallocate their tape).
  whileStmt = this.RULE("whileStmt", () => {
    this.CONSUME(T.While);
    this.SUBRULE(this.expr);
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.CONSUME(T.Identifier);
      this.CONSUME(T.Colon);
      this.SUBRULE2(this.expr);
    });
    this.SUBRULE(this.block);
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.SUBRULE(this.expr);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.expr);
    });
  });

  // Comparison is non-associative: `a < b < c` is a syntax error rather than a silent surprise.
  expr = this.RULE("expr", () => {
    this.SUBRULE(this.additive);
    this.OPTION(() => {
      this.CONSUME(T.CompareOp);
      this.SUBRULE2(this.additive);
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative);
    this.MANY(() => {
      this.CONSUME(T.AddOp);
      this.SUBRULE2(this.multiplicative);
    });
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary);
    this.MANY(() => {
      this.CONSUME(T.MulOp);
      this.SUBRULE2(this.unary);
    });
  });

  unary = this.RULE("unary", () => {
    this.OR({
      DEF: [
        {
          ALT: () => {
            this.CONSUME(T.Minus);
            this.SUBRULE(this.unary);
          },
        },
        { ALT: () => this.SUBRULE(this.power) },
      ],
      ERR_MSG: "an expression",
    });
  });

  // The exponent is a unary (not a power) so that `2 ** -1` parses and `**` stays right-associative.
  power = this.RULE("power", () => {
    this.SUBRULE(this.postfix);
    this.OPTION(() => {
      this.CONSUME(T.StarStar);
      this.SUBRULE(this.unary);
    });
  });

  // Indexing `x[0]`, `x[a:b, :, -1]` and submodule method calls `attn.forward(x)`, `blocks[i].forward(x)`.
  // A '[' that follows an expression always indexes it (a list literal cannot start a statement usefully).
  postfix = this.RULE("postfix", () => {
    this.SUBRULE(this.primary);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.indexSuffix) },
        { ALT: () => this.SUBRULE(this.memberSuffix) },
      ]);
    });
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.indexItem);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.indexItem);
    });
    this.CONSUME(T.RBracket);
  });

  // `i`, `a:b`, `a:`, `:b`, `:` (and a step: `a:b:s`, `::s`).
  indexItem = this.RULE("indexItem", () => {
    this.OPTION(() => this.SUBRULE(this.additive));
    this.OPTION2(() => {
      this.CONSUME(T.Colon);
      this.OPTION3(() => this.SUBRULE2(this.additive));
      this.OPTION4(() => {
        this.CONSUME2(T.Colon);
        this.SUBRULE3(this.additive);
      });
    });
  });

  memberSuffix = this.RULE("memberSuffix", () => {
    this.CONSUME(T.Dot);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.SUBRULE(this.callArgs);
    this.CONSUME(T.RParen);
  });

  primary = this.RULE("primary", () => {
    this.OR({
      DEF: [
        { ALT: () => this.CONSUME(T.NumberLiteral) },
        { ALT: () => this.CONSUME(T.True) },
        { ALT: () => this.CONSUME(T.False) },
        { ALT: () => this.SUBRULE(this.nameOrCall) },
        {
          ALT: () => {
            this.CONSUME(T.LParen);
            this.SUBRULE(this.expr);
            this.CONSUME(T.RParen);
          },
        },
        { ALT: () => this.SUBRULE(this.list) },
      ],
      ERR_MSG: "an expression",
    });
  });

  // `f(x)`, and a transformed function applied at once: `grad(f)(x)`, `value_and_grad(f, wrt: w)(x, y)`.
  nameOrCall = this.RULE("nameOrCall", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.SUBRULE(this.callArgs);
      this.CONSUME(T.RParen);
      this.OPTION2(() => {
        this.CONSUME2(T.LParen);
        this.SUBRULE2(this.callArgs);
        this.CONSUME2(T.RParen);
      });
    });
  });

  list = this.RULE("list", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expr);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.expr);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });

  callArgs = this.RULE("callArgs", () => {
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.arg);
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
  });

  // LL(2): `name :` starts a keyword argument, any other start is a positional expression.
  arg = this.RULE("arg", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.CONSUME(T.Colon);
          this.SUBRULE(this.expr);
        },
      },
      { ALT: () => this.SUBRULE2(this.expr) },
    ]);
  });
}

/** One shared instance: Chevrotain parsers are expensive to build and are reset by assigning `input`. */
export const kilnParser = new KilnParser();
