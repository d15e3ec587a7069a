// Lowering stage, train blocks: `train Name { model, loss, optimizer }` becomes one function `Name.step` that
// runs the model's loss method forward in training mode (dropout on, batch_norm on batch statistics), differentiates
// it with respect to every param of the model, applies the optimizer, and lists the new param, optimizer-state and
// batch_norm running-statistics values as updates; it returns the loss.

import type { Expr, FnDecl, TrainDecl } from "../frontend/kiln/ast.js";
import { ioType, type Graph, type ParamInfo } from "../ir/graph.js";
import { formatType, isFloat, type TensorType } from "../ir/types.js";
import { FnLowerer } from "./lower-fn.js";
import type { ModelInfo, ModuleScope } from "./module-scope.js";
import { countsSteps, emitUpdate, parseOptimizer, stateParam, type OptimizerSpec } from "./optimizers.js";
import { clipGrads, parseClip, type ClipSpec } from "./clip-grad.js";
import { emitLr, parseSchedule, type ScheduleSpec } from "./lr-schedule.js";
import type { Lowerer } from "./lowerer.js";
import { DEFAULTS as DEFAULT_SCALE, makeScaler, parseLossScale, type LossScaleSpec } from "./loss-scale.js";
import { autocastOf } from "./autocast.js";
import { resolveType } from "./types-from-ast.js";
import { tensor } from "./values.js";

const KEYS = ["model", "loss", "optimizer", "loss_scale", "schedule", "clip_grad_norm", "clip_grad_value"];
const REQUIRED = ["model", "loss", "optimizer"];

function nameOf(e: Expr | undefined): string | undefined {
  return e?.kind === "name" ? e.name : undefined;
}

/** What every lowering of a train block reads first: its model, loss method, optimizer and loss scale. */
export interface TrainHead {
  readonly entries: Map<string, Expr>;
  readonly model: ModelInfo;
  readonly lossFn: FnDecl;
  readonly opt: OptimizerSpec;
  readonly scaleSpec?: LossScaleSpec;
  readonly clip?: ClipSpec;
  readonly schedule?: ScheduleSpec;
}

/** Checks a train block's entries (every problem is a diagnostic); undefined after an error. */
export function readTrainHead(scope: ModuleScope, t: TrainDecl): TrainHead | undefined {
  const diags = scope.diags;
  const entries = new Map<string, Expr>();
  // Every problem of the block is reported in one run: each entry is checked even after another one failed.
  let bad = false;
  const fail = (...a: Parameters<typeof diags.error>) => {
    diags.error(...a);
    bad = true;
  };
  for (const e of t.entries) {
    if (!KEYS.includes(e.key)) fail("K611", `unknown train entry '${e.key}'`, e.keySpan, `entries are ${KEYS.join(", ")}`);
    else if (entries.has(e.key)) fail("K611", `'${e.key}' is given twice`, e.keySpan);
    else entries.set(e.key, e.value);
  }
  for (const k of REQUIRED) if (!entries.has(k)) fail("K611", `train ${t.name} needs '${k}:'`, t.nameSpan, "e.g. train Step { model: MLP, loss: loss, optimizer: sgd(lr: 0.1) }");
  const modelName = nameOf(entries.get("model"));
  const model = modelName ? scope.models.get(modelName) : undefined;
  if (!model && entries.has("model")) fail("K611", `model: must name a model of this file`, entries.get("model")!.span);
  const lossName = nameOf(entries.get("loss"));
  const lossFn = lossName && model ? model.methods.get(lossName) : undefined;
  if (model && !lossFn && entries.has("loss")) fail("K611", `loss: must name a method of ${model.decl.name}`, entries.get("loss")!.span, `methods: ${[...model.methods.keys()].join(", ") || "none"}`);
  const opt = entries.has("optimizer") ? parseOptimizer(entries.get("optimizer")!, diags) : undefined;
  // f16 gradients underflow without a loss scale (bf16 has f32's range and needs none): mixed-f16, module-wide or
  // by @autocast(f16) on the loss method, turns dynamic scaling on with GradScaler's defaults.
  const f16 = lossFn !== undefined && (autocastOf(lossFn) ?? scope.precision) === "f16";
  const scaleSpec = entries.has("loss_scale") ? parseLossScale(entries.get("loss_scale")!, diags) : f16 ? DEFAULT_SCALE : undefined;
  const clip = parseClip(entries.get("clip_grad_norm"), entries.get("clip_grad_value"), diags);
  const schedule = entries.has("schedule") ? parseSchedule(entries.get("schedule")!, diags) : undefined;
  if (bad || !model || !lossFn || !opt || (entries.has("loss_scale") && !scaleSpec) || clip === null || (entries.has("schedule") && !schedule)) return undefined;
  return { entries, model, lossFn, opt, ...(scaleSpec ? { scaleSpec } : {}), ...(clip ? { clip } : {}), ...(schedule ? { schedule } : {}) };
}

