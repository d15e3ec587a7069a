// Lowering stage, a train block in data-parallel form (compiled when CompileOptions.dataParallel is set): two
// functions beside `Name.step`. `Name.grad` runs forward and backward on one replica's shard and returns the loss
// and every gradient packed into one flat f32 vector (reverse declaration order, cut into buckets); `Name.apply`
// takes the all-reduced vector and runs the optimizer (and the loss scaler), so every replica steps identically.

import type { TrainDecl } from "../frontend/kiln/ast.js";
import type { Graph, ParamInfo } from "../ir/graph.js";
import type { TensorType } from "../ir/types.js";
import type { DataParallelLayout } from "../../runtime/manifest.js";
import { FnLowerer } from "./lower-fn.js";
import type { ModuleScope } from "./module-scope.js";
import { emitUpdate, stateParam } from "./optimizers.js";
import { makeScaler } from "./loss-scale.js";
import { clipGrads } from "./clip-grad.js";
import { inlineLoss, readTrainHead, stepAndLr, type TrainHead } from "./train.js";

/**
 * Gradients are reduced bucket by bucket; a bucket closes once it holds this many elements (256 KiB of f32), and a
 * tensor larger than that is a bucket of its own. Small enough that the first buckets (the last layers, whose
 * gradients backward finishes first) are ready early; large enough that each is one long vector loop.
 */
export const BUCKET_ELEMENTS = 1 << 16;

/** The flat gradient vector's layout: trained params in reverse declaration order, cut into buckets. */
export function gradientLayout(train: string, trained: readonly { name: string; type: TensorType }[], role: "grad" | "apply", bucketElements = BUCKET_ELEMENTS): DataParallelLayout {
  const gradients: DataParallelLayout["gradients"] = [];
  const buckets: DataParallelLayout["buckets"] = [];
  let offset = 0;
  for (const w of [...trained].reverse()) {
    const numel = w.type.shape.reduce<number>((a, d) => a * (d as number), 1);
    gradients.push({ param: w.name, offset, numel });
    const last = buckets[buckets.length - 1];
    if (last && last.numel + numel <= bucketElements) last.numel += numel;
    else buckets.push({ offset, numel });
    offset += numel;
  }
  return { role, train, total: offset, gradients, buckets };
}

/** A state param node shared by the grad and apply graphs (the step graph declares the same names). */
function stateNodes(L: FnLowerer, train: string, state: ParamInfo[]) {
  const nodes = new Map<string, number>();
  const stateNode = (name: string, ty: TensorType) => {
    if (!state.some((s) => s.name === name)) state.push(stateParam(train, name, ty));
    const id = L.b.add("param", [], { name }, ty);
    nodes.set(name, id);
    return id;
  };
  const initScale = (name: string, v: number) => {
    const i = state.findIndex((s) => s.name === name);
    state[i] = { ...state[i], init: { kind: "constant", value: v } };
  };
  return { nodes, stateNode, initScale };
}

/**
 * `Name.grad(inputs..., share: f32) -> (loss, grads: f32[G])`: the loss is this shard's mean, the gradients those of
 * share * loss, so the sum over replicas is the global batch's gradient. Updates: batch_norm's running statistics.
 */
function lowerGrad(scope: ModuleScope, t: TrainDecl, head: TrainHead, weights: ParamInfo[], state: ParamInfo[]): { graph: Graph; trained: ParamInfo[] } | undefined {
  // sync_batch_norm's statistics are the global batch's: all_reduce across the replicas.
  const inlined = inlineLoss(scope, t, head, weights, `${t.name}.grad`, true);
  if (!inlined) return undefined;
  const { L, inputs, dims, own, r, y } = inlined;
  // The replica's share of the global batch (b_r / B) weights its mean loss, so the replicas' gradients add up to
  // the gradient of the global mean and each is as small as its part of that sum: under mixed-f16 a replica's
  // 16-bit gradients overflow where one replica's over the whole batch would, not a share's inverse sooner.
  let share = "share";
  while (inputs.some((i) => i.name === share)) share += "_";
  const shareNode = L.b.add("input", [], { name: share, index: inputs.length }, { dtype: "f32", shape: [] });
  inputs.push({ name: share, node: shareNode });
  const weighted = L.emit("mul", [y.id, shareNode], {})!;
  // The scaled loss is differentiated when loss scaling is on: the vector carries scaled gradients, apply divides.
  const { stateNode, initScale } = stateNodes(L, t.name, state);
  const scaler = head.scaleSpec ? makeScaler(L, head.scaleSpec, t.name, weighted, stateNode, initScale) : undefined;
  const trained: ParamInfo[] = [];
  const flat: number[] = [];
  own.forEach((w, k) => {
    if (L.statUpdates.has(w.name)) return;
    trained.push(w);
    const wrt = r.wrt[k];
    let g = L.b.add("gradient", [scaler?.scaledLoss ?? weighted, wrt], {}, L.type(wrt), t.span);
    if (w.type.dtype !== "f32") g = L.emit("cast", [g], { to: "f32" })!;
    const numel = w.type.shape.reduce<number>((a, d) => a * (d as number), 1);
    flat.push(L.emit("reshape", [g], { shape: [numel] })!);
  });
  if (!trained.length) return undefined;
  // Reverse declaration order: the last layers' gradients, which backward finishes first, lead the vector.
  flat.reverse();
  const grads = flat.length === 1 ? flat[0] : L.emit("concat", flat, { axis: 0 })!;
  const updates: { param: string; node: number }[] = [];
  for (const [param, node] of L.statUpdates) if (node !== undefined) updates.push({ param, node });
  const graph: Graph = {
    name: `${t.name}.grad`, model: t.name, nodes: L.b.nodes, inputs: L.b.withBounds(L.withClassLabels(inputs)), dims,
    outputs: [{ name: "loss", node: y.id }, { name: "grads", node: grads }], updates,
    customVjps: L.customVjps.length ? L.customVjps : undefined,
    parallel: { ...gradientLayout(t.name, trained, "grad"), share },
  };
  return { graph, trained };
}

