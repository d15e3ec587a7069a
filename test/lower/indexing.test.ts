// Indexing and gathering (x[i], x[a:b], x[:, 0], negative indices, table[ids], take, embedding,
// take_along_axis / gather), causal attention and shape arithmetic (B * T, -1 with symbols, zeros/full with
// symbolic shapes): wasm against the float64 reference, both against PyTorch's numbers or hand-worked values,
// gradients against central finite differences; and the diagnostics of bad indices.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { graphOf, irOf, runBoth, type Input } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";

const f32 = (shape: number[], data: number[]): Input => ({ dtype: "f32", shape, data });
const i32 = (shape: number[], data: number[]): Input => ({ dtype: "i32", shape, data });
const grid = (shape: number[], f: (k: number) => number) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => f(k));

/** Runs on wasm and the reference; both must equal `want` (reference to 1e-12, wasm to f32 rounding). */
async function expectBoth(src: string, fn: string, inputs: Record<string, Input>, shape: number[], want: number[], tol = 2e-6) {
  const { wasm, ref } = await runBoth(irOf(src), fn, inputs);
  expect(ref[0].shape).toEqual(shape);
  expect(wasm[0].shape).toEqual(shape);
  want.forEach((v, i) => {
    expect(Math.abs(ref[0].data[i] - v), `${fn} reference [${i}] = ${ref[0].data[i]} vs ${v}`).toBeLessThanOrEqual(1e-12 + 1e-12 * Math.abs(v));
    expect(Math.abs(Number(wasm[0].data[i]) - v), `${fn} wasm [${i}] = ${wasm[0].data[i]} vs ${v}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(v)));
  });
}

// x[i, j] = 10 i + j on a [3, 5] grid, so every picked value names its own position.
const X35 = f32([3, 5], grid([3, 5], (k) => 10 * Math.floor(k / 5) + (k % 5)));

describe("static indexing", () => {
  const src = `
fn rows(x: f32[3, 5]) -> f32[2, 2] { return x[1:, -2:] }
fn col(x: f32[3, 5]) -> f32[3] { return x[:, 0] }
fn last(x: f32[3, 5]) -> f32[5] { return x[-1] }
fn point(x: f32[3, 5]) -> f32 { return x[2, -4] }
fn stepped(x: f32[3, 5]) -> f32[3, 3] { return x[:, ::2] }
fn mid(x: f32[3, 5]) -> f32[1, 3] { return x[1:2, 1:-1] }
fn chained(x: f32[3, 5]) -> f32 { return x[1][3] }`;
  const cases: [string, number[], number[]][] = [
    ["rows", [2, 2], [13, 14, 23, 24]],
    ["col", [3], [0, 10, 20]],
    ["last", [5], [20, 21, 22, 23, 24]],
    ["point", [], [21]],
    ["stepped", [3, 3], [0, 2, 4, 10, 12, 14, 20, 22, 24]],
    ["mid", [1, 3], [11, 12, 13]],
    ["chained", [], [13]],
  ];
  for (const [fn, shape, want] of cases) it(`${fn}: values at the positions Python's indexing picks`, () => expectBoth(src, fn, { x: X35 }, shape, want));

  it("gradient of a slice scatters back into place (float64 reference vs finite differences)", () => {
    const s = `
fn loss(x: f64[3, 5]) -> f64 { return sum(tanh(x[1:, ::2]) * x[0, 1:4]) }
fn g(x: f64[3, 5]) -> f64[3, 5] { return grad(loss)(x) }`;
    checkFd(s, { x: { shape: [3, 5], data: grid([3, 5], (k) => Math.sin(k)) } }, ["x"], "loss", "g");
  });
});

// Golden numbers from PyTorch 1.13 (Debian python3-torch), float64:
//   table[v, j] = sin(4 v + j) ([5, 4]); ids = [[3, 0, 4], [1, 1, 2]]; w[i, t, j] = cos(12 i + 4 t + j)
//   out = F.embedding(ids, table); (out * w).sum().backward() -> table.grad
const EMB = [-0.5365729180004349, 0.4201670368266409, 0.9906073556948704, 0.6502878401571168, 0.0, 0.8414709848078965, 0.9092974268256817, 0.1411200080598672, -0.2879033166650653, -0.9613974918795568, -0.750987246771676, 0.14987720966295234, -0.7568024953079282, -0.9589242746631385, -0.27941549819892586, 0.6569865987187891, -0.7568024953079282, -0.9589242746631385, -0.27941549819892586, 0.6569865987187891, 0.9893582466233818, 0.4121184852417566, -0.5440211108893698, -0.9999902065507035];
const EMB_GRAD = [-0.6536436208636119, 0.28366218546322625, 0.960170286650366, 0.7539022543433046, -0.11380552159089252, 0.6322834433985993, 0.7970539264519138, 0.2290167053278479, 0.40808206181339196, -0.5477292602242684, -0.9999608263946371, -0.5328330203333975, 1.0, 0.5403023058681398, -0.4161468365471424, -0.9899924966004454, -0.14550003380861354, -0.9111302618846769, -0.8390715290764524, 0.004425697988050785];
//   x[i, j] = sin(5 i + j) ([3, 5]); idx = [[4, 0], [2, 2], [1, 3]]; torch.gather(x, 1, idx)
const GATHER = [-0.7568024953079282, 0.0, 0.6569865987187891, 0.6569865987187891, -0.9999902065507035, 0.4201670368266409];
//   q[b, t, c] = sin(12 b + 3 t + c), k = cos(...), v = sin(0.5 (...)) ([2, 4, 3]);
//   s = q @ k^T / sqrt(3), masked_fill(~tril(ones(4, 4)), -inf); softmax(s, -1) @ v
const ATTN = [0.0, 0.479425538604203, 0.8414709848078965, 0.4917924119058029, 0.6913641804601133, 0.7216658854690454, 0.4143170299812102, 0.34102123478390084, 0.18423154778013773, -0.011120350280356184, 0.00487252453294218, 0.019672435405342387, -0.27941549819892586, 0.21511998808781552, 0.6569865987187891, 0.3100059442381561, 0.5899736354392915, 0.7254952046350245, 0.42047357346432446, 0.40724842070590805, 0.2943146512734739, -0.014438276737558015, 0.0009035222967946066, 0.0160241075614502];

const TABLE = grid([5, 4], (k) => Math.sin(4 * Math.floor(k / 4) + (k % 4)));
const IDS = i32([2, 3], [3, 0, 4, 1, 1, 2]);
const W = grid([2, 3, 4], (k) => Math.cos(k));

describe("gathering, against PyTorch", () => {
  it("embedding(ids, table), table[ids] and take(table, ids) agree with F.embedding", async () => {
    const src = `
fn e1(ids: i32[B, T], table: f32[5, 4]) -> f32[B, T, 4] { return embedding(ids, table) }
fn e2(ids: i32[B, T], table: f32[5, 4]) -> f32[B, T, 4] { return table[ids] }
fn e3(ids: i32[B, T], table: f32[5, 4]) -> f32[B, T, 4] { return take(table, ids, axis: 0) }`;
    for (const fn of ["e1", "e2", "e3"]) await expectBoth(src, fn, { ids: IDS, table: f32([5, 4], TABLE) }, [2, 3, 4], EMB);
  });

  it("embedding's gradient is the scatter-add of the output gradient into the rows used (PyTorch's table.grad)", async () => {
    const src = `
fn loss(table: f32[5, 4], ids: i32[2, 3], w: f32[2, 3, 4]) -> f32 { return sum(embedding(ids, table) * w) }
fn g(table: f32[5, 4], ids: i32[2, 3], w: f32[2, 3, 4]) -> f32[5, 4] { return grad(loss)(table, ids, w) }`;
    await expectBoth(src, "g", { table: f32([5, 4], TABLE), ids: IDS, w: f32([2, 3, 4], W) }, [5, 4], EMB_GRAD);
  });

  it("take along a middle axis keeps the other axes in place", async () => {
    // x[i, j, k] = 100 i + 10 j + k ([2, 3, 2]); take(x, [2, 0], axis: 1)[i, m, k] = x[i, ids[m], k].
    const src = "fn f(x: f32[2, 3, 2], ids: i32[2]) -> f32[2, 2, 2] { return take(x, ids, axis: 1) }";
    const x = grid([2, 3, 2], (q) => 100 * Math.floor(q / 6) + 10 * (Math.floor(q / 2) % 3) + (q % 2));
    await expectBoth(src, "f", { x: f32([2, 3, 2], x), ids: i32([2], [2, 0]) }, [2, 2, 2], [20, 21, 0, 1, 120, 121, 100, 101]);
  });

  it("gather / take_along_axis equal torch.gather(x, 1, idx)", async () => {
    const src = `
fn g1(x: f32[3, 5], idx: i32[3, 2]) -> f32[3, 2] { return gather(x, idx, axis: 1) }
fn g2(x: f32[3, 5], idx: i32[3, 2]) -> f32[3, 2] { return take_along_axis(x, idx, axis: -1) }`;
    const x = f32([3, 5], grid([3, 5], (k) => Math.sin(k)));
    for (const fn of ["g1", "g2"]) await expectBoth(src, fn, { x, idx: i32([3, 2], [4, 0, 2, 2, 1, 3]) }, [3, 2], GATHER);
  });

  it("gradients of take_along_axis and of take along axis 1 match finite differences", () => {
    const src = `
fn l1(x: f64[3, 5], idx: i32[3, 2], r: f64[3, 2]) -> f64 { return sum(tanh(take_along_axis(x, idx, axis: 1)) * r) }
fn g1(x: f64[3, 5], idx: i32[3, 2], r: f64[3, 2]) -> f64[3, 5] { return grad(l1)(x, idx, r) }
fn l2(x: f64[3, 5], ids: i32[4], r: f64[3, 4]) -> f64 { return sum(tanh(take(x, ids, axis: 1)) * r) }
fn g2(x: f64[3, 5], ids: i32[4], r: f64[3, 4]) -> f64[3, 5] { return grad(l2)(x, ids, r) }`;
    const x = { shape: [3, 5], data: grid([3, 5], (k) => Math.cos(3 * k)) };
    checkFd(src, { x, idx: { shape: [3, 2], data: [4, 0, 2, 2, 1, 3] }, r: { shape: [3, 2], data: grid([3, 2], (k) => k - 2.5) } }, ["x"], "l1", "g1");
    checkFd(src, { x, ids: { shape: [4], data: [4, 1, 4, 0] }, r: { shape: [3, 4], data: grid([3, 4], (k) => Math.sin(k)) } }, ["x"], "l2", "g2");
  });
});

describe("run-time indices out of range", () => {
  const src = `
fn e(ids: i32[B, T], table: f32[5, 4]) -> f32[B, T, 4] { return embedding(ids, table) }
fn t(x: f32[3, 5], ids: i32[2]) -> f32[3, 2] { return x[:, ids] }
fn g(x: f32[3, 5], idx: i32[3, 2]) -> f32[3, 2] { return gather(x, reshape(idx, [3, 2]), axis: 1) }`;
  it("are a KilnError naming the function, the input, the index and where it is, on wasm and in the reference", async () => {
    const ir = irOf(src);
    expect(graphOf(ir, "e").inputs.map((i) => i.bound)).toEqual([5, undefined]);
    const table = f32([5, 4], TABLE);
    await expect(runBoth(ir, "e", { ids: i32([2, 3], [3, 0, 4, 1, 5, 2]), table })).rejects.toThrow('e: input "ids" has index 5 at [1, 1], out of range for an axis of 5 (expected 0 to 4)');
    expect(() => evaluateGraph(graphOf(ir, "e"), { ids: { shape: [2, 3], data: [3, 0, 4, 1, -1, 2] }, table })).toThrow('e: input "ids" has index -1 at [1, 1]');
    await expect(runBoth(ir, "t", { x: X35, ids: i32([2], [0, 6]) })).rejects.toThrow('t: input "ids" has index 6 at [1], out of range for an axis of 5');
    await expect(runBoth(ir, "g", { x: X35, idx: i32([3, 2], [4, 0, 2, 5, 1, 3]) })).rejects.toThrow('g: input "idx" has index 5 at [1, 1], out of range for an axis of 5');
  });
});

describe("scaled_dot_product_attention", () => {
  const mk = (f: (z: number) => number) => f32([2, 4, 3], grid([2, 4, 3], f));
  it("causal: true equals PyTorch's masked softmax(q k^T / sqrt(d)) v", async () => {
    const src = "fn f(q: f32[B, 4, 3], k: f32[B, 4, 3], v: f32[B, 4, 3]) -> f32[B, 4, 3] { return scaled_dot_product_attention(q, k, v, causal: true) }";
    await expectBoth(src, "f", { q: mk(Math.sin), k: mk(Math.cos), v: mk((z) => Math.sin(0.5 * z)) }, [2, 4, 3], ATTN, 1e-5);
  });
  it("the first query attends only to the first key (its output is v[0]); gradients match finite differences", () => {
    const src = `
fn loss(q: f64[4, 3], k: f64[4, 3], v: f64[4, 3], r: f64[4, 3]) -> f64 { return sum(scaled_dot_product_attention(q, k, v, causal: true) * r) }
fn g(q: f64[4, 3], k: f64[4, 3], v: f64[4, 3], r: f64[4, 3]) -> (f64[4, 3], f64[4, 3], f64[4, 3]) { return grad(loss, wrt: [q, k, v])(q, k, v, r) }`;
    const inputs = { q: { shape: [4, 3], data: grid([4, 3], Math.sin) }, k: { shape: [4, 3], data: grid([4, 3], Math.cos) }, v: { shape: [4, 3], data: grid([4, 3], (z) => z / 7) }, r: { shape: [4, 3], data: grid([4, 3], (z) => 1 - z / 5) } };
    const att = `fn a(q: f64[4, 3], k: f64[4, 3], v: f64[4, 3]) -> f64[4, 3] { return scaled_dot_product_attention(q, k, v, causal: true) }`;
    const out = evaluateGraph(graphOf(irOf(att), "a"), inputs)[0]!;
    expect([...out.data.slice(0, 3)]).toEqual([0, 1 / 7, 2 / 7]);
    checkFd(src, inputs, ["q", "k", "v"], "loss", "g");
  });
});

describe("shape arithmetic", () => {
  const src = `
fn flat(x: f32[B, T, 2]) -> f32[B * T, 2] { return reshape(x, [B * T, 2]) }
fn inferred(x: f32[B, T, 2]) -> f32[B * T, 2] { return reshape(x, [-1, 2]) }
fn back(x: f32[B, T, 2]) -> f32[B, T, 2] { return reshape(reshape(x, [B * T * 2]), [B, T, 2]) }
fn fill(x: f32[B, T, 2]) -> f32[B * T, 2] { return reshape(x, [B * T, 2]) + full([B * T, 2], 0.5) + zeros([B * T, 1]) + ones([2]) }
fn rows(x: f32[B, T, 2]) -> f32[2 * B * T] { return reshape(x, [2 * T * B]) }`;
  const x = f32([2, 3, 2], grid([2, 3, 2], (k) => k));
  it("[B * T, 2], -1 inferred as B*T, and back: the elements in order, the product bound at run time", async () => {
    await expectBoth(src, "flat", { x }, [6, 2], x.data);
    await expectBoth(src, "inferred", { x }, [6, 2], x.data);
    await expectBoth(src, "back", { x }, [2, 3, 2], x.data);
    await expectBoth(src, "rows", { x }, [12], x.data);
  });
  it("zeros / ones / full with symbolic shapes", () => expectBoth(src, "fill", { x }, [6, 2], x.data.map((v) => v + 1.5)));
  it("the IR names product dims canonically", () => {
    const g = graphOf(irOf(src), "rows");
    expect(g.nodes.at(-1)!.type.shape).toEqual(["2*B*T"]);
  });
});

function diags(src: string) {
  const r = compileToIR(src, "bad.kiln");
  expect(r.ir).toBeUndefined();
  return r.diagnostics.map((d) => [d.code, d.span.line, d.span.col]);
}

describe("diagnostics of bad indices and shapes", () => {
  const cases: [string, string, [string, number, number][]][] = [
    ["index out of range", "fn f(x: f32[3, 5]) -> f32[5] {\n  return x[3]\n}", [["K407", 2, 12]]],
    ["negative index out of range", "fn f(x: f32[3, 5]) -> f32[3] {\n  return x[:, -6]\n}", [["K407", 2, 15]]],
    ["slice end out of range", "fn f(x: f32[3, 5]) -> f32[3] {\n  return x[1:9]\n}", [["K407", 2, 12]]],
    ["empty slice", "fn f(x: f32[3, 5]) -> f32[3] {\n  return x[2:1]\n}", [["K407", 2, 12]]],
    ["too many indices", "fn f(x: f32[3]) -> f32 {\n  return x[0, 0]\n}", [["K403", 2, 10]]],
    ["negative index of a symbolic axis", "fn f(x: f32[B, 5]) -> f32[5] {\n  return x[-1]\n}", [["K407", 2, 12]]],
    ["slice of a symbolic axis", "fn f(x: f32[B, 5]) -> f32[2, 5] {\n  return x[1:3]\n}", [["K407", 2, 12]]],
    ["float index tensor", "fn f(x: f32[3, 5], i: f32[2]) -> f32[2, 5] {\n  return x[i]\n}", [["K301", 2, 12]]],
    ["embedding with float ids", "fn f(t: f32[5, 4], i: f32[2]) -> f32[2, 4] {\n  return embedding(i, t)\n}", [["K301", 2, 20]]],
    ["dimension difference", "fn f(x: f32[B, T]) -> f32[B] {\n  return reshape(x, [B - T])\n}", [["K501", 2, 24]]],
  ];
  for (const [name, src, want] of cases) it(name, () => expect(diags(src)).toEqual(want));
});

type FdInputs = Record<string, { data: number[]; shape: number[] }>;

/** Each gradient `grads` returns (one per name in wrt) against central differences of the scalar `loss`. */
function checkFd(src: string, inputs: FdInputs, wrt: string[], loss: string, grads: string) {
  const ir = irOf(src);
  const analytic = evaluateGraph(graphOf(ir, grads), inputs);
  const f = () => evaluateGraph(graphOf(ir, loss), inputs)[0]!.data[0]!;
  wrt.forEach((name, k) => {
    const x = inputs[name]!.data;
    for (let i = 0; i < x.length; i++) {
      const fd = centralDifference(x, i, f);
      expect(Math.abs(analytic[k]!.data[i]! - fd), `d${loss}/d${name}[${i}]: ${analytic[k]!.data[i]} vs FD ${fd}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
    }
  });
}
