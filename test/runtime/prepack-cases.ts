// Shared by prepack.test.ts and prepack.relaxed.test.ts: a model whose inference matmuls read prepacked weights
// (runtime/wasm/prepack.ts), and the check that their results follow the params — after setParam, after training
// steps that update them. Expected values come from the float64 reference interpreter with the current params.
import { expect } from "vitest";
import { buildWasm } from "../../compiler/compile.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { loadKilnModule, type KilnModule, type LoadOptions } from "../../runtime/wasm/module.js";
import { Tensor } from "../../runtime/tensor.js";
import { expectClose, graphOf, irOf, lcgInput } from "../helpers/backend.js";

// K = 300 spans two K blocks (KC = 256), N = 21 ends in a partial NR panel, N = 1030 spans two NC = 1024 column
// blocks; `nt` reads its weight transposed (the other packer); `fwd` has the bias + relu epilogue; `conv` (an
// implicit GEMM whose A is the weight: not prepacked) must still follow its weight's updates; `wino` (3x3, 16 -> 30
// channels: Winograd F(2x2, 3x3), compiler/codegen/wasm/winograd.ts) reads its weight's transform, made by the
// runtime once per value of ww (30 rows: the last 4-row panel is partial; 13 images, 2.4M multiply-adds: 2 threads split it, at row 18 in
// the relaxed build, inside a panel).
const SRC = `
model P {
  param wa: f32[300, 21] = he()
  param wt: f32[21, 300] = xavier()
  param wb: f32[40, 1030] = he()
  param b: f32[21] = zeros()
  param wc: f32[5, 2, 3, 3] = he()
  param ww: f32[30, 16, 3, 3] = he()

  fn nn(x: f32[B, 300]) -> f32[B, 21] { return x @ wa }
  fn nt(x: f32[B, 300]) -> f32[B, 21] { return x @ transpose(wt) }
  fn wide(x: f32[B, 40]) -> f32[B, 1030] { return x @ wb }
  fn fwd(x: f32[B, 300]) -> f32[B, 21] { return relu(x @ wa + b) }
  fn conv(x: f32[B, 2, 6, 6]) -> f32[B, 5, 4, 4] { return conv2d(x, wc) }
  fn wino(x: f32[B, 16, 6, 7]) -> f32[B, 30, 6, 7] { return conv2d(x, ww, padding: 1) }
  fn loss(x: f32[B, 300], labels: i32[B]) -> f32 { return cross_entropy(x @ wa + b, labels) }
}
train Step { model: P, loss: loss, optimizer: sgd(lr: 0.5) }
`;
export const ir = irOf(SRC);
export const built = await buildWasm(ir, "prepack");
const B = 13; // not a multiple of either build's MR (4, 6)
const x300 = lcgInput([B, 300], 5);
const x40 = lcgInput([B, 40], 6);
const ximg = lcgInput([B, 2, 6, 6], 10);
const xwino = lcgInput([B, 16, 6, 7], 12);
const labels = Array.from({ length: B }, (_, i) => (i * 5) % 21);

function paramsOf(m: KilnModule): Record<string, ArrayLike<number>> {
  return Object.fromEntries(Object.entries(m.paramsByName()).map(([k, t]) => [k, t.data as Float32Array]));
}

/** Each inference function against the reference with the module's params as they are now. */
function expectAllMatch(m: KilnModule, what: string): void {
  const params = paramsOf(m);
  for (const [fn, x] of [["P.nn", x300], ["P.nt", x300], ["P.wide", x40], ["P.fwd", x300], ["P.conv", ximg], ["P.wino", xwino]] as const) {
    const got = m.call(fn, { x: new Tensor("f32", x.shape, x.data) }) as Tensor;
    const [want] = evaluateGraph(graphOf(ir, fn), { x }, params);
    expectClose(got, want!, `${what}: ${fn}`, 1e-5, 1e-5);
  }
}

const fill = (n: number, seed: number) => Float32Array.from(lcgInput([n], seed).data, (v) => v * 0.3);

/** Loads the module with `opts` and checks every inference function at load, after setParam and after training steps. */
export async function expectPackedFollowParams(opts: LoadOptions, simd: "plain" | "relaxed"): Promise<void> {
  const m = await loadKilnModule(built.manifest, built.wasm, { seed: 3, ...opts });
  try {
    expect(m.simd).toBe(simd);
    expectAllMatch(m, "at load");
    // Every weight replaced: a stale packed copy would still give the old products.
    m.setParam("P.wa", fill(300 * 21, 7));
    m.setParam("P.wt", fill(21 * 300, 8));
    m.setParam("P.wb", fill(40 * 1030, 9));
    m.setParam("P.wc", fill(5 * 2 * 9, 11));
    m.setParam("P.ww", fill(30 * 16 * 9, 13));
    expectAllMatch(m, "after setParam");
    const before = m.getParam("P.wa").data.slice();
    const step = () => m.call("Step.step", { x: new Tensor("f32", x300.shape, x300.data), labels: new Int32Array(labels) });
    step();
    // The step did change wa (otherwise the check below proves nothing).
    expect(Array.from(m.getParam("P.wa").data).some((v, i) => v !== before[i])).toBe(true);
    expectAllMatch(m, "after a training step");
    step();
    expectAllMatch(m, "after a second training step");
  } finally {
    m.dispose();
  }
}
