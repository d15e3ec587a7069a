// Codegen stage, the mixed-precision side of the convolution gathers (plan-conv-gather.ts, plan-conv-wgrad.ts):
// under `--precision mixed-f16|bf16` conv's x is stored f16/bf16 (its patches copied as 16-bit elements) or stays
// f32 with the patch rows cast to f16/bf16 right before the matmul (a cast the matmul folds, plan-matmul.ts).
// Either way the packers read x itself and widen or round each element while packing (wasm/matmul-pack-conv*.ts),
// so the patch matrix is never stored, exactly as in f32 training.
import type { Graph, Node } from "../ir/graph.js";
import type { DType } from "../ir/types.js";

/** `KILN_CONV_GATHER_HALF=0` keeps mixed precision's patches stored (A/B measurements; compiler/cache.ts keys on it). */
export function halfGatherEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CONV_GATHER_HALF;
  return env !== "0";
}

/** The storage formats a gather reads x as: f32 always, f16/bf16 unless switched off. */
export function gatherableDtype(d: DType): boolean {
  return d === "f32" || ((d === "f16" || d === "bf16") && halfGatherEnabled());
}

/**
 * `u` (a user of the patch rows) seen through a float cast that its single user, a matmul, folds (`castFolded`):
 * that cast and its user; `u` itself otherwise. Only when half gathers are on.
 */
export function throughCast(u: Node, usersOf: ReadonlyMap<number, readonly Node[]>, uses: readonly number[], castFolded: (id: number) => boolean): { node: Node; cast?: Node } {
  if (u.op !== "cast" || !castFolded(u.id) || uses[u.id] !== 1 || !halfGatherEnabled()) return { node: u };
  const next = usersOf.get(u.id)?.[0];
  return next ? { node: next, cast: u } : { node: u };
}

/** What a folded cast chain leaves for the packer: the rounding of x's elements, if it narrows below x's format. */
export function roundOf(g: Graph, casts: readonly Node[], xDtype: DType): "f16" | "bf16" | undefined {
  // As plan-matmul.ts's operand(): a widening cast is exact, the outermost narrowing one wins.
  for (const c of [...casts].reverse()) {
    const to = (c.attrs as { to: DType }).to;
    if (to === "f16" || to === "bf16") return to === xDtype ? undefined : to;
  }
  return undefined;
}