/**
 * The step counter (`T.step_count`, optimizer steps taken) when the optimizer or the schedule reads it: its next
 * value (the 1-based number of this step, adam's t) is listed as an update; the lr node is the schedule's lr for
 * this step, from the count before it (PyTorch steps the scheduler after the optimizer).
 */
export function stepAndLr(L: Lowerer, train: string, head: TrainHead, stateNode: (name: string, t: TensorType) => number, updates: { param: string; node: number }[]): { step?: number; lr?: number } {
  if (!countsSteps(head.opt) && !head.schedule) return {};
  const stepName = `${train}.step_count`;
  const count = stateNode(stepName, { dtype: "f32", shape: [] });
  const step = L.emit("add", [count, L.constant(1, "f32")], {})!;
  updates.push({ param: stepName, node: step });
  return { step, ...(head.schedule ? { lr: emitLr(L, head.schedule, head.opt.h.lr, count) } : {}) };
}

/** The loss method inlined in training mode with the model's float params as `wrt`; the loss is one float scalar. */
export function inlineLoss(scope: ModuleScope, t: TrainDecl, head: TrainHead, weights: ParamInfo[], fnName = `${t.name}.step`, collectives = false) {
  const diags = scope.diags;
  const { entries, model, lossFn } = head;
  const L = new FnLowerer(scope);
  L.span = t.span;
  L.training = true;
  L.collectives = collectives;
  const dims: string[] = [];
  const inputs = lossFn.params.map((p, index) => {
    const ty = resolveType(p.type, diags) ?? { dtype: "f32", shape: [] };
    for (const d of ty.shape) if (typeof d === "string" && !dims.includes(d)) dims.push(d);
    return { name: p.name, node: L.b.add("input", [], { name: p.name, index }, ty, p.span) };
  });
  L.frame = { fnName, vars: new Map(), dims: new Map(dims.map((d) => [d, d])), model, declared: new Set() };
  const own = weights.filter((w) => w.model === model.decl.name && isFloat(w.type.dtype));
  const args = inputs.map((i, k) => ({ val: tensor(i.node), span: lossFn.params[k].span }));
  const r = L.inlineCall(lossFn, model, args, { span: t.span, calleeSpan: entries.get("loss")!.span }, { wrtArgs: [], wrtParams: own.map((w) => w.name) });
  if (!r) return undefined;
  const y = r.results[0];
  if (r.results.length !== 1 || y.kind !== "tensor" || L.type(y.id).shape.length !== 0 || !isFloat(L.type(y.id).dtype)) {
    diags.error("K602", `the loss ${model.decl.name}.${lossFn.name} must return one float scalar`, entries.get("loss")!.span, "e.g. return cross_entropy(logits, labels)");
    return undefined;
  }
  return { L, inputs, dims, own, r, y };
}

