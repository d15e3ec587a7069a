// Where Kiln follows PyTorch 1.13's conventions at the edges (issue 16.7): sgd's undampened first step, gradient
// splitting at maximum/minimum ties and NaNs, max_pool2d's first maximum, pow's special values, signed zero and
// NaN in gradients. Every expected number is PyTorch's, from the snippet in the comment next to it; each program
// runs on wasm and in the float64 reference.
import { describe, expect, it } from "vitest";
import { irOf, runBoth, wasmModule, type Input } from "../helpers/backend.js";

const nan = NaN, inf = Infinity;
const f32 = (data: number[], shape = [data.length]): Input => ({ dtype: "f32", shape, data });

/** Both backends give exactly `want` (NaN matches NaN; -0 and +0 are told apart). */
async function expectExact(src: string, fn: string, inputs: Record<string, Input>, want: number[][]): Promise<void> {
  const { wasm, ref } = await runBoth(irOf(src), fn, inputs);
  for (const [name, got] of [["reference", ref], ["wasm", wasm]] as const) {
    want.forEach((w, k) => {
      const g = Array.from(got[k]!.data as ArrayLike<number>, Number);
      w.forEach((v, i) => expect(Object.is(g[i], v) || (Number.isNaN(v) && Number.isNaN(g[i])), `${fn} ${name} result ${k}[${i}] = ${g[i]}, PyTorch gives ${v}`).toBe(true));
    });
  }
}

describe("optimizers", () => {
  it("sgd with dampening: the first step uses the undampened gradient", async () => {
    // w = torch.tensor([1.], requires_grad=True); opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    // three times: opt.zero_grad(); ((w - 3) ** 2).sum().backward(); opt.step()  -> w = 1.4, 1.92, 2.496
    const src = `model Q {
  param w: f32[1] = constant(1)
  fn loss(x: f32[1]) -> f32 { return sum((w - x) ** 2) }
}
train T { model: Q, loss: loss, optimizer: sgd(lr: 0.1, momentum: 0.9, dampening: 0.5) }`;
    const mod = await wasmModule(irOf(src));
    const ws: number[] = [];
    for (let i = 0; i < 3; i++) {
      mod.call("T.step", { x: new Float32Array([3]) });
      ws.push(mod.getParam("Q.w").data[0] as number);
    }
    [1.4, 1.92, 2.496].forEach((w, i) => expect(ws[i]).toBeCloseTo(w, 5));
  });
});

