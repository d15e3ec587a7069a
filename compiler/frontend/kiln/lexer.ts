// Frontend stage 1: the Chevrotain token vocabulary and lexer for .kiln source.
// Consumes source text; produces the token stream that parser.ts reads (parse.ts turns lexer errors into K101/K104).

import { createToken, Lexer, type TokenType } from "chevrotain";

// Groups let parse.ts pick these out of the lexing result: they never reach the parser.
export const ERROR_GROUP = "lexErrors";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /\s+/, group: Lexer.SKIPPED, line_breaks: true });
export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n\r]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({
  name: "BlockComment",
  pattern: /\/\*[\s\S]*?\*\//,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
// Only matches when BlockComment (tried first) could not find a closing `*/`.
export const UnterminatedComment = createToken({
  name: "UnterminatedComment",
  pattern: /\/\*[\s\S]*/,
  group: ERROR_GROUP,
  line_breaks: true,
});

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: "a name" });

function keyword(word: string): TokenType {
  const name = word[0]!.toUpperCase() + word.slice(1);
  return createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'` });
}

export const Fn = keyword("fn");
export const Model = keyword("model");
export const Param = keyword("param");
export const Let = keyword("let");
export const Return = keyword("return");
export const True = keyword("true");
export const False = keyword("false");
// Reserved so that planned features (control flow, training, custom gradients) cannot collide with user names.
export const If = keyword("if");
export const Else = keyword("else");
export const For = keyword("for");
export const In = keyword("in");
export const While = keyword("while");
export const Train = keyword("train");
export const Backward = keyword("backward");

// The parser consumes the NumberLiteral category, so a malformed number still parses as a literal and the
// visitor reports one K103 instead of a cascade of syntax errors.
export const NumberLiteral = createToken({ name: "NumberLiteral", pattern: Lexer.NA, label: "a number" });
// A well-formed number must not run straight into a name character or a single `.` (`1.2.3`, `12abc`, `1.`);
// `1..3` stays legal so that a future range operator can follow an int.
export const GoodNumber = createToken({
  name: "GoodNumber",
  pattern: /(?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_]|\.(?!\.))/,
  categories: [NumberLiteral],
  label: "a number",
});
// Tried after GoodNumber, so it only sees digit runs that GoodNumber rejected (`1e`, `1e+`, `1.2.3`, `12abc`).
export const BadNumber = createToken({
  name: "BadNumber",
  pattern: /(?:\d|\.\d)(?:[eE][+-]|[A-Za-z0-9_]|\.(?!\.))*/,
  categories: [NumberLiteral],
  label: "a number",
});

function punct(name: string, image: string): TokenType {
  return createToken({ name, pattern: image, label: `'${image}'` });
}

// Operator categories keep the grammar rules short: one CONSUME per precedence level.
export const CompareOp = createToken({ name: "CompareOp", pattern: Lexer.NA, label: "a comparison operator" });
export const AddOp = createToken({ name: "AddOp", pattern: Lexer.NA, label: "'+' or '-'" });
export const MulOp = createToken({ name: "MulOp", pattern: Lexer.NA, label: "'*', '/', '%' or '@'" });

export const StarStar = punct("StarStar", "**");
export const Star = createToken({ name: "Star", pattern: "*", categories: [MulOp], label: "'*'" });
export const Slash = createToken({ name: "Slash", pattern: "/", categories: [MulOp], label: "'/'" });
export const At = createToken({ name: "At", pattern: "@", categories: [MulOp], label: "'@'" });
export const Percent = createToken({ name: "Percent", pattern: "%", categories: [MulOp], label: "'%'" });
export const Arrow = punct("Arrow", "->");
export const Plus = createToken({ name: "Plus", pattern: "+", categories: [AddOp], label: "'+'" });
export const Minus = createToken({ name: "Minus", pattern: "-", categories: [AddOp], label: "'-'" });
export const EqEq = createToken({ name: "EqEq", pattern: "==", categories: [CompareOp], label: "'=='" });
export const NotEq = createToken({ name: "NotEq", pattern: "!=", categories: [CompareOp], label: "'!='" });
export const LessEq = createToken({ name: "LessEq", pattern: "<=", categories: [CompareOp], label: "'<='" });
export const GreaterEq = createToken({ name: "GreaterEq", pattern: ">=", categories: [CompareOp], label: "'>='" });
export const Less = createToken({ name: "Less", pattern: "<", categories: [CompareOp], label: "'<'" });
export const Greater = createToken({ name: "Greater", pattern: ">", categories: [CompareOp], label: "'>'" });
export const Equals = punct("Equals", "=");
export const Colon = punct("Colon", ":");
export const Comma = punct("Comma", ",");
export const Semicolon = punct("Semicolon", ";");
export const LParen = punct("LParen", "(");
export const RParen = punct("RParen", ")");
export const LBracket = punct("LBracket", "[");
export const RBracket = punct("RBracket", "]");
export const LBrace = punct("LBrace", "{");
export const RBrace = punct("RBrace", "}");
export const DotDot = punct("DotDot", "..");
export const Dot = punct("Dot", ".");

// Order matters: Chevrotain takes the first pattern that matches, so longer operators precede their prefixes,
// comments precede '/', and numbers precede '.'.
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  GoodNumber,
  BadNumber,
  NumberLiteral,
  Fn,
  Model,
  Param,
  Let,
  Return,
  True,
  False,
  If,
  Else,
  For,
  In,
  While,
  Train,
  Backward,
  Identifier,
  StarStar,
  Star,
  Slash,
  Percent,
  At,
  Arrow,
  Plus,
  Minus,
  EqEq,
  NotEq,
  LessEq,
  GreaterEq,
  Less,
  Greater,
  Equals,
  Colon,
  Comma,
  Semicolon,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  DotDot,
  Dot,
  CompareOp,
  AddOp,
  MulOp,
];

export const kilnLexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });
