// Fuzz suite, generators (fast-check): hostile .kiln sources (token soup, mutations of valid programs, deep
// nesting, long chains, huge literals and shapes, odd line endings), valid programs whose wasm builds must agree
// with the float64 reference, and call inputs that are wrong in one way each.
import fc from "fast-check";

/** Valid programs the mutations start from: every construct the grammar has, small enough to compile fast. */
export const SEED_PROGRAMS: readonly string[] = [
  "fn f(x: f32[3]) -> f32[3] {\n  return relu(x * 2 + 1)\n}",
  "model M {\n  param w: f32[4, 3] = he()\n  param b: f32[3] = zeros()\n  fn forward(x: f32[B, 4]) -> f32[B, 3] { return x @ w + b }\n  fn loss(x: f32[B, 4], labels: i32[B]) -> f32 { return cross_entropy(forward(x), labels) }\n}\ntrain T {\n  model: M\n  loss: loss\n  optimizer: adam(lr: 0.01)\n}",
  "fn f(x: f32, n: i32) -> f32 {\n  let y = x\n  for i in 0..n, max: 4 { y = y * 0.5 }\n  if y > 1 { y = y - 1 } else { y = y + 1 }\n  return y\n}",
  "fn g(x: f32) -> f32 { return x ** 3 + exp(-x) }\nfn dg(x: f32) -> f32 { return grad(g)(x) }",
  "fn f(x: f32[2, 3]) -> f32[3, 2] {\n  let s = softmax(x, axis: 1)\n  return transpose(s) * sum(x, axis: [0, 1])\n}",
  "fn f(a: i32[4], b: u8[4]) -> i32[4] {\n  return a * 3 - cast(b, i32)\n}",
  "fn f(x: f32[1, 1, 6, 6], w: f32[2, 1, 3, 3]) -> f32[1, 2, 2, 2] {\n  return max_pool2d(conv2d(x, w, padding: 1), 3)\n}",
];

const TOKENS = [
  "fn", "model", "param", "let", "return", "if", "else", "for", "in", "while", "train", "backward", "true", "false",
  "x", "y", "f", "M", "B", "f32", "i32", "u8", "f16", "bool", "exp", "sum", "grad", "one_hot", "cross_entropy", "reshape",
  "0", "1", "3", "1.5", "1e400", "9007199254740993", "3000000000", "-", "+", "*", "/", "@", "**", "==", "<", "=", "->", ":", ",", ";",
  "(", ")", "[", "]", "{", "}", "..", ".", "@autocast", "//c\n", "/*", "*/", "\r", "\n", " ", "$", "\u0000", "é",
];

/** Random token sequences: mostly syntax errors, each of which must be a diagnostic. */
export const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 80 }).map((ts) => ts.join(" "));

/** A seed program with one slice deleted, duplicated or replaced by tokens. */
export const mutatedProgram = fc
  .tuple(fc.constantFrom(...SEED_PROGRAMS), fc.nat(), fc.nat(), fc.constantFrom("delete", "duplicate", "insert", "crlf", "cr"), tokenSoup)
  .map(([src, a, b, how, soup]) => {
    const i = a % (src.length + 1), j = i + (b % 12);
    if (how === "delete") return src.slice(0, i) + src.slice(j);
    if (how === "duplicate") return src.slice(0, j) + src.slice(i, j) + src.slice(j);
    if (how === "crlf") return src.replace(/\n/g, "\r\n");
    if (how === "cr") return src.replace(/\n/g, "\r");
    return src.slice(0, i) + " " + soup.slice(0, 30) + " " + src.slice(i);
  });

/** A seed program with some of its numbers, names or operators swapped for others of the same kind. */
export const substitutedProgram = fc
  .tuple(fc.constantFrom(...SEED_PROGRAMS), fc.array(fc.tuple(fc.nat(), fc.constantFrom("0", "1", "-1", "2.5", "1e39", "255", "256", "2147483648", "B", "x", "w", "labels", "i32", "u8", "f16", "bool", "*", "@", "**", "==", "+")), { minLength: 1, maxLength: 4 }))
  .map(([src, swaps]) => {
    const parts = src.split(/(\b\w+\b|\*\*|[-+*/@<>=]+)/);
    for (const [at, to] of swaps) {
      const slots = parts.map((p, i) => (i % 2 === 1 ? i : -1)).filter((i) => i >= 0);
      if (slots.length) parts[slots[at % slots.length]!] = to;
    }
    return parts.join("");
  });

/** Deep or long structures of one kind, from harmless to far past every limit. */
export const deepProgram = fc
  .tuple(fc.constantFrom("paren", "call", "neg", "pow", "if", "elseif", "list", "sum", "mul"), fc.integer({ min: 1, max: 3000 }))
  .map(([kind, n]) => {
    const body = (e: string) => `fn f(x: f32) -> f32 {\n  let y = x\n  ${e}\n  return y\n}`;
    switch (kind) {
      case "paren": return body(`y = ${"(".repeat(n)}x${")".repeat(n)}`);
      case "call": return body(`y = ${"exp(".repeat(n)}x${")".repeat(n)}`);
      case "neg": return body(`y = ${"-".repeat(n)}x`);
      case "pow": return body(`y = x${" ** x".repeat(n)}`);
      case "if": return body(`${"if x > 0 { ".repeat(n)}y = x${" }".repeat(n)}`);
      case "elseif": return body(Array.from({ length: n }, (_, i) => `if x > ${i} { y = x }`).join(" else "));
      case "list": return body(`y = sum(reshape(x, ${"[".repeat(n)}1${"]".repeat(n)}))`);
      case "sum": return body(`y = x${" + x".repeat(n * 4)}`);
      default: return body(`y = x${" * 0.5 + x".repeat(n)}`);
    }
  });

