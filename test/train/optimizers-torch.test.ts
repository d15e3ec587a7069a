// RMSprop and Adagrad follow torch.optim's update rules and defaults: a few steps on loss (w - 3)^2 from w = 1,
// against the trajectories PyTorch 1.13 gives (the snippet is in each comment).
import { describe, expect, it } from "vitest";
import { irOf, wasmModule } from "../helpers/backend.js";

async function trajectory(opt: string, steps: number): Promise<number[]> {
  const src = `model Q {
  param w: f32[1] = constant(1)
  fn loss(x: f32[1]) -> f32 { return sum((w - x) ** 2) }
}
train T { model: Q, loss: loss, optimizer: ${opt} }`;
  const mod = await wasmModule(irOf(src));
  const ws: number[] = [];
  for (let i = 0; i < steps; i++) {
    mod.call("T.step", { x: new Float32Array([3]) });
    ws.push(mod.getParam("Q.w").data[0] as number);
  }
  return ws;
}

// def traj(make): w = torch.tensor([1.], requires_grad=True); opt = make([w])
//   3 times: opt.zero_grad(); ((w - 3) ** 2).sum().backward(); opt.step(); record w.item()
describe("optimizers against torch.optim", () => {
  it("rmsprop with torch's defaults (lr 0.01, alpha 0.99, eps 1e-8)", async () => {
    // traj(lambda p: torch.optim.RMSprop(p, lr=0.01)) -> [1.1, 1.1690566539764404, 1.224650502204895]
    const ws = await trajectory("rmsprop()", 3);
    [1.1, 1.1690566539764404, 1.224650502204895].forEach((w, i) => expect(ws[i]).toBeCloseTo(w, 5));
  });
  it("rmsprop with momentum and weight decay", async () => {
    // traj(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1))
    //   -> [1.0316227674484253, 1.0701881647109985, 1.1083215475082397]
    const ws = await trajectory("rmsprop(lr: 0.01, alpha: 0.9, momentum: 0.5, weight_decay: 0.1)", 3);
    [1.0316227674484253, 1.0701881647109985, 1.1083215475082397].forEach((w, i) => expect(ws[i]).toBeCloseTo(w, 5));
  });
  it("adagrad, and with lr_decay and weight decay", async () => {
    // traj(lambda p: torch.optim.Adagrad(p, lr=0.1)) -> [1.1, 1.168874979019165, 1.2241785526275635]
    // traj(lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.5, weight_decay=0.1)) -> [1.1, 1.1458187103271484, 1.1736310720443726]
    const a = await trajectory("adagrad(lr: 0.1)", 3);
    [1.1, 1.168874979019165, 1.2241785526275635].forEach((w, i) => expect(a[i]).toBeCloseTo(w, 5));
    const b = await trajectory("adagrad(lr: 0.1, lr_decay: 0.5, weight_decay: 0.1)", 3);
    [1.1, 1.1458187103271484, 1.1736310720443726].forEach((w, i) => expect(b[i]).toBeCloseTo(w, 5));
  });
});
