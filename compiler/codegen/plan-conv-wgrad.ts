// Codegen stage, planner for a convolution's weight gradient (issue 19 item 1): conv2d's dW is patchesᵀ · dy, a
// matmul whose left operand is a transpose of the forward's im2col rows. Read as a gather too (kernel.ts aConv
// with transA, wasm/matmul-pack-conv-t.ts), it lets the rows go unstored in training, so the forward convolution
// takes the gathered implicit GEMM (and Winograd) as in inference (plan-conv-gather.ts).
import type { Graph, Node } from "../ir/graph.js";
import { throughCast } from "./plan-conv-gather-half.js";

/** `KILN_CONV_WGRAD_GATHER=0` keeps the patches stored in training (A/B measurements; compiler/cache.ts keys on it). */
export function wgradGatherEnabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CONV_WGRAD_GATHER;
  return env !== "0";
}

/** A permute swapping the last two axes. */
function isSwap(p: Node): boolean {
  if (p.op !== "permute") return false;
  const perm = (p.attrs as { perm: number[] }).perm;
  const r = perm.length;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, r - 2).every((q, i) => q === i);
}

/**
 * The users of conv2d's rows (reshape [N*P, k] or [N, P, k]) other than its forward matmul `fwd` (if any), when each is a
 * weight gradient: a folded transpose (`folded`) whose only use is an f32 matmul's left operand, the batch axes
 * (if any) the rows' own. Undefined when any other user reads the rows (they then stay stored). `usersOf`: a
 * node's users, once per input that reads it. Under mixed precision a float cast the matmul folds (`castFolded`) may
 * sit before or after the transpose (plan-conv-gather-half.ts): `casts` lists it, for the packer's rounding.
 */
export function wgradReaders(
  g: Graph, rows: Node, fwd: Node | undefined, usersOf: ReadonlyMap<number, readonly Node[]>, uses: readonly number[], folded: (id: number) => boolean,
  ok: (p: Node, user: Node) => boolean, castFolded: (id: number) => boolean = () => false,
): { permute: number; matmul: number; casts: number[] }[] | undefined {
  const out: { permute: number; matmul: number; casts: number[] }[] = [];
  const users = usersOf.get(rows.id) ?? [];
  if (fwd && users.filter((u) => u.id === fwd.id).length !== 1) return undefined;
  for (const u of users) {
    if (u.id === fwd?.id) continue;
    const casts: number[] = [];
    // cast, then transpose: the transpose is read through the cast.
    const before = throughCast(u, usersOf, uses, castFolded);
    if (before.cast && !ok(rows, before.cast)) return undefined;
    if (before.cast) casts.push(before.cast.id);
    const p = before.node;
    if (!isSwap(p) || uses[p.id] !== 1 || !folded(p.id) || !ok(before.cast ?? rows, p)) return undefined;
    // transpose, then cast.
    const after: { node?: Node; cast?: Node } = before.cast ? { node: usersOf.get(p.id)?.[0] } : throughCast(usersOf.get(p.id)?.[0] ?? p, usersOf, uses, castFolded);
    if (after.cast && !ok(p, after.cast)) return undefined;
    if (after.cast) casts.push(after.cast.id);
    const last = after.cast ?? p;
    const mm = after.node;
    if (!mm || mm.op !== "matmul" || mm.type.dtype !== "f32" || mm.inputs[0] !== last.id || mm.inputs[1] === last.id || !ok(last, mm)) return undefined;
    const b = g.nodes[mm.inputs[1]].type.shape;
    // The product's batch axes are the rows' (per image, [N, k, P] @ [N or 1, P, O]) or none ([k, N*P] @ [N*P, O]).
    if (b.length > rows.type.shape.length || mm.type.shape.length !== rows.type.shape.length) return undefined;
    out.push({ permute: p.id, matmul: mm.id, casts });
  }
  return out;
}
