// Pass nchw-grad (compiler/passes/nchw-grad.ts): an NHWC view reshape(permute(y, [0, 2, 3, 1]), [N, H*W, C]) read by
// a matmul as its right operand and by a sum over (N, H*W) becomes a folded transpose of y and y's per-channel sum:
// no copy step, values as hand-computed here (plain loops over y's NCHW layout) and on the float64 reference.
import { afterEach, describe, expect, it } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { loadKilnModule } from "../../runtime/wasm/module.js";
import { close } from "../helpers/conv-goldens.js";
import { irOf, lcgInput, runBoth } from "../helpers/backend.js";

const [N, C, H, W, M] = [3, 5, 4, 6, 7];
const P = H * W;

/** a [N, M, P] @ view [N, P, C], and the view's sum over axes 0 and 1 (keepdims as given). */
const src = (keepdims: boolean, alsoLeft: boolean) => `
fn f(y: f32[B, ${C}, ${H}, ${W}], a: f32[B, ${M}, ${P}], q: f32[${C}, ${M}]) -> (f32[B, ${M}, ${C}], f32[${keepdims ? `1, 1, ${C}` : C}]${alsoLeft ? `, f32[B, ${P}, ${M}]` : ""}) {
  let v = reshape(permute(y, [0, 2, 3, 1]), [B, ${P}, ${C}])
  return a @ v, sum(v, axis: [0, 1], keepdims: ${keepdims})${alsoLeft ? ", v @ q" : ""}
}`;

/** Hand derivation over y's NCHW layout: view[n, p, c] = y[n, c, p]. */
function expected(y: number[], a: number[]): { mm: number[]; s: number[] } {
  const mm = new Array<number>(N * M * C).fill(0);
  const s = new Array<number>(C).fill(0);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) {
    const v = y[(n * C + c) * P + p]!;
    s[c]! += v;
    for (let i = 0; i < M; i++) mm[(n * M + i) * C + c]! += a[(n * M + i) * P + p]! * v;
  }
  return { mm, s };
}

describe("pass nchw-grad", () => {
  afterEach(() => {
    delete process.env.KILN_CONV_DY_NCHW;
  });
  const inputs = { y: lcgInput([N, C, H, W], 1), a: lcgInput([N, M, P], 2), q: lcgInput([C, M], 3) };
  const permutes = (ir: ReturnType<typeof irOf>) => ir.functions[0]!.nodes.filter((n) => n.op === "permute").map((n) => (n.attrs as { perm: number[] }).perm.join());

  for (const keepdims of [true, false]) {
    it(`rewrites the view (sum keepdims ${keepdims}): no copy step, values as hand-computed and on the reference`, async () => {
      const ir = irOf(src(keepdims, false));
      expect(permutes(ir)).toEqual(["0,2,1"]);
      const sum = ir.functions[0]!.nodes.find((n) => n.op === "sum")!;
      expect((sum.attrs as { axes: number[] }).axes).toEqual([0, 2, 3]);
      const b = await buildWasm(ir, "t", { wat: false });
      const steps = b.manifest.functions[0]!.steps;
      expect(steps.filter((s) => s.ops.join() === "permute"), steps.map((s) => s.kernel).join(" ")).toEqual([]);
      const m = await loadKilnModule(b.manifest, b.wasm, {});
      try {
        const r = await runBoth(ir, "f", inputs, { module: m });
        const e = expected(inputs.y.data, inputs.a.data);
        close(r.wasm[0]!.data, e.mm, "matmul", 1e-5, 1e-5);
        close(r.wasm[1]!.data, e.s, "sum", 1e-5, 1e-5);
        expect(r.wasm[1]!.shape).toEqual(keepdims ? [1, 1, C] : [C]);
        close(Array.from(r.ref[0]!.data, Number), e.mm, "matmul, reference", 1e-9, 1e-9);
        close(Array.from(r.ref[1]!.data, Number), e.s, "sum, reference", 1e-9, 1e-9);
      } finally {
        m.dispose();
      }
    });
  }

  it("leaves the view alone with KILN_CONV_DY_NCHW=0 or when a matmul reads it as its left operand", () => {
    process.env.KILN_CONV_DY_NCHW = "0";
    expect(permutes(irOf(src(true, false)))).toEqual(["0,2,3,1"]);
    delete process.env.KILN_CONV_DY_NCHW;
    expect(permutes(irOf(src(true, true)))).toEqual(["0,2,3,1"]);
  });
});
