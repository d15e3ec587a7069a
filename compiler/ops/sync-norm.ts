// Op registry, sync_batch_norm in training mode (PyTorch's nn.SyncBatchNorm): batch_norm whose statistics are those
// of the global batch over all data-parallel replicas, built from all_reduce (collective.ts). Two rounds per call:
// AR([sum x, count]) gives the global mean, then AR(sum (x - mean)^2) the biased variance (two passes, as accurate
// as batch_norm's own). Autodiff turns each all_reduce into one of the cotangent, so backward's reductions are
// global too. Lowered only in a data-parallel grad function (compiler/lower/builtins-nn.ts); elsewhere, and with one
// replica, the statistics are batch_norm's.

import type { Dim, DType } from "../ir/types.js";
import type { PrimEmitter } from "./composites.js";
import type { BatchNormOut } from "./conv.js";

type Id = number | undefined;

export function syncBatchNorm(
  e: PrimEmitter, x: number, gamma: number, beta: number, rm: number, rv: number,
  o: { readonly momentum: number; readonly eps: number },
): BatchNormOut {
  const xt = e.type(x);
  const C = xt.shape[1] as number;
  const dt: DType = xt.dtype;
  const axes = xt.shape.map((_, k) => k).filter((k) => k !== 1);
  const perChannel: Dim[] = [C, ...xt.shape.slice(2).map(() => 1)];
  const f = (v: number) => e.constant(v, "f32");
  const emit = (name: Parameters<PrimEmitter["emit"]>[0], ins: Id[], attrs: object): Id =>
    ins.some((i) => i === undefined) ? undefined : e.emit(name, ins as number[], attrs as never);
  const op = (name: "add" | "sub" | "mul" | "div", a: Id, b: Id): Id => emit(name, [a, b], {});
  // The statistics are summed in f32 (all_reduce is f32); a 16-bit x is widened for them.
  const xf = dt === "f32" ? x : emit("cast", [x], { to: "f32" });
  const reduced = xt.shape.map((d, k) => (axes.includes(k) ? d : 1));
  const local = reduced.every((d) => typeof d === "number")
    ? f((reduced as number[]).reduce((a, d) => a * d, 1))
    : emit("sum", [emit("broadcast_to", [f(1)], { shape: reduced })], { axes: reduced.map((_, k) => k), keepdims: false });
  // One round for the sums and the count: [C + 1] = [sum x per channel..., elements per channel].
  const s1 = emit("reshape", [emit("sum", [xf], { axes, keepdims: true })], { shape: [C] });
  const both = emit("all_reduce", [emit("concat", [s1, emit("reshape", [local], { shape: [1] })], { axis: 0 })], {});
  const n = emit("reshape", [emit("slice", [both], { axis: 0, start: C, end: C + 1 })], { shape: [] });
  const sum = emit("reshape", [emit("slice", [both], { axis: 0, start: 0, end: C })], { shape: perChannel });
  const mean = op("div", sum, n);
  const xc = op("sub", xf, mean);
  const variance = op("div", emit("all_reduce", [emit("sum", [op("mul", xc, xc)], { axes, keepdims: true })], {}), n);
  const inv = emit("rsqrt", [op("add", variance, f(o.eps))], {});
  const asChannel = (v: number) => emit("reshape", [dt === "f32" ? v : emit("cast", [v], { to: "f32" })], { shape: perChannel });
  let y = op("add", op("mul", op("mul", xc, inv), asChannel(gamma)), asChannel(beta));
  if (dt !== "f32") y = emit("cast", [y], { to: dt });
  const toC = (v: Id) => emit("reshape", [v], { shape: [C] });
  const back = (v: Id) => (dt === "f32" ? v : emit("cast", [v], { to: dt }));
  // PyTorch's running variance is unbiased with the global count: var * n / (n - 1).
  const unbiased = op("div", op("mul", variance, n), op("sub", n, f(1)));
  const blend = (run: number, batch: Id) => op("add", op("mul", run, e.constant(1 - o.momentum, dt)), op("mul", back(toC(batch)), e.constant(o.momentum, dt)));
  return { y, runningMean: blend(rm, mean), runningVar: blend(rv, unbiased) };
}