describe("gradients at ties, NaN and signed zero", () => {
  const grads = (expr: string, n: number) => `
fn l(a: f32[${n}], b: f32[${n}]) -> f32 { return sum(${expr}) }
fn ga(a: f32[${n}], b: f32[${n}]) -> f32[${n}] { return grad(l)(a, b) }
fn gb(a: f32[${n}], b: f32[${n}]) -> f32[${n}] { return grad(l, wrt: b)(a, b) }
fn both(a: f32[${n}], b: f32[${n}]) -> (f32[${n}], f32[${n}]) { return ga(a, b), gb(a, b) }`;

  it("maximum/minimum split a tie evenly and give a NaN's gradient to both operands", async () => {
    // a = torch.tensor([1., 2., nan, 1.], requires_grad=True); b = torch.tensor([1., 1., 3., nan], requires_grad=True)
    // torch.maximum(a, b).sum().backward() -> a.grad [0.5, 1, 1, 1], b.grad [0.5, 0, 1, 1]
    // torch.minimum(a, b).sum().backward() -> a.grad [0.5, 0, 1, 1], b.grad [0.5, 1, 1, 1]
    const ins = { a: f32([1, 2, nan, 1]), b: f32([1, 1, 3, nan]) };
    await expectExact(grads("maximum(a, b)", 4), "both", ins, [[0.5, 1, 1, 1], [0.5, 0, 1, 1]]);
    await expectExact(grads("minimum(a, b)", 4), "both", ins, [[0.5, 0, 1, 1], [0.5, 1, 1, 1]]);
  });

  it("pow: 1 ** NaN = 1 ** inf = 1, (-inf) ** 0.5 = inf, (-inf) ** -1.5 = 0, with PyTorch's gradients", async () => {
    // a = torch.tensor([1., 1., 1., -inf, -inf, 2., -inf, -inf], requires_grad=True)
    // b = torch.tensor([nan, inf, -inf, 0.5, -1.5, nan, 2., 3.], requires_grad=True)
    // y = torch.pow(a, b) -> [1, 1, 1, inf, 0, nan, inf, -inf]; y.sum().backward()
    // a.grad -> [nan, inf, -inf, 0, -0, nan, -inf, inf]; b.grad -> [0, 0, 0, nan, nan, nan, nan, nan]
    const ins = { a: f32([1, 1, 1, -inf, -inf, 2, -inf, -inf]), b: f32([nan, inf, -inf, 0.5, -1.5, nan, 2, 3]) };
    await expectExact("fn p(a: f32[8], b: f32[8]) -> f32[8] { return pow(a, b) }", "p", ins, [[1, 1, 1, inf, 0, nan, inf, -inf]]);
    await expectExact(grads("pow(a, b)", 8), "both", ins, [[nan, inf, -inf, 0, -0, nan, -inf, inf], [0, 0, 0, nan, nan, nan, nan, nan]]);
  });

  it("pow at a zero base: 0 ** 0 has gradient 0, and 0 ** -1 gives -inf for the exponent", async () => {
    // a = torch.tensor([0., 0., 0.], requires_grad=True); b = torch.tensor([2., 0., -1.], requires_grad=True)
    // torch.pow(a, b).sum().backward() -> a.grad [0, 0, -inf], b.grad [0, 0, -inf]
    await expectExact(grads("pow(a, b)", 3), "both", { a: f32([0, 0, 0]), b: f32([2, 0, -1]) }, [[0, 0, -inf], [0, 0, -inf]]);
  });

  it("rsqrt, x ** 0.5 and sqrt at -0, relu at NaN", async () => {
    // x = torch.tensor([-0., 0.], requires_grad=True); torch.rsqrt(x) -> [-inf, inf]; .sum().backward() -> [inf, -inf]
    // x = torch.tensor([-0., 0., 4.], requires_grad=True); x ** 0.5 -> [-0, 0, 2]; .sum().backward() -> [-inf, inf, 0.25]
    // x = torch.tensor([nan, -1., 0., 2.], requires_grad=True); torch.relu(x) -> [nan, 0, 0, 2]; grad -> [1, 0, 0, 1]
    const src = `
fn r(x: f32[2]) -> f32[2] { return rsqrt(x) }
fn lr(x: f32[2]) -> f32 { return sum(rsqrt(x)) }
fn gr(x: f32[2]) -> f32[2] { return grad(lr)(x) }
fn h(x: f32[3]) -> f32[3] { return x ** 0.5 }
fn lh(x: f32[3]) -> f32 { return sum(x ** 0.5) }
fn gh(x: f32[3]) -> f32[3] { return grad(lh)(x) }
fn ls(x: f32[3]) -> f32 { return sum(sqrt(x)) }
fn gs(x: f32[3]) -> f32[3] { return grad(ls)(x) }
fn u(x: f32[4]) -> f32[4] { return relu(x) }
fn lu(x: f32[4]) -> f32 { return sum(relu(x)) }
fn gu(x: f32[4]) -> f32[4] { return grad(lu)(x) }`;
    await expectExact(src, "r", { x: f32([-0, 0]) }, [[-inf, inf]]);
    await expectExact(src, "gr", { x: f32([-0, 0]) }, [[inf, -inf]]);
    await expectExact(src, "h", { x: f32([-0, 0, 4]) }, [[-0, 0, 2]]);
    await expectExact(src, "gh", { x: f32([-0, 0, 4]) }, [[-inf, inf, 0.25]]);
    await expectExact(src, "gs", { x: f32([-0, 0, 4]) }, [[-inf, inf, 0.25]]);
    await expectExact(src, "u", { x: f32([nan, -1, 0, 2]) }, [[nan, 0, 0, 2]]);
    await expectExact(src, "gu", { x: f32([nan, -1, 0, 2]) }, [[1, 0, 0, 1]]);
  });

  it("max_pool2d sends a tied maximum's gradient to the first one", async () => {
    // x = torch.tensor([[[[1., 3.], [3., 2.]]]], requires_grad=True); F.max_pool2d(x, 2).sum().backward() -> [[0, 1], [0, 0]]
    // x = torch.tensor([[[[1., 3., 3.], [3., 2., 3.], [0., 3., 1.]]]], requires_grad=True)
    // F.max_pool2d(x, 2, stride=1).sum().backward() -> [[0, 2, 0], [1, 0, 1], [0, 0, 0]]
    const src = `
fn l1(x: f32[1, 1, 2, 2]) -> f32 { return sum(max_pool2d(x, 2)) }
fn g1(x: f32[1, 1, 2, 2]) -> f32[1, 1, 2, 2] { return grad(l1)(x) }
fn l2(x: f32[1, 1, 3, 3]) -> f32 { return sum(max_pool2d(x, 2, stride: 1)) }
fn g2(x: f32[1, 1, 3, 3]) -> f32[1, 1, 3, 3] { return grad(l2)(x) }`;
    await expectExact(src, "g1", { x: f32([1, 3, 3, 2], [1, 1, 2, 2]) }, [[0, 1, 0, 0]]);
    await expectExact(src, "g2", { x: f32([1, 3, 3, 3, 2, 3, 0, 3, 1], [1, 1, 3, 3]) }, [[0, 2, 0, 1, 0, 1, 0, 0, 0]]);
  });

  it("2x2 pools over 5x5 (windows tile without overlap, the last row and column uncovered): gradients in place", async () => {
    // x = torch.tensor([[[[1.,3.,3.,0.,2.],[3.,2.,1.,4.,4.],[0.,5.,5.,1.,2.],[5.,1.,0.,0.,7.],[9.,9.,9.,9.,9.]]]], requires_grad=True)
    // w = torch.arange(1., 5.).reshape(1,1,2,2); (F.max_pool2d(x, 2) * w).sum().backward(); x.grad, then the same
    // with F.avg_pool2d (torch 1.13).
    const src = `
fn lm(x: f32[1, 1, 5, 5], w: f32[1, 1, 2, 2]) -> f32 { return sum(max_pool2d(x, 2) * w) }
fn gm(x: f32[1, 1, 5, 5], w: f32[1, 1, 2, 2]) -> f32[1, 1, 5, 5] { return grad(lm)(x, w) }
fn la(x: f32[1, 1, 5, 5], w: f32[1, 1, 2, 2]) -> f32 { return sum(avg_pool2d(x, 2) * w) }
fn ga(x: f32[1, 1, 5, 5], w: f32[1, 1, 2, 2]) -> f32[1, 1, 5, 5] { return grad(la)(x, w) }`;
    const x = f32([1, 3, 3, 0, 2, 3, 2, 1, 4, 4, 0, 5, 5, 1, 2, 5, 1, 0, 0, 7, 9, 9, 9, 9, 9], [1, 1, 5, 5]);
    const w = f32([1, 2, 3, 4], [1, 1, 2, 2]);
    await expectExact(src, "gm", { x, w }, [[0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
    await expectExact(src, "ga", { x, w }, [[0.25, 0.25, 0.5, 0.5, 0, 0.25, 0.25, 0.5, 0.5, 0, 0.75, 0.75, 1, 1, 0, 0.75, 0.75, 1, 1, 0, 0, 0, 0, 0, 0]]);
  });
});