/** `Name.apply(grads: f32[G]) -> applied`: the optimizer (and loss scaler) on the all-reduced gradients. */
function lowerApply(scope: ModuleScope, t: TrainDecl, head: TrainHead, trained: ParamInfo[], state: ParamInfo[]): Graph | undefined {
  const L = new FnLowerer(scope);
  L.span = head.entries.get("optimizer")!.span;
  L.frame = { fnName: `${t.name}.apply`, vars: new Map(), dims: new Map(), model: head.model, declared: new Set() };
  const layout = gradientLayout(t.name, trained, "apply");
  const input = L.b.add("input", [], { name: "grads", index: 0 }, { dtype: "f32", shape: [layout.total] });
  const { nodes, stateNode, initScale } = stateNodes(L, t.name, state);
  const { opt, scaleSpec } = head;
  const scaler = scaleSpec ? makeScaler(L, scaleSpec, t.name, undefined, stateNode, initScale) : undefined;
  const updates: { param: string; node: number }[] = [];
  // The step count (and so a schedule's lr) is state every replica updates alike: all use the same lr.
  const { step, lr } = stepAndLr(L, t.name, head, stateNode, updates);
  // An Inf/NaN on any replica survives the sum, so one check of the reduced vector skips the step everywhere.
  const ok = scaler?.check([scaleSpec!.min < 1 ? scaler.unscale(input) : input]);
  const kept = new Set<number>();
  const keep = (name: string, next: number) => {
    if (!scaler || ok === undefined) return next;
    const id = scaler.keep(ok, next, nodes.get(name)!);
    kept.add(id);
    return id;
  };
  const byParam = new Map(layout.gradients.map((g) => [g.param, g]));
  const parts = trained.map((w) => {
    const at = byParam.get(w.name)!;
    const pnode = L.b.add("param", [], { name: w.name }, w.type);
    nodes.set(w.name, pnode);
    const part = at.numel === layout.total ? input : L.emit("slice", [input], { axis: 0, start: at.offset, end: at.offset + at.numel })!;
    let grad = L.emit("reshape", [part], { shape: w.type.shape })!;
    if (w.type.dtype !== "f32") grad = L.emit("cast", [grad], { to: w.type.dtype })!;
    return { w, pnode, grad };
  });
  // Clipping reads the all-reduced gradients, unscaled: the global norm is the same on every replica.
  const clipped = head.clip ? clipGrads(L, head.clip, parts.map(({ grad }) => (scaler ? scaler.unscale(grad) : grad))) : undefined;
  parts.forEach(({ w, pnode, grad }, i) => {
    const g = clipped ? { grad: clipped[i] } : { grad, ...(scaler ? { scale: scaler.scale } : {}) };
    const p = { name: w.name, node: pnode, type: w.type, ...g, ...(lr !== undefined ? { lr } : {}) };
    for (const [param, node] of emitUpdate(L, opt, t.name, p, step, stateNode, keep)) updates.push({ param, node });
  });
  scaler?.finish(ok, updates, (param) => nodes.get(param)!, kept);
  // The caller learns whether the step was taken (false: an overflow under loss scaling, params unchanged).
  const applied = ok ?? L.emit("eq", [L.constant(0, "f32"), L.constant(0, "f32")], {})!;
  return {
    name: `${t.name}.apply`, model: t.name, nodes: L.b.nodes, inputs: [{ name: "grads", node: input }], dims: [],
    outputs: [{ name: "applied", node: applied }], updates, parallel: layout,
  };
}

/** The grad and apply graphs of a train block, and the state params they read (the step graph has the same). */
export function lowerTrainParallel(scope: ModuleScope, t: TrainDecl, weights: ParamInfo[]): { graphs: Graph[]; state: ParamInfo[] } | undefined {
  const head = readTrainHead(scope, t);
  if (!head) return undefined;
  const state: ParamInfo[] = [];
  const grad = lowerGrad(scope, t, head, weights, state);
  if (!grad) return undefined;
  const apply = lowerApply(scope, t, head, grad.trained, state);
  if (!apply) return undefined;
  return { graphs: [grad.graph, apply], state };
}