export function lowerTrain(scope: ModuleScope, t: TrainDecl, weights: ParamInfo[]): { graph: Graph; state: ParamInfo[] } | undefined {
  const diags = scope.diags;
  const head = readTrainHead(scope, t);
  if (!head) return undefined;
  const { entries, model, lossFn, opt, scaleSpec } = head;
  const inlined = inlineLoss(scope, t, head, weights);
  if (!inlined) return undefined;
  const { L, inputs, dims, own, r, y } = inlined;
  L.span = entries.get("optimizer")!.span;
  const state: ParamInfo[] = [];
  const paramNodes = new Map<string, number>();
  const stateNode = (name: string, ty: TensorType) => {
    state.push(stateParam(t.name, name, ty));
    const id = L.b.add("param", [], { name }, ty);
    paramNodes.set(name, id);
    return id;
  };
  const scaler = scaleSpec
    ? makeScaler(L, scaleSpec, t.name, y.id, stateNode, (name, v) => {
        const i = state.findIndex((s) => s.name === name);
        state[i] = { ...state[i], init: { kind: "constant", value: v } };
      })
    : undefined;
  const grads: number[] = [];
  const updates: { param: string; node: number }[] = [];
  const { step, lr } = stepAndLr(L, t.name, head, stateNode, updates);
  const clip = head.clip;
  const trained = own.flatMap((w, k) => {
    // batch_norm's running statistics are written by the forward pass, not by the optimizer.
    if (L.statUpdates.has(w.name)) return [];
    const wrt = r.wrt[k];
    const raw = L.b.add("gradient", [scaler?.scaledLoss ?? y.id, wrt], {}, L.type(wrt), t.span);
    // The finite check reads the scaled gradient (finite exactly when the unscaled one is, for a scale >= 1), and
    // the optimizer divides inside each use: the unscaled f32 gradient is never stored (under mixed precision
    // the check and the update kernels read the 16-bit matmul result).
    grads.push(scaler && scaleSpec!.min < 1 ? scaler.unscale(raw) : raw);
    const pnode = L.b.nodes[wrt].inputs[0];
    paramNodes.set(w.name, pnode);
    if (scaler || clip) return [{ w, pnode, grad: raw }];
    // Without loss scaling or clipping each update follows its gradient (the order every unscaled step had).
    for (const [param, node] of emitUpdate(L, opt, t.name, { name: w.name, node: pnode, grad: raw, type: w.type, ...(lr !== undefined ? { lr } : {}) }, step, stateNode)) updates.push({ param, node });
    return [];
  });
  // A skipped step (non-finite gradients under loss scaling) keeps params and optimizer state as they were. The
  // optimizer's state is kept before the param's update reads it, so the update reads the final state value.
  const ok = scaler?.check(grads);
  const kept = new Set<number>();
  const keep = (name: string, next: number) => {
    if (!scaler || ok === undefined) return next;
    const id = scaler.keep(ok, next, paramNodes.get(name)!);
    kept.add(id);
    return id;
  };
  // Clipping needs every gradient first, unscaled (the AMP recipe unscales, then clips).
  const clipped = clip ? clipGrads(L, clip, trained.map(({ grad }) => (scaler ? scaler.unscale(grad) : grad))) : undefined;
  trained.forEach(({ w, pnode, grad }, i) => {
    const p = clipped ? { grad: clipped[i] } : { grad, scale: scaler!.scale };
    for (const [param, node] of emitUpdate(L, opt, t.name, { name: w.name, node: pnode, type: w.type, ...p, ...(lr !== undefined ? { lr } : {}) }, step, stateNode, keep)) updates.push({ param, node });
  });
  scaler?.finish(ok, updates, (param) => paramNodes.get(param)!, kept);
  for (const [param, node] of L.statUpdates) if (node !== undefined) updates.push({ param, node });
  if (own.length === L.statUpdates.size) diags.error("K611", `model ${model.decl.name} has no float params to train`, t.nameSpan);
  if (diags.hasErrors) return undefined;
  const graph: Graph = {
    name: `${t.name}.step`, model: t.name, nodes: L.b.nodes, inputs: L.b.withBounds(L.withClassLabels(inputs)), dims,
    outputs: [{ name: "loss", node: y.id }, ...L.checks], updates,
    customVjps: L.customVjps.length ? L.customVjps : undefined,
  };
  return { graph, state };
}

export function describeTrain(g: Graph): string {
  return `${g.name}(${g.inputs.map((i) => `${i.name}: ${formatType(ioType(g, i))}`).join(", ")})`;
}