/** Literals and shapes at and past every dtype's range and the element limit. */
export const bigLiteralProgram = fc
  .tuple(
    fc.constantFrom("f32", "f16", "i32", "i8", "u8"),
    fc.constantFrom("0", "127", "128", "255", "256", "-129", "65504", "70000", "2147483647", "2147483648", "-2147483649", "3.4e38", "3.5e38", "1e308", "1e309", "9007199254740993", "0.5"),
    fc.constantFrom("3", "255", "65536", "268435456", "268435457", "2147483648", "9007199254740992", "1e400", "0", "2.5"),
  )
  .map(([dt, lit, dim]) => `model M {\n  param w: ${dt}[${dim}] = constant(${lit})\n  fn f(x: ${dt}[3]) -> ${dt}[3] { return x + ${lit} }\n}\nfn g(x: f32[B, ${dim}]) -> f32 { return sum(one_hot(cast(x, i32), ${lit})) }`);

/** Any hostile source. */
export const hostileSource = fc.oneof(tokenSoup, mutatedProgram, substitutedProgram, deepProgram, bigLiteralProgram);

/** A random elementwise / reduction / matmul expression over x, y [R, C], v [C], u [R, 1], w [C, C]. */
const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom("x", "y", "(x * v)", "(y + u)", "(x - u * v)"),
    fc.tuple(tie("e"), tie("e"), fc.constantFrom("+", "*", "-", "/")).map(([a, b, op]) => (op === "/" ? `(${a} / (abs(${b}) + 1))` : `(${a} ${op} ${b})`)),
    fc.tuple(tie("e"), fc.constantFrom("tanh", "sigmoid", "relu", "abs")).map(([a, f]) => `${f}(${a})`),
    tie("e").map((a) => `exp(-abs(${a}))`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `where(${a} > ${b}, ${a}, ${b} * 0.25)`),
    fc.tuple(tie("e"), tie("e"), fc.constantFrom("sum", "mean", "max", "min"), fc.constantFrom(0, 1)).map(([a, b, r, ax]) => `(${a} - ${r}(${b}, axis: ${ax}, keepdims: true))`),
    fc.tuple(tie("e"), fc.constantFrom(0, 1)).map(([a, ax]) => `softmax(${a}, axis: ${ax})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `((${a} @ w) * 0.3 + ${b})`),
  ),
})).e;

export interface ValidCase {
  readonly src: string;
  readonly R: number;
  readonly C: number;
  readonly seed: number;
}

export const validProgram: fc.Arbitrary<ValidCase> = fc
  .tuple(expr, fc.constantFrom<[number, number]>([1, 1], [3, 17], [17, 3], [5, 33], [2, 65]), fc.integer({ min: 1, max: 2 ** 31 - 1 }))
  .map(([e, [R, C], seed]) => ({
    R, C, seed,
    src: `fn f(x: f32[${R}, ${C}], y: f32[${R}, ${C}], v: f32[${C}], u: f32[${R}, 1], w: f32[${C}, ${C}]) -> f32[${R}, ${C}] {\n  return ${e}\n}`,
  }));

/** One thing wrong with a call of `M.loss(x: f32[B, 4], labels: i32[B])` (classes: 3), or with its options. */
export const badLossCall = fc.oneof(
  fc.constantFrom(3, 4, 10, 99, -1, -2147483648, 2147483647).map((l) => ({ what: `label ${l}`, inputs: { x: new Float32Array(8), labels: new Int32Array([0, l]) } })),
  fc.constantFrom(0, 1, 3, 7, 9).map((n) => ({ what: `x of ${n} floats`, inputs: { x: new Float32Array(n), labels: new Int32Array([0, 1]) } })),
  fc.constantFrom<unknown>(new Float64Array(8), new Int32Array(8), "x", null, {}, [[1, 2], [3]], [NaN]).map((x) => ({ what: `x = ${String(x)}`, inputs: { x, labels: new Int32Array([0, 1]) } })),
  fc.constantFrom<unknown>(new Float32Array(2), [0.5, 1], [0, 1, 2], new Uint8Array(2), 1.5).map((labels) => ({ what: `labels = ${String(labels)}`, inputs: { x: new Float32Array(8), labels } })),
  fc.constantFrom<unknown>({ dims: { B: 0 } }, { dims: { B: -1 } }, { batch: 1.5 }, { dims: { B: 3 } }, { batch: 2 ** 40 }, "fast").map((opts) => ({ what: `options ${JSON.stringify(opts)}`, inputs: { x: new Float32Array(8), labels: new Int32Array([0, 1]) }, opts })),
);
