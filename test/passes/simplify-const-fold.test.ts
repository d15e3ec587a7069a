// simplify's constant folding: mean's gradient seed 1 / N over known sizes is a const in the IR (no kernel per
// call), computed as the f32 kernel would; over a symbolic size it stays a division by dim_size. Values against
// the hand derivation d/dy mean(y^2) = 2 y / N and the float64 reference on the unsimplified graph.
import { describe, expect, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, irOf, lcgInput } from "../helpers/backend.js";

const SRC = `fn l(y: f32[3, 7]) -> f32 { return mean(y * y) }
fn g(x: f32[3, 7]) -> f32[3, 7] { return grad(l)(x) }
fn ls(y: f32[B, 7]) -> f32 { return mean(y * y) }
fn gs(x: f32[B, 7]) -> f32[B, 7] { return grad(ls)(x) }`;

describe("simplify: constant folding of mean's gradient seed", () => {
  it("known N: 1 / 21 is a const rounded as f32 and no kernel computes it; symbolic N keeps dim_size", async () => {
    const ir = irOf(SRC);
    const g = ir.functions.find((f) => f.name === "g")!;
    expect(g.nodes.filter((n) => n.op === "div" || n.op === "reshape").map((n) => n.op)).toEqual([]);
    const consts = g.nodes.filter((n) => n.op === "const").map((n) => (n.attrs as { value: number }).value);
    expect(consts).toContain(Math.fround(1 / 21));
    const gs = ir.functions.find((f) => f.name === "gs")!;
    expect(gs.nodes.filter((n) => n.op === "dim_size" || n.op === "div").map((n) => n.op)).toEqual(["dim_size", "div"]);
    const b = await buildWasm(ir, "t");
    const steps = (name: string) => b.manifest.functions.find((f) => f.name === name)!.steps.map((s) => s.ops.join(","));
    // One elementwise kernel for 2 * (1/21) * x over known N; the symbolic seed's [1, 1] division is one more.
    expect(steps("g").some((o) => o.split(",").includes("div")), steps("g").join(" | ")).toBe(false);
    expect(steps("gs").length, steps("gs").join(" | ")).toBe(steps("g").length + 1);
    const mod = await loadKilnModule(b.manifest, b.wasm);
    const x = lcgInput([3, 7], 5);
    const plain = compileToIR(SRC, "t.kiln", [], ["simplify"]).ir!;
    for (const fn of ["g", "gs"]) {
      const got = mod.call(fn, { x: new Tensor("f32", [3, 7], x.data) }) as Tensor;
      // By hand: d/dy_i (sum y^2) / 21 = 2 y_i / 21.
      expectClose(got, { dtype: "f32", shape: [3, 7], data: Float64Array.from(x.data, (v) => (2 * v) / 21) }, `${fn} vs 2y/21`, 1e-6, 1e-7);
      const ref = evaluateGraph(plain.functions.find((f) => f.name === fn)!, { x }, {});
      expectClose(got, ref[0]!, `${fn} vs reference`, 1e-6, 1e-7);
    }
  });

  it("leaves integer arithmetic on constants to the kernels (truncating division, x / 0 = 0)", () => {
    const ir = irOf(`fn h(x: i32[4]) -> i32[4] { return x * (full([4], 7, dtype: i32) / full([4], 2, dtype: i32)) }`);
    expect(ir.functions[0]!.nodes.some((n) => n.op === "div")).toBe(true);
  });
});
