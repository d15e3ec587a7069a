// Op registry, cross_entropy with torch.nn.functional.cross_entropy's options (label_smoothing, ignore_index, class
// weights) and soft targets, built from primitives; the plain form stays composites.ts's crossEntropy.

import { logSoftmax, oneHot, type PrimEmitter } from "./composites.js";

type Id = number | undefined;

export interface CrossEntropyOptions {
  /** torch's label_smoothing: the target mixes (1 - eps) of itself with eps spread over the C classes. */
  readonly smoothing: number;
  /** Class labels equal to this contribute nothing, to the sum or to the mean's denominator. */
  readonly ignoreIndex?: number;
  /** f32[C] class weights (a tensor node). */
  readonly weight?: number;
}

/**
 * Class labels i32[N]: torch's weighted mean, sum_i w[y_i] (-lsm[i, y_i]) / sum_i w[y_i] over the targets not
 * ignored (the count of them without weights); label smoothing adds eps / C times the same mean of
 * -sum_c w[c] lsm[i, c] (torch 1.13's cross_entropy_loss_label_smoothing, denominator included).
 */
export function crossEntropyLabels(e: PrimEmitter, logits: number, labels: number, classes: number, o: CrossEntropyOptions): Id {
  const ids: Id[] = [];
  const emit = (...a: Parameters<PrimEmitter["emit"]>): number => {
    const id = ids.includes(undefined) ? undefined : e.emit(...a);
    ids.push(id);
    return id ?? -1;
  };
  const dt = e.type(logits).dtype;
  const c = (v: number) => e.constant(v, dt);
  const n = e.type(labels).shape[0]!;
  const lsm = logSoftmax(e, logits, 1);
  const hot = oneHot(e, labels, classes);
  if (lsm === undefined || hot === undefined) return undefined;
  const f = (x: number) => (e.type(x).dtype === dt ? x : emit("cast", [x], { to: dt }));
  const sumAll = (x: number) => emit("sum", [x], { axes: e.type(x).shape.map((_, k) => k), keepdims: false });
  const rows = (x: number) => emit("sum", [x], { axes: [1], keepdims: false });
  // valid [N]: 1 where the label is not ignored.
  const valid = o.ignoreIndex === undefined ? undefined : f(emit("ne", [labels, e.constant(o.ignoreIndex, "i32")], {}));
  let target = f(hot);
  if (valid !== undefined) target = emit("mul", [target, emit("reshape", [valid], { shape: [n, 1] })], {});
  const weighted = (x: number) => (o.weight === undefined ? x : emit("mul", [x, o.weight], {}));
  // The denominator: the summed weights of the targets kept, or their count, or N (a plain mean).
  const den = o.weight !== undefined ? sumAll(weighted(target)) : valid !== undefined ? sumAll(valid) : undefined;
  const mean = (perRow: number) => (den === undefined ? emit("mean", [perRow], { axes: [0], keepdims: false }) : emit("div", [sumAll(perRow), den], {}));
  const nll = mean(rows(emit("mul", [weighted(target), lsm], {})));
  let loss = nll;
  if (o.smoothing) {
    let smooth = rows(weighted(lsm));
    if (valid !== undefined) smooth = emit("mul", [smooth, valid], {});
    loss = emit("add", [emit("mul", [c(1 - o.smoothing), nll], {}), emit("mul", [c(o.smoothing / classes), mean(smooth)], {})], {});
  }
  const out = emit("neg", [loss], {});
  return ids.includes(undefined) ? undefined : out;
}

/** Soft targets f32[N, C] (probabilities): mean over N of -sum_c w[c] p[i, c] lsm[i, c], p smoothed first. */
export function crossEntropySoft(e: PrimEmitter, logits: number, probs: number, o: CrossEntropyOptions): Id {
  const dt = e.type(logits).dtype;
  const classes = e.type(logits).shape[1] as number;
  const lsm = logSoftmax(e, logits, 1);
  if (lsm === undefined) return undefined;
  let p: Id = probs;
  if (o.smoothing) p = e.emit("add", [e.emit("mul", [probs, e.constant(1 - o.smoothing, dt)], {})!, e.constant(o.smoothing / classes, dt)], {});
  if (p !== undefined && o.weight !== undefined) p = e.emit("mul", [p, o.weight], {});
  const prod = p === undefined ? undefined : e.emit("mul", [p, lsm], {});
  const perRow = prod === undefined ? undefined : e.emit("sum", [prod], { axes: [1], keepdims: false });
  const mean = perRow === undefined ? undefined : e.emit("mean", [perRow], { axes: [0], keepdims: false });
  return mean === undefined ? undefined : e.emit("neg", [mean], {});
}
