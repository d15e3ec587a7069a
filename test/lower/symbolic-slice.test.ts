// Symbolic sequence lengths over known sizes: a known axis sliced to a symbolic end (`pos[0:T]` of a 6-row position
// table), `arange(T)`, and `tril`/`triu` over `[T, T]`. Each is checked against the same program written for a
// known T (static slices, constant aranges and masks: an independent lowering) at two lengths from one compiled
// module, on wasm and in the float64 reference; a T past the table is a KilnError in both; the slice's gradient
// against finite differences.
import { describe, expect, it } from "vitest";
import { compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { KilnError } from "../../runtime/errors.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, graphOf, irOf, runBoth, wasmModule, type Input } from "../helpers/backend.js";
import { centralDifference } from "../helpers/finite-diff.js";

const grid = (shape: number[], f: (k: number) => number) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => f(k));
const f32 = (shape: number[], f: (k: number) => number): Input => ({ dtype: "f32", shape, data: grid(shape, (k) => Math.fround(f(k))) });

// The symbolic form and, per length, the same computation with T written out.
const fixed = (n: number) => `
  fn f${n}(x: f32[B, ${n}, 3], pos: f32[6, 3]) -> f32[B, ${n}, 3] {
    let m = tril(ones([${n}, ${n}])) + 2 * triu(ones([${n}, ${n}]), diagonal: 1)
    let i = cast(arange(${n}), f32)
    return x + pos[0:${n}] + reshape(sum(m, axis: 1) * i, [${n}, 1])
  }`;
const SRC = `
  fn f(x: f32[B, T, 3], pos: f32[6, 3]) -> f32[B, T, 3] {
    let m = tril(ones([T, T])) + 2 * triu(ones([T, T]), diagonal: 1)
    let i = cast(arange(T), f32)
    return x + pos[0:T] + reshape(sum(m, axis: 1) * i, [T, 1])
  }
  ${fixed(2)}
  ${fixed(5)}
  fn tail(pos: f32[6, 3], x: f32[T]) -> f32[T - 1, 3] { return pos[1:T] }
  fn called(x: f32[B, 5, 3], pos: f32[6, 3]) -> f32[B, 5, 3] { return f(x, pos) }
`;
const POS = f32([6, 3], (k) => Math.sin(0.9 * k + 0.2));

