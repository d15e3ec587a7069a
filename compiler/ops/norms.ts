// Op registry, per-sample normalisation composites: group_norm and instance_norm (PyTorch's F.group_norm and
// F.instance_norm without running statistics), built from reshape, mean and rsqrt. Argument checks are in
// compiler/lower/builtins-layers.ts; these functions assume checked shapes (a known channel count).

import type { Dim } from "../ir/types.js";
import type { PrimEmitter } from "./composites.js";

type Id = number | undefined;

/** (v - mean) * rsqrt(var + eps) over `axes` of v (biased variance, as PyTorch). */
function standardise(e: PrimEmitter, v: Id, axes: number[], eps: number): Id {
  if (v === undefined) return undefined;
  const dt = e.type(v).dtype;
  const mean = e.emit("mean", [v], { axes, keepdims: true });
  const xc = mean === undefined ? undefined : e.emit("sub", [v, mean], {});
  const sq = xc === undefined ? undefined : e.emit("mul", [xc, xc], {});
  const variance = sq === undefined ? undefined : e.emit("mean", [sq], { axes, keepdims: true });
  const ve = variance === undefined ? undefined : e.emit("add", [variance, e.constant(eps, dt)], {});
  const inv = ve === undefined ? undefined : e.emit("rsqrt", [ve], {});
  return inv === undefined || xc === undefined ? undefined : e.emit("mul", [xc, inv], {});
}

/** y * gamma + beta with gamma, beta [C] broadcast over x [N, C, ...] (either may be absent). */
function affine(e: PrimEmitter, y: Id, gamma: number | undefined, beta: number | undefined): Id {
  if (y === undefined) return undefined;
  const s = e.type(y).shape;
  const perChannel: Dim[] = [s[1], ...s.slice(2).map(() => 1)];
  const asChannel = (v: number) => e.emit("reshape", [v], { shape: perChannel });
  let out: Id = y;
  if (gamma !== undefined) {
    const g = asChannel(gamma);
    out = out === undefined || g === undefined ? undefined : e.emit("mul", [out, g], {});
  }
  if (beta !== undefined) {
    const b = asChannel(beta);
    out = out === undefined || b === undefined ? undefined : e.emit("add", [out, b], {});
  }
  return out;
}

/**
 * x [N, C, ...] with C / groups channels per group: each sample's group (its channels and all spatial positions)
 * is normalised on its own, then the per-channel affine. C is known; N and the spatial sizes may be symbolic.
 */
export function groupNorm(e: PrimEmitter, x: number, groups: number, gamma: number | undefined, beta: number | undefined, eps: number): Id {
  const s = e.type(x).shape;
  // [N, C, ...] -> [N, groups, C / groups, ...]: only the channel axis splits, so the rest may be symbolic.
  const grouped = e.emit("reshape", [x], { shape: [s[0], groups, (s[1] as number) / groups, ...s.slice(2)] });
  const y = standardise(e, grouped, [...Array(s.length - 1).keys()].map((k) => k + 2), eps);
  const back = y === undefined ? undefined : e.emit("reshape", [y], { shape: s });
  return affine(e, back, gamma, beta);
}

/** x [N, C, ...]: each (sample, channel) normalised over its spatial positions, then the per-channel affine. */
export function instanceNorm(e: PrimEmitter, x: number, gamma: number | undefined, beta: number | undefined, eps: number): Id {
  const rank = e.type(x).shape.length;
  const axes = [...Array(rank - 2).keys()].map((k) => k + 2);
  return affine(e, standardise(e, x, axes, eps), gamma, beta);
}
