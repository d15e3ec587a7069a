// Frontend guard between the lexer and the parser: measures how deeply the token stream nests and rejects a
// file whose nesting would overflow the recursive-descent parser (or the recursive walks after it) with K105.
// Consumes lexer tokens; produces at most one diagnostic, at the token where the limit is first passed.

import type { IToken, TokenType } from "chevrotain";
import type { Span } from "../../diagnostics.js";
import * as T from "./lexer.js";

/**
 * Nesting levels one expression or block may reach. Each open bracket, each prefix `-` still waiting for its
 * operand, each `**` in a right-associative chain and each `else if` in a chain costs one level: every one of
 * them is a recursion in parser.ts, to-ast.ts and lowering. The parser overflowed Node's default stack at
 * about 256 parentheses (the costliest level), so 128 leaves room for the caller's own frames.
 */
export const MAX_NESTING = 128;

/** Characters in one source file: a 30 MB file exhausted V8's heap in the parser instead of failing cleanly. */
export const MAX_SOURCE_CHARS = 4_000_000;

export interface NestingError {
  readonly message: string;
  readonly hint: string;
  readonly span: Span;
}

interface Frame {
  /** Prefix minuses and `**` operators whose right operand is still being read. */
  chain: number;
  /** `else if` links of the current statement. */
  elseIfs: number;
}

const OPENERS = new Set<TokenType>([T.LParen, T.LBracket, T.LBrace]);
const CLOSERS = new Set<TokenType>([T.RParen, T.RBracket, T.RBrace]);
/** Tokens after which a `-` is binary: they end an operand. */
const OPERAND_ENDS = new Set<TokenType>([T.Identifier, T.GoodNumber, T.BadNumber, T.True, T.False, T.RParen, T.RBracket]);

/** The first place where `tokens` nest deeper than MAX_NESTING, or undefined. */
export function checkNesting(tokens: readonly IToken[], file: string, limit = MAX_NESTING): NestingError | undefined {
  const frames: Frame[] = [{ chain: 0, elseIfs: 0 }];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    const type = tok.tokenType;
    const top = frames[frames.length - 1]!;
    if (OPENERS.has(type)) {
      frames.push({ chain: 0, elseIfs: 0 });
      depth += 1;
    } else if (CLOSERS.has(type)) {
      if (frames.length > 1) {
        frames.pop();
        depth -= 1 + top.chain + top.elseIfs;
      }
      // A block not followed by `else` ends its if statement, and with it any `else if` chain around it.
      const parent = frames[frames.length - 1]!;
      if (type === T.RBrace && tokens[i + 1]?.tokenType !== T.Else) {
        depth -= parent.elseIfs;
        parent.elseIfs = 0;
      }
    } else if (type === T.StarStar || (type === T.Minus && !OPERAND_ENDS.has(tokens[i - 1]?.tokenType as TokenType))) {
      top.chain += 1;
      depth += 1;
    } else if (type === T.If && tokens[i - 1]?.tokenType === T.Else) {
      top.elseIfs += 1;
      depth += 1;
    } else if (!OPERAND_ENDS.has(type) && type !== T.Dot) {
      // Any other operator, separator or keyword ends the right-recursive operand being read.
      depth -= top.chain;
      top.chain = 0;
    }
    if (depth > limit) {
      return {
        message: `expression nested too deeply: more than ${limit} levels of brackets, blocks, prefix '-', '**' or 'else if'`,
        hint: `Kiln accepts at most ${limit} nesting levels; bind inner parts to names with let`,
        span: { file, line: tok.startLine ?? 1, col: tok.startColumn ?? 1, length: Math.max(1, tok.image.length) },
      };
    }
  }
  return undefined;
}