describe("slicing a known axis to a symbolic length", () => {
  it("pos[0:T], arange(T), tril/triu over [T, T] equal the program written for T = 2 and T = 5 (one module, wasm and reference)", async () => {
    const ir = irOf(SRC);
    const mod = await wasmModule(ir);
    for (const T of [2, 5]) {
      const x = f32([3, T, 3], (k) => Math.cos(0.3 * k));
      const sym = await runBoth(ir, "f", { x, pos: POS }, { module: mod });
      const want = await runBoth(ir, `f${T}`, { x, pos: POS }, { module: mod });
      expect(sym.ref[0]!.shape).toEqual([3, T, 3]);
      expect([...sym.ref[0]!.data]).toEqual([...want.ref[0]!.data]);
      expectClose(sym.wasm[0]!, want.ref[0]!, `f at T=${T} on wasm`);
    }
  });

  it("called with a known length (T = 5 where f is inlined), the same program equals f5", async () => {
    const ir = irOf(SRC);
    const x = f32([2, 5, 3], (k) => Math.cos(0.3 * k));
    const got = await runBoth(ir, "called", { x, pos: POS });
    const want = await runBoth(ir, "f5", { x, pos: POS });
    expect([...got.ref[0]!.data]).toEqual([...want.ref[0]!.data]);
    expectClose(got.wasm[0]!, want.ref[0]!, "called on wasm");
  });

  it("a length past the table is a KilnError naming the dim, the limit and the slice (wasm and reference)", async () => {
    const ir = irOf(SRC, "pos.kiln");
    const mod = await wasmModule(ir);
    const x = f32([1, 7, 3], () => 0);
    const call = () => mod.call("f", { x: new Tensor("f32", x.shape, x.data), pos: new Tensor("f32", POS.shape, POS.data) });
    expect(call).toThrow(KilnError);
    expect(call).toThrow("f: dimension T is 7, but the slice [0:T] of axis 0 of f32[6, 3] (pos.kiln:5:20) needs T <= 6");
    expect(() => evaluateGraph(graphOf(ir, "f"), { x, pos: POS })).toThrow("dimension T is 7, but the slice [0:T]");
    // T = 6 uses the whole table.
    const x6 = f32([1, 6, 3], () => 0);
    expect(mod.call("f", { x: new Tensor("f32", x6.shape, x6.data), pos: new Tensor("f32", POS.shape, POS.data) })).toBeDefined();
  });

  it("pos[1:T] is T - 1 rows from row 1; T = 1 would be empty (a KilnError)", async () => {
    const ir = irOf(SRC);
    const { wasm, ref } = await runBoth(ir, "tail", { pos: POS, x: f32([4], () => 0) });
    expect(ref[0]!.shape).toEqual([3, 3]);
    expect([...ref[0]!.data]).toEqual(POS.data.slice(3, 12));
    expectClose(wasm[0]!, ref[0]!, "tail on wasm");
    const mod = await wasmModule(ir);
    expect(() => mod.call("tail", { pos: new Tensor("f32", [6, 3], POS.data), x: new Tensor("f32", [1], [0]) })).toThrow("dimension T-1 would be 0");
  });

  it("the gradient of pos[0:T] puts the cotangent in the first T rows (finite differences, float64) and wasm agrees", async () => {
    const src = `
      fn loss(x: f64[B, T, 3], pos: f64[6, 3]) -> f64 { let h = x + pos[0:T] return sum(h * h * h) }
      fn g(x: f64[B, T, 3], pos: f64[6, 3]) -> f64[6, 3] { return grad(loss, wrt: [pos])(x, pos) }`;
    const src32 = `
      fn g32(x: f32[B, T, 3], pos: f32[6, 3]) -> f32[6, 3] { return grad(loss32, wrt: [pos])(x, pos) }
      fn loss32(x: f32[B, T, 3], pos: f32[6, 3]) -> f32 { let h = x + pos[0:T] return sum(h * h * h) }`;
    const ir = irOf(src);
    const inputs = { x: { shape: [2, 4, 3], data: grid([2, 4, 3], (k) => Math.sin(0.3 * k)) }, pos: { shape: [6, 3], data: [...POS.data] } };
    const [gp] = evaluateGraph(graphOf(ir, "g"), inputs);
    const f = () => evaluateGraph(graphOf(ir, "loss"), inputs)[0]!.data[0]!;
    for (let i = 0; i < 18; i++) {
      const fd = centralDifference(inputs.pos.data, i, f);
      expect(Math.abs(gp!.data[i]! - fd), `d loss / d pos[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
    }
    // Rows 4 and 5 are past T = 4: no gradient.
    expect([...gp!.data.slice(12)]).toEqual([0, 0, 0, 0, 0, 0]);
    // Along an inner axis from a later start: q[:, 1:T] of q: [1, 8, 3] gets the cotangent at positions 1..T-1.
    const inner = irOf(`
      fn loss(x: f64[B, T, 3], q: f64[1, 8, 3]) -> f64 { let h = x[:, 1:] + q[:, 1:T] return sum(h * h * h) }
      fn g(x: f64[B, T, 3], q: f64[1, 8, 3]) -> f64[1, 8, 3] { return grad(loss, wrt: [q])(x, q) }`);
    const qin = { x: inputs.x, q: { shape: [1, 8, 3], data: grid([1, 8, 3], (k) => Math.cos(0.7 * k)) } };
    const [gq] = evaluateGraph(graphOf(inner, "g"), qin);
    const fq = () => evaluateGraph(graphOf(inner, "loss"), qin)[0]!.data[0]!;
    for (let i = 0; i < 24; i++) {
      const fd = centralDifference(qin.q.data, i, fq);
      expect(Math.abs(gq!.data[i]! - fd), `d loss / d q[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
    }
    expect([...gq!.data.slice(0, 3), ...gq!.data.slice(12)]).toEqual(Array(15).fill(0));
    const { wasm, ref } = await runBoth(irOf(src32), "g32", { x: f32([2, 4, 3], (k) => Math.sin(0.3 * k)), pos: POS });
    expectClose(wasm[0]!, ref[0]!, "g32 on wasm", 1e-5, 1e-5);
  });

  it("K407 for what a known axis cannot take to a symbolic end; K411 for arange(T) with a step", () => {
    const diag = (body: string) => compileToIR(`fn f(x: f32[B, T, 3], pos: f32[6, 3]) -> f32[T, 3] { ${body} }`, "t.kiln").diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`);
    expect(diag("return pos[0:T:2]")).toEqual(["K407 cannot take [0:T:2] of axis 0 of f32[6, 3]"]);
    expect(diag("return pos[6:T]")).toEqual(["K407 cannot take [6:T] of axis 0 of f32[6, 3]"]);
    expect(diag("return reshape(x[0, 0:B], [T, 3])")[0]).toMatch(/^K407 cannot take \[0:B\] of axis 0 of f32\[T, 3\]/);
    expect(diag("let i = arange(0, T, step: 2) return pos[0:T]")[0]).toMatch(/^K411 arange over the symbolic end T takes/);
  });
});
